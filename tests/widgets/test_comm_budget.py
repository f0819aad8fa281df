"""Comm traffic depends on the frame rate, never on the event rate (DESIGN section 6).

Budgets: ≤ 10 messages/s per widget, ≤ 60/s per Dashboard, each message ≤ 64 KB.
"""

from __future__ import annotations

import asyncio
import collections
import time

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

from .conftest import CommSpy
from .helpers import register_agents, sample, storm

LIMIT_BYTES = 64 * 1024
PER_WIDGET = 10
PER_DASHBOARD = 60


def run_virtual(hub: Hub, clock: FakeClock, spy: CommSpy, seconds: float, events_per_tick: int):
    """Publish a storm between ticks every 10 ms of virtual time (100 ticks/s, 4x the hub's)."""
    ticks = int(seconds * 100)
    for i in range(ticks):
        clock.advance(0.01)
        spy.now = i * 0.01
        storm(hub, events_per_tick)
        if i % 100 == 0:  # one system sample per second, as the sampler does
            hub.publish("system.sample", data=sample(clock(), cores=64, gpus=2))
        hub.render_now(now=spy.now)


def per_second(messages) -> collections.Counter[int]:
    return collections.Counter(int(m.at) for m in messages)


def test_each_widget_stays_within_budget_at_any_event_rate(
    hub: Hub, clock: FakeClock, spy: CommSpy
) -> None:
    register_agents(hub)
    widgets = {
        "cards": AgentCards(hub),
        "graph": AgentGraphView(hub),
        "queue": QueueStats(hub),
        "logs": LogTail(hub),
        "system": SystemMetrics(hub),
    }
    mark = spy.mark()
    # 200 events every 10 ms: 20,000 events per (virtual) second for 5 seconds.
    run_virtual(hub, clock, spy, seconds=5.0, events_per_tick=200)
    for name, widget in widgets.items():
        sent = spy.updates(widget, since=mark)
        assert sent, name
        worst = max(per_second(sent).values())
        assert worst <= PER_WIDGET, f"{name}: {worst} messages in one second"
        biggest = max(m.size for m in sent)
        assert biggest <= LIMIT_BYTES, f"{name}: a {biggest}-byte message"
    # Busy widgets use their frame rate; the system panel follows the ~1 Hz sampler: once its
    # first second has set the value scales, shown the lines and added the GPU plot, about one
    # message per mark plus one for the number panel.
    assert len(spy.updates(widgets["cards"], since=mark)) >= 40
    steady = per_second(spy.updates(widgets["system"], since=mark))
    steady.pop(min(steady))
    assert max(steady.values()) <= 8, steady
    for widget in widgets.values():
        widget.close()


def test_dashboard_stays_within_budget(hub: Hub, clock: FakeClock, spy: CommSpy) -> None:
    register_agents(hub)
    dash = Dashboard(hub)
    mark = spy.mark()
    run_virtual(hub, clock, spy, seconds=5.0, events_per_tick=200)
    sent = spy.updates(dash, since=mark)
    assert max(per_second(sent).values()) <= PER_DASHBOARD
    assert max(m.size for m in sent) <= LIMIT_BYTES
    for panel in dash.panels:
        assert max(per_second(spy.updates(panel, since=mark)).values(), default=0) <= PER_WIDGET
    dash.close()


def test_event_rate_does_not_change_message_count(hub: Hub, clock: FakeClock, spy: CommSpy) -> None:
    register_agents(hub)
    cards = AgentCards(hub)
    mark = spy.mark()
    run_virtual(hub, clock, spy, seconds=2.0, events_per_tick=1)
    slow = len(spy.updates(cards, since=mark))
    mark = spy.mark()
    run_virtual(hub, clock, spy, seconds=2.0, events_per_tick=500)
    fast = len(spy.updates(cards, since=mark))
    assert fast <= slow + 1 <= 2 * PER_WIDGET + 1
    cards.close()


def test_large_log_buffer_stays_fast_and_small(clock: FakeClock, spy: CommSpy) -> None:
    hub = Hub(clock=clock, collect_system=False, log_capacity=100_000)
    for i in range(100_000):
        hub.publish(
            "log",
            f"agent{i % 7}",
            level="INFO" if i % 50 else "ERROR",
            message=f"line {i} " + "x" * 200,
        )
    tail = LogTail(hub)
    assert len(tail.lines) <= 200
    t0 = time.perf_counter()
    tail.level = "ERROR"
    tail.text = "line 9"
    tail.source = "agent3"
    elapsed = time.perf_counter() - t0
    assert tail.lines and all(line["source"] == "agent3" for line in tail.lines)
    assert elapsed < 1.0, f"three filter changes over 100,000 lines took {elapsed:.2f} s"
    sent = spy.updates(tail)
    assert sent and max(m.size for m in sent) <= LIMIT_BYTES
    # Huge lines are cut so a frame stays under the limit.
    hub.publish("log", "big", level="INFO", message="é" * 200_000)
    tail.level = tail.text = tail.source = ""
    assert max(m.size for m in spy.updates(tail)) <= LIMIT_BYTES
    tail.close()


def test_real_render_tick_on_an_event_loop(spy: CommSpy) -> None:
    """The running hub's own tick, wall-clock time, events as fast as the loop allows."""

    async def main() -> tuple[list, list, int]:
        hub = Hub(collect_system=False)
        hub.start()
        register_agents(hub)
        dash = Dashboard(hub)
        mark = spy.mark()
        start = time.monotonic()
        published = 0
        while time.monotonic() - start < 2.5:
            spy.now = time.monotonic() - start
            storm(hub, 200)
            published += 200
            await asyncio.sleep(0)  # let the render tick run
        sent = spy.updates(dash, since=mark)
        cards = spy.updates(dash.cards, since=mark)
        dash.close()
        await hub.aclose()
        return sent, cards, published

    # Timestamps come from the spy's clock, updated by the publishing loop between batches.
    sent, cards, published = asyncio.run(main())
    assert published > 10_000
    assert sent
    # The tick runs at 10 Hz: over 2.5 s at most ~25 frames per widget, whatever was published.
    assert len(cards) <= 2.5 * PER_WIDGET + 2
    assert max(per_second(sent).values()) <= PER_DASHBOARD


def test_huge_graph_messages_stay_under_64kb(clock: FakeClock, spy: CommSpy) -> None:
    hub = Hub(clock=clock, collect_system=False, topology="empty")
    view = AgentGraphView(hub)
    mark = spy.mark()
    names = [f"agent_{i:04d}_" + "n" * 90 for i in range(1500)]
    for step in range(10):  # the graph keeps growing while messages flow on every edge
        for i in range(step * 150, (step + 1) * 150):
            hub.publish("agent.message", names[i], target=names[(i + 1) % len(names)], kind="call")
            clock.advance(0.001)
        hub.render_now(now=float(step))
    # On an existing edge: no topology change, so this frame brings the flows.
    hub.publish("agent.message", names[0], target=names[1], kind="call")
    hub.render_now(now=20.0)
    sent = spy.updates(view, since=mark)
    assert any("topology" in m.state for m in sent)
    assert any("flows" in m.state and "topology" not in m.state for m in sent)
    assert max(m.size for m in sent) <= LIMIT_BYTES
    assert len(view.topology["nodes"]) > 100
    assert view.flows["edges"]
    view.close()


def test_idle_dashboard_sends_nothing(hub: Hub, clock: FakeClock, spy: CommSpy) -> None:
    register_agents(hub)
    hub.publish("agent.message", "coding_agent", target="git_operations", kind="call")
    dash = Dashboard(hub)
    hub.render_now(now=0.0)
    mark = spy.mark()
    for i in range(1, 100):  # ten idle seconds: ages and decay move in the browser, not here
        clock.advance(0.1)
        hub.render_now(now=i * 0.1)
    assert spy.updates(dash, since=mark) == []
    dash.close()
