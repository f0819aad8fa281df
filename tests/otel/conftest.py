"""Fixtures of the OpenTelemetry tests: a hub, a recorder of its events, and ``otel_sdk``.

The OpenTelemetry SDK, its exporters and the frameworks are test dependencies: missing, these
tests skip on a developer machine and fail under ``CI=true`` (``require``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from codeur_widgets.core.hub import Hub

from .helpers import Recorder, has


@pytest.fixture
def otel_sdk(require: Callable[..., None]) -> None:
    require("the OpenTelemetry SDK", has("opentelemetry.sdk"), "pip install 'codeur-widgets[otel]'")
    require("opentelemetry-proto", has("opentelemetry.proto"), "pip install opentelemetry-proto")


@pytest.fixture
def hub() -> Iterator[Hub]:
    h = Hub(collect_system=False, topology="empty")
    yield h
    h.stop()


@pytest.fixture
def rec(hub: Hub) -> Recorder:
    return Recorder(hub)
