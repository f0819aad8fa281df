"""Close detaches, displaying twice shares one model, defaults and the demo."""

from __future__ import annotations

import asyncio

import pytest

import codeur_widgets
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

from .conftest import CommSpy, import_or_skip
from .helpers import register_agents, storm

PANELS = [AgentCards, AgentGraphView, QueueStats, LogTail, SystemMetrics]


@pytest.mark.parametrize("cls", PANELS, ids=lambda c: c.__name__)
def test_close_detaches(cls: type, hub: Hub, clock: FakeClock, spy: CommSpy) -> None:
    widget = cls(hub)
    assert len(hub.watches) == 1  # exactly one registration per widget
    widget.close()
    assert hub.watches == []
    assert widget.closed
    mark = spy.mark()
    storm(hub, 100)
    hub.render_now()
    assert spy.updates(since=mark) == []
    widget.close()  # idempotent


@pytest.mark.parametrize("cls", PANELS, ids=lambda c: c.__name__)
def test_displayed_twice_is_one_model(cls: type, hub: Hub, spy: CommSpy) -> None:
    widget = cls(hub)
    register_agents(hub)
    hub.render_now()
    mark = spy.mark()
    first = widget._repr_mimebundle_()
    second = widget._repr_mimebundle_()
    assert first == second  # both outputs render the same model: same live state
    model_id = widget.model_id
    assert model_id in str(first)
    assert spy.updates(since=mark) == []  # displaying again sends nothing new
    widget.close()


def test_dashboard_close_detaches_everything(hub: Hub, spy: CommSpy) -> None:
    dash = Dashboard(hub)
    assert len(hub.watches) == 9  # header, controls and seven panels, one watch each
    dash.graph.selected = "coding_agent"
    assert dash.cards.selected == "coding_agent"  # the cards follow the graph
    dash.cards.selected = "git_operations"
    assert dash.graph.selected == "git_operations"
    dash.close()
    assert hub.watches == []
    assert all(p.closed for p in dash.panels)
    dash.close()


def test_dashboard_displayed_twice(hub: Hub, spy: CommSpy) -> None:
    dash = Dashboard(hub)
    assert dash._repr_mimebundle_() == dash._repr_mimebundle_()
    dash.close()


def test_dashboard_uses_the_default_hub(spy: CommSpy) -> None:
    dash = Dashboard()
    try:
        assert dash.hub is codeur_widgets.default_hub()
        assert all(p.hub is dash.hub for p in dash.panels)
    finally:
        dash.close()


def test_public_names() -> None:
    assert codeur_widgets.Dashboard is Dashboard
    assert codeur_widgets.AgentGraphView is AgentGraphView


def test_demo_runs_a_simulator(spy: CommSpy) -> None:
    import_or_skip("codeur_widgets.sim.simulator")

    async def main() -> tuple[int, int, int]:
        dash = Dashboard.demo(seed=3, jobs_per_minute=600)
        try:
            assert dash.simulator is not None
            assert dash.hub.running
            await asyncio.sleep(2.0)
            agents = len(dash.cards.data["agents"])
            flows = len(dash.graph.flows.get("edges", {}))
            views = len(dash.hub.watches)
        finally:
            dash.close()
        assert not dash.hub.running
        assert dash.hub.watches == []
        return agents, flows, views

    agents, flows, views = asyncio.run(main())
    assert agents >= 3
    assert views == 9
    assert flows >= 1


def test_demo_needs_an_event_loop() -> None:
    with pytest.raises(RuntimeError, match="running asyncio event loop"):
        Dashboard.demo()
