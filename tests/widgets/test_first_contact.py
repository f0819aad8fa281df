"""Issue 14, "first contact": a widget brings its hub to life (never a past one), the header
says what it shows (live, stopped and how to start, or a past range), header and cards count
from one snapshot, and the system plots keep a readable time axis."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from codeur_widgets.core.clock import FakeClock
from codeur_widgets.core.hub import Hub
from codeur_widgets.widgets import AgentCards, Dashboard, SystemMetrics
from codeur_widgets.widgets.agent_graph import node_states
from codeur_widgets.widgets.dashboard import DashboardHeader

from .conftest import CommSpy
from .helpers import register_agents, sample


def test_a_widget_on_a_stopped_hub_starts_it_on_the_running_loop(spy: CommSpy) -> None:
    async def main() -> tuple[bool, bool, bool]:
        hub = Hub(collect_system=False)
        before = hub.running
        dash = Dashboard(hub)  # as `hub = Hub(); Dashboard(hub)` in a notebook cell
        started = hub.running
        dash.close()
        hub.stop()
        cards_hub = Hub(collect_system=False)
        cards = AgentCards(cards_hub)
        alone = cards_hub.running
        cards.close()
        cards_hub.stop()
        return before, started, alone

    before, started, alone = asyncio.run(main())
    assert (before, started, alone) == (False, True, True)


def test_without_a_running_loop_the_header_says_how_to_start(hub: Hub, spy: CommSpy) -> None:
    dash = Dashboard(hub)  # a plain script: nothing to start the hub on
    assert not hub.running
    assert dash.header.health["running"] is False and dash.header.health["past"] is None
    dash.close()


def test_a_rebuilt_past_hub_is_never_started_and_says_what_it_shows(
    tmp_path: Path, spy: CommSpy
) -> None:
    clock = FakeClock(1_764_057_600.0)
    live = Hub(clock=clock, collect_system=False, history=tmp_path / "runs.sqlite")
    register_agents(live)
    clock.advance(300.0)
    live.publish("log", "coding_agent", message="done")
    live.stop()
    assert live.history is not None
    past = live.history.rebuild()

    async def show() -> Dashboard:
        return Dashboard(past)  # in a notebook cell: a running loop, yet not started

    dash = asyncio.run(show())
    assert not past.running
    header = dash.header.health
    assert header["past"] == past.past and header["past"]["events"] > 0
    assert dash.controls.range == {
        "mode": "past",
        "since": past.past["since"],
        "until": past.past["until"],
        "fixed": True,
    }
    dash.close()
    live.history.close()


def test_the_header_takes_its_counts_from_the_cards_frames(hub: Hub, spy: CommSpy) -> None:
    register_agents(hub)
    dash = Dashboard(hub)
    assert dash.header.cards == dash.cards.model_id
    mark = spy.mark()
    hub.publish("agent.task.started", "coding_agent", task="x")
    hub.render_now(now=10.0)
    # The header sends no counts of its own: the browser reads the cards' snapshot.
    assert all("counts" not in m.state for m in spy.updates(dash.header, since=mark))
    assert dash.cards.data["counts"]["active"] == 1
    dash.close()
    alone = DashboardHeader(hub)  # without cards it still counts by itself
    assert alone.counts["active"] == 1
    alone.close()


def test_the_graph_is_told_which_agents_are_paused(hub: Hub, spy: CommSpy) -> None:
    register_agents(hub)
    from codeur_widgets.core.admin import Admin

    Admin(hub).send("coding_agent", "pause")
    states = node_states(hub.agents.snapshot())
    assert states["coding_agent"]["paused"] is True
    assert "paused" not in states["code_planner"]  # the usual frame stays as small


def test_system_plots_span_the_window_and_hide_empty_series(
    hub: Hub, clock: FakeClock, spy: CommSpy
) -> None:
    sm = SystemMetrics(hub, window=60)
    # No sample yet: hidden flat lines across the window (bqplot draws an empty line as "null").
    assert not sm._cpu.visible and not sm._rss.visible
    assert len(sm._cpu.x) == 2 and sm._cpu.x[-1] - sm._cpu.x[0] == np.timedelta64(60_000, "ms")
    for _ in range(5):
        clock.advance(1.0)
        hub.publish("system.sample", data=sample(clock()))
    hub.render_now(now=1.0)
    assert sm._cpu.visible and len(sm._cpu.x) == 1 + 5
    # The axis spans the whole window ending now, not the five seconds sampled so far: a gap
    # point at the window's start comes first.
    assert sm._cpu.x[0] == np.datetime64(int((clock() - 60) * 1000), "ms")
    assert np.isnan(sm._cpu.y[0]) and not np.isnan(sm._cpu.y[1:]).any()
    assert sm._cpu.scales["x"] is not sm._mem.scales["x"]  # one time scale per mark
    assert {a.tick_format for a in sm._time_axes} == {"%H:%M:%S"}  # seconds for short windows
    sm.window = 900
    assert {a.tick_format for a in sm._time_axes} == {"%H:%M"}
    # From 0 to a round bound above the data: no negative ticks, the line below the top.
    assert sm._rss_scale.min == 0 and sm._rss_scale.max > np.nanmax(sm._rss.y)
    assert sm._threads_scale.min == 0 and sm._threads_scale.max > np.nanmax(sm._threads.y)
    assert sm._rss.display_legend is False  # labelled by their axes, no legend on the lines
    sm.close()
