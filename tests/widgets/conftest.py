"""Fixtures for widget tests without a browser: a hub on a fake clock and a comm spy.

The spy replaces the ``comm`` package's ``create_comm`` hook (which ipywidgets calls to open a
widget's comm), so every message a widget would send to the front end is recorded with its
size, and can be counted per widget.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import comm
import ipywidgets
import pytest
from comm.base_comm import BaseComm

from codeur_widgets.core.clock import FakeClock
from codeur_widgets.core.hub import Hub
from codeur_widgets.widgets._base import descendants


@dataclass
class Message:
    comm_id: str
    msg_type: str  # comm_open, comm_msg, comm_close
    data: dict[str, Any]
    size: int  # bytes: the JSON content plus binary buffers, as the kernel would send them
    at: float  # the spy's clock when sent

    @property
    def method(self) -> str:
        return str(self.data.get("method", "")) if self.msg_type == "comm_msg" else ""

    @property
    def state(self) -> dict[str, Any]:
        return dict(self.data.get("state") or {})


@dataclass
class CommSpy:
    """Records the messages of every widget comm opened while installed."""

    messages: list[Message] = field(default_factory=list)
    now: float = 0.0  # set by tests that run on virtual time

    def record(self, comm_id: str, msg_type: str, data: Any, buffers: Any) -> None:
        payload = json.dumps(data or {}, default=str, ensure_ascii=False).encode()
        size = len(payload) + sum(len(memoryview(b).cast("B")) for b in buffers or ())
        self.messages.append(Message(comm_id, msg_type, dict(data or {}), size, self.now))

    def updates(self, widgets: Any = None, since: int = 0) -> list[Message]:
        """State updates sent (optionally only by the comms of ``widgets`` and their children)."""
        ids = None if widgets is None else model_ids(widgets)
        return [
            m
            for m in self.messages[since:]
            if m.method == "update" and (ids is None or m.comm_id in ids)
        ]

    def mark(self) -> int:
        return len(self.messages)


def model_ids(widgets: Any) -> set[str]:
    """The comm ids of ``widgets`` and every widget reachable through their traits."""
    return {w.model_id for w in descendants(list(widgets) if isinstance(widgets, set) else widgets)}


def from_browser(widget: ipywidgets.Widget, **state: Any) -> None:
    """Deliver a state update as the front end sends it (e.g. a filter edited in the browser)."""
    msg = {"content": {"data": {"method": "update", "state": state, "buffer_paths": []}}}
    widget._handle_msg({**msg, "buffers": []})


def import_or_skip(module: str) -> ModuleType:
    """Import an optional component; skip without it, except under CI, where it must be there
    (the rule of ``tests/conftest.py``: a CI run never passes by skipping)."""
    if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
        return importlib.import_module(module)
    return pytest.importorskip(module)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Iterator[CommSpy]:
    recorder = CommSpy()

    class SpyComm(BaseComm):
        def publish_msg(
            self,
            msg_type: str,
            data: Any = None,
            metadata: Any = None,
            buffers: Any = None,
            **keys: Any,
        ) -> None:
            recorder.record(self.comm_id, msg_type, data, buffers)

    monkeypatch.setattr(comm, "create_comm", lambda *a, **kw: SpyComm(*a, **kw))
    yield recorder


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_732_500_000.0)


@pytest.fixture
def hub(clock: FakeClock) -> Iterator[Hub]:
    """A hub on a fake clock, not started: events apply at once, ticks run via render_now()."""
    h = Hub(clock=clock, collect_system=False)
    yield h
    h.stop()
