"""Shared test helpers.

``require`` is the one place that decides what a test does when a real component it needs (a
browser, a Jupyter server, redis-server) is missing: under ``CI=true`` the test fails, so a broken
CI image can never pass by skipping; on a developer machine it skips with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest


def in_ci() -> bool:
    """True when running under CI (``CI=true``, as set by most CI systems)."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require_component(component: str, available: bool, detail: str = "") -> None:
    """Fail (under CI) or skip (elsewhere) unless ``component`` is ``available``."""
    if available:
        return
    reason = f"{component} is not available" + (f": {detail}" if detail else "")
    if in_ci():
        pytest.fail(f"CI=true and a required component is missing. {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def require() -> Callable[..., None]:
    """The ``require_component(component, available, detail)`` rule, as a fixture."""
    return require_component
