"""DashboardControls and the Dashboard's time range, pause and admin actions, without a browser.

Requests are delivered as the page sends them (a custom comm message); what must hold is what
the panels then show, the audit trail, and that a bad request is answered with what was wrong.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from codeur_widgets.core.clock import FakeClock
from codeur_widgets.core.hub import Hub
from codeur_widgets.widgets.dashboard import Dashboard
from codeur_widgets.widgets.dashboard_controls import DashboardControls

from .conftest import CommSpy
from .helpers import register_agents


def from_page(widget: DashboardControls, **request: Any) -> dict[str, Any]:
    """Send ``request`` as the page does (a custom message); return the status answered."""
    msg = {"content": {"data": {"method": "custom", "content": request}}, "buffers": []}
    widget._handle_msg(msg)
    return dict(widget.status)


def card_names(dash: Dashboard) -> list[str]:
    return [a["name"] for a in dash.cards.data["agents"]]


def audit(hub: Hub) -> list[str]:
    return [line["message"] for line in hub.logs.query(source="admin")]


def test_live_windows_set_the_plots_window_and_are_audited(hub: Hub, spy: CommSpy) -> None:
    dash = Dashboard(hub)
    status = from_page(dash.controls, action="range", range={"mode": "live", "window": 3600})
    assert status == {"text": "live: last hour", "level": "ok"}
    assert dash.system.window == 3600 and dash.controls.range == {"mode": "live", "window": 3600}
    assert audit(hub)[-1] == "admin.command: view.range mode=live window=3600 (by dashboard)"
    dash.close()


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        ({"action": "range", "range": {"mode": "live", "window": 7}}, "live window must be one of"),
        ({"action": "range", "range": {"mode": "past", "since": 1, "until": 2}}, "need history"),
        ({"action": "range", "range": "yesterday"}, "range must be an object"),
        ({"action": "explode"}, "unknown action 'explode'"),
        ({"action": "agent_command", "agent": "ghost", "command": "pause"}, "unknown agent"),
        (
            {"action": "agent_command", "agent": "coding_agent", "command": "rm"},
            "unknown agent command",
        ),
        ({"action": "sample_interval", "value": "fast"}, "must be a finite number"),
        ({"action": "simulator_start"}, "no simulator is attached"),
        ({"nothing": 1}, "malformed request"),
    ],
)
def test_bad_requests_say_what_is_wrong_and_change_nothing(
    hub: Hub, spy: CommSpy, request_: dict[str, Any], reason: str
) -> None:
    register_agents(hub)
    dash = Dashboard(hub)
    before = (dict(dash.controls.range), dash.system.window, len(audit(hub)))
    status = from_page(dash.controls, **request_)
    assert status["level"] == "err" and reason in status["text"], status
    assert (dict(dash.controls.range), dash.system.window, len(audit(hub))) == before
    dash.close()


def test_pausing_the_view_freezes_the_panels_while_ingest_goes_on(
    hub: Hub, clock: FakeClock, spy: CommSpy
) -> None:
    register_agents(hub)
    dash = Dashboard(hub)
    hub.render_now(1.0)
    assert from_page(dash.controls, action="pause_view")["level"] == "ok"
    assert dash.controls.view_paused and all(v.paused for v in dash.views)
    hub.agent("newcomer")
    hub.render_now(2.0)
    assert "newcomer" in hub.agents and "newcomer" not in card_names(dash)
    from_page(dash.controls, action="resume_view")
    hub.render_now(3.0)
    assert "newcomer" in card_names(dash)
    assert audit(hub)[-2:] == [
        "admin.command: pause_view (by dashboard)",
        "admin.command: resume_view (by dashboard)",
    ]
    dash.close()


def test_agent_actions_change_the_cards(hub: Hub, spy: CommSpy) -> None:
    register_agents(hub)
    dash = Dashboard(hub)
    got: list[str] = []
    hub.agent("coding_agent").on_command(lambda command, args: got.append(command))
    from_page(dash.controls, action="agent_command", agent="coding_agent", command="restart")
    assert got == ["restart"]
    from_page(dash.controls, action="mark_offline", agent="code_planner")
    from_page(dash.controls, action="forget", agent="rag_service")
    hub.render_now(5.0)
    cards = {a["name"]: a for a in dash.cards.data["agents"]}
    assert cards["code_planner"]["status"] == "offline"
    assert "rag_service" not in cards and "rag_service" not in dash.controls.agents
    assert dash.controls.status == {"text": "rag_service forgotten", "level": "ok"}
    dash.close()


def test_snapshot_is_sent_to_the_page_as_json(hub: Hub, spy: CommSpy) -> None:
    register_agents(hub)
    controls = DashboardControls(hub)
    mark = spy.mark()
    from_page(controls, action="snapshot")
    custom = [
        m.data["content"]
        for m in spy.messages[mark:]
        if m.method == "custom" and m.comm_id == controls.model_id
    ]
    assert len(custom) == 1 and custom[0]["type"] == "snapshot"
    doc = json.loads(custom[0]["json"])
    assert {a["name"] for a in doc["agents"]["agents"]} >= {"coding_agent"}
    controls.close()


def test_sampling_interval_and_simulator_controls(spy: CommSpy) -> None:
    async def main() -> tuple[list[dict[str, Any]], float, float]:
        dash = Dashboard.demo(seed=2, time_scale=20)
        try:
            statuses = [
                from_page(dash.controls, action="sample_interval", value=2),
                from_page(dash.controls, action="simulator_speed", value=30),
                from_page(dash.controls, action="simulator_stop"),
            ]
            assert not dash.simulator.running and dash.controls.simulator["running"] is False
            statuses.append(from_page(dash.controls, action="simulator_start"))
            assert dash.simulator.running
            return statuses, dash.hub.sample_interval, dash.simulator.time_scale
        finally:
            dash.close()

    statuses, interval, speed = asyncio.run(main())
    assert [s["level"] for s in statuses] == ["ok"] * 4, statuses
    assert (interval, speed) == (2.0, 30.0)


def test_a_past_range_shows_that_time_and_back_to_live_shows_now(
    tmp_path: Any, clock: FakeClock, spy: CommSpy
) -> None:
    hub = Hub(clock=clock, collect_system=False, history=str(tmp_path / "runs.sqlite"))
    try:
        dash = Dashboard(hub)
        agent = hub.agent("coding_agent")
        start = clock()
        for i in range(3):
            with agent.task(f"job {i}"):
                clock.advance(1.0)
        hub.publish("log", "coding_agent", data={"message": "before the reset"})
        clock.advance(10.0)
        mark = clock()
        clock.advance(10.0)
        from_page(dash.controls, action="reset_counters")
        hub.render_now(1.0)
        assert dash.cards.data["agents"][0]["tasks_completed"] == 0

        status = from_page(
            dash.controls, action="range", range={"mode": "past", "since": start, "until": mark}
        )
        assert status["level"] == "ok", status
        assert dash.showing is not hub and all(v.hub is dash.showing for v in dash.views)
        assert dash.cards.data["agents"][0]["tasks_completed"] == 3
        assert "before the reset" in [line["message"] for line in dash.logs.lines]
        hub.publish("log", "coding_agent", data={"message": "live only"})
        hub.render_now(2.0)  # the live hub moves on; the past view does not
        assert "live only" not in [line["message"] for line in dash.logs.lines]

        from_page(dash.controls, action="range", range={"mode": "live", "window": 300})
        assert dash.showing is hub
        assert dash.cards.data["agents"][0]["tasks_completed"] == 0
        assert "live only" in [line["message"] for line in dash.logs.lines]
        dash.close()
    finally:
        hub.stop()
        assert hub.history is not None
        hub.history.close()
