"""Leaks: widgets and hubs created and closed leave nothing behind (issue 8, "Leaks").

1,000 widgets of every kind (Dashboards included) and 100 running hubs are created and closed;
weak references prove that none survives garbage collection, the ipywidgets registry and comms
prove nothing is left talking to the front end, and no asyncio task or sampler thread is left
running.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

import ipywidgets
import pytest
from ipywidgets.widgets.widget import _instances

from codeur_widgets.core.clock import FakeClock
from codeur_widgets.core.hub import Hub
from codeur_widgets.widgets import (
    AgentCards,
    AgentGraphView,
    Dashboard,
    LogTail,
    QueueStats,
    SystemMetrics,
)

pytestmark = pytest.mark.timeout(180)

# 1,000 widgets: the cheap panels most, the composite ones (tens of models each) less.
MIX: list[tuple[type, int]] = [
    (AgentCards, 200),
    (AgentGraphView, 200),
    (LogTail, 200),
    (QueueStats, 200),
    (SystemMetrics, 100),
    (Dashboard, 100),
]


def descendants(widget: ipywidgets.Widget) -> list[ipywidgets.Widget]:
    """Every widget model reachable from ``widget`` (itself, layout, children, bqplot parts).

    Deliberately not ``codeur_widgets.widgets._base.descendants``, which ``close_models`` uses
    to decide what to close: this oracle must not share a blind spot with the code it checks."""
    seen: dict[str, ipywidgets.Widget] = {}
    todo: list[Any] = [widget]
    while todo:
        item = todo.pop()
        if isinstance(item, (list, tuple)):
            todo.extend(item)
            continue
        if isinstance(item, dict):
            todo.extend(item.values())
            continue
        if not isinstance(item, ipywidgets.Widget) or item.comm is None:
            continue
        if item.model_id in seen:
            continue
        seen[item.model_id] = item
        for name in item.trait_names():
            if name != "comm":
                todo.append(getattr(item, name, None))
        todo.extend(v for v in vars(item).values() if isinstance(v, ipywidgets.Widget))
    return list(seen.values())


def populate(hub: Hub) -> None:
    hub.agent("coding_agent", model="gpt-4o", role="executor").send("git_operations", "git")
    hub.publish("job.enqueued", job_id="j1")
    hub.publish("log", "coding_agent", level="INFO", message="hello")


@pytest.fixture
def hub() -> Iterator[Hub]:
    h = Hub(clock=FakeClock(1_732_500_000.0), collect_system=False)
    populate(h)
    yield h
    h.stop()


def make_and_close(hub: Hub) -> tuple[list[weakref.ref[Any]], list[str], list[str]]:
    refs: list[weakref.ref[Any]] = []
    own_ids: list[str] = []
    child_ids: list[str] = []
    for cls, count in MIX:
        for _ in range(count):
            widget = cls(hub)
            hub.render_now()  # a frame went out: traits hold snapshots
            models = descendants(widget)
            own_ids.append(widget.model_id)
            child_ids.extend(m.model_id for m in models if m is not widget)
            widget.close()
            assert widget.comm is None, f"{cls.__name__}: comm still open after close()"
            refs.append(weakref.ref(widget))
            del widget, models
    return refs, own_ids, child_ids


def test_a_thousand_widgets_closed_are_freed_and_detached(hub: Hub) -> None:
    """Injected: 1,000 widgets (200 each of AgentCards, AgentGraphView, LogTail, QueueStats;
    100 SystemMetrics; 100 Dashboards), each rendered once then closed. Must hold: no widget
    object survives ``gc.collect()`` (weak references dead); none is left in the ipywidgets
    registry; its comm is closed; the hub has no watch left; events after that reach no view."""
    registry_before = len(_instances)
    refs, own_ids, _ = make_and_close(hub)
    assert len(refs) == 1_000
    gc.collect()
    alive = [r() for r in refs if r() is not None]
    assert not alive, f"{len(alive)} closed widgets still alive, e.g. {alive[:3]}"
    assert not [m for m in own_ids if m in _instances], "closed widgets still registered"
    assert hub.watches == []
    populate(hub)
    assert hub.render_now() == 0
    # Bounded growth, whatever the child models do (see the next test): the widgets themselves
    # are gone from the registry.
    assert len(_instances) - registry_before < 1_000 * 30


def test_a_thousand_widgets_closed_leave_no_child_model_open(hub: Hub) -> None:
    """Injected: the same 1,000 widgets. Must hold: every model each widget created (layout,
    children, bqplot parts) is closed too: out of the registry, comm closed."""
    _, _, child_ids = make_and_close(hub)
    gc.collect()
    left = [_instances[m] for m in child_ids if m in _instances]
    kinds = sorted({type(w).__name__ for w in left})
    assert not left, f"{len(left)} child models left open after close(): {kinds}"


def system_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("codeur_widgets.system[")]


def test_a_hundred_hubs_started_and_stopped_leave_no_object_task_or_thread() -> None:
    """Injected: 100 hubs, each started on the loop with system sampling (worker threads), an
    agent, events, a watch, every tenth with a Dashboard; half closed with ``await aclose()``,
    half with ``stop()``. Must hold: no hub (nor its stores) survives ``gc.collect()``; no asyncio
    task is left but the test's own; the sampler's worker threads all exit."""

    async def main() -> list[weakref.ref[Any]]:
        refs: list[weakref.ref[Any]] = []
        for i in range(100):
            hub = Hub(sample_interval=0.02, render_hz=50)
            hub.start()
            agent = hub.agent(f"agent-{i}", role="executor")
            with agent.task("work"):
                agent.send("git_operations", "git")
            frames: list[Any] = []
            watch = hub.watch(["agents"], frames.append)
            dash = Dashboard(hub) if i % 10 == 0 else None
            await asyncio.sleep(0.03)  # a sample (worker threads) and some frames
            if dash is not None:
                dash.close()
            watch.close()
            if i % 2:
                await hub.aclose()
            else:
                hub.stop()
            refs.extend([weakref.ref(hub), weakref.ref(hub.system), weakref.ref(hub.agents)])
            del hub, agent, watch, dash, frames
        for _ in range(3):
            await asyncio.sleep(0)  # stop()'s cancellations are delivered
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not others, f"{len(others)} tasks left running: {others[:3]}"
        return refs

    refs = asyncio.run(main())  # bounded by the module's pytest timeout
    # A stopped hub's worker threads (sampler, waker) end within milliseconds, but on a loaded
    # machine the last one may still be finishing: allow them a moment before counting.
    deadline = time.monotonic() + 3
    while True:
        gc.collect()
        alive = [r() for r in refs if r() is not None]
        if not alive or time.monotonic() > deadline:
            break
        del alive
        time.sleep(0.05)
    assert not alive, f"{len(alive)} hubs/stores alive after stop, e.g. {alive[:3]}"
    deadline = time.monotonic() + 5
    while system_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not system_threads(), system_threads()
