"""Admin actions: each is an ``admin.command`` event, folded in by the stores, obeyed by agents."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest

from codeur_widgets.core.admin import Admin, AdminError
from codeur_widgets.core.clock import FakeClock
from codeur_widgets.core.hub import Hub
from codeur_widgets.sim.simulator import Simulator


def make() -> tuple[Hub, Admin, list[Any]]:
    hub = Hub(clock=FakeClock(1_000.0), collect_system=False)
    audit: list[Any] = []
    hub.bus.subscribe("admin.command", audit.append)
    return hub, Admin(hub), audit


def test_agent_commands_reach_the_handle_and_are_audited() -> None:
    hub, admin, audit = make()
    agent = hub.agent("coding_agent")
    got: list[tuple[str, dict[str, Any]]] = []
    agent.on_command(lambda command, args: got.append((command, args)))
    hub.agent("other").on_command(lambda command, args: got.append(("WRONG", args)))
    admin.send("coding_agent", "pause")
    admin.send("coding_agent", "cancel", reason="stuck")
    assert got == [("pause", {}), ("cancel", {"reason": "stuck"})]
    assert [(e.agent, e.data["command"], e.data["origin"]) for e in audit] == [
        ("coding_agent", "pause", "dashboard"),
        ("coding_agent", "cancel", "dashboard"),
    ]
    lines = [line["message"] for line in hub.logs.query(source="admin")]
    assert lines == [
        "admin.command: pause coding_agent (by dashboard)",
        "admin.command: cancel coding_agent reason=stuck (by dashboard)",
    ]


def test_bad_commands_and_agents_are_refused_with_what_is_wrong() -> None:
    hub, admin, audit = make()
    hub.agent("a")
    with pytest.raises(AdminError, match="unknown agent command 'explode'"):
        admin.send("a", "explode")
    with pytest.raises(AdminError, match="unknown agent 'ghost'; known agents: a"):
        admin.forget("ghost")
    with pytest.raises(AdminError, match=r"between 0\.1 and 60"):
        admin.set_sample_interval(0)
    with pytest.raises(AdminError, match="finite number"):
        admin.set_sample_interval(float("nan"))
    with pytest.raises(AdminError, match="no simulator"):
        admin.stop_simulator()
    assert audit == []  # nothing refused is recorded as done


def test_forget_mark_offline_and_reset_are_folded_in_from_the_events() -> None:
    hub, admin, _ = make()
    a = hub.agent("a")
    hub.agent("b")
    with a.task("work") as t:
        t.tokens(prompt=10, completion=5, cost_usd=0.01)
    assert hub.agents.get("a")["tasks_completed"] == 1
    admin.reset_counters()
    assert hub.agents.get("a")["tasks_completed"] == 0
    admin.mark_offline("b")
    assert hub.agents.get("b")["status"] == "offline"
    assert "b" not in hub.agents.stale_agents()  # an admin decision, not a silence
    admin.forget("a")
    assert "a" not in hub.agents
    # The registry acts on the event, so replaying the stream into a new hub gives the same state.
    replay = Hub(clock=FakeClock(1_000.0), collect_system=False)
    replay.publish_many(e for e in _stream(hub, admin))
    assert replay.agents.names() == hub.agents.names()


def _stream(hub: Hub, admin: Admin) -> list[Any]:
    fresh = Hub(clock=FakeClock(1_000.0), collect_system=False)
    events: list[Any] = []
    fresh.bus.subscribe("*", events.append)
    a = fresh.agent("a")
    fresh.agent("b")
    with a.task("work"):
        pass
    again = Admin(fresh)
    again.reset_counters()
    again.mark_offline("b")
    again.forget("a")
    return events


def test_sample_interval_changes_the_hub_and_the_store() -> None:
    hub, admin, audit = make()
    admin.set_sample_interval(2)
    assert hub.sample_interval == 2.0 and hub.system.interval == 2.0
    assert audit[-1].data["args"] == {"seconds": 2.0}


def test_snapshot_json_is_everything_and_is_audited() -> None:
    hub, admin, audit = make()
    hub.agent("a")
    doc = json.loads(admin.snapshot_json())
    assert {"agents", "queue", "graph", "flows", "logs", "system", "health"} <= set(doc)
    assert audit[-1].data["command"] == "snapshot"


def test_simulated_agents_obey_pause_resume_and_cancel() -> None:
    async def main() -> tuple[Simulator, list[str]]:
        hub = Hub(collect_system=False)
        hub.start()
        sim = Simulator(hub, seed=3, time_scale=50)
        admin = Admin(hub, sim)
        admin.send("request_planner", "pause")
        job = asyncio.ensure_future(sim.run_job("job-held"))
        await asyncio.sleep(0.3)
        held = hub.agents.get("request_planner")["task"]
        assert not job.done()
        admin.send("request_planner", "resume")
        admin.send("request_planner", "cancel")  # cancels the job it is working on
        with pytest.raises(asyncio.CancelledError):
            await job
        admin.set_simulator_speed(5)
        assert sim.time_scale == 5.0
        with pytest.raises(AdminError, match="speed must be > 0"):
            admin.set_simulator_speed(0)
        admin.start_simulator(jobs_per_minute=600)
        assert sim.running
        admin.stop_simulator()
        assert not sim.running
        await sim.aclose()
        await hub.aclose()
        return sim, [held or ""]

    sim, held = asyncio.run(main())
    assert held[0].startswith("Plan request job-held")
    assert sim.jobs_cancelled >= 1


def test_pause_is_folded_in_and_every_agent_command_leaves_a_note() -> None:
    """Issue 14: a paused agent must not look stuck, and each command gets visible feedback."""
    clock = FakeClock(1_000.0)
    hub = Hub(clock=clock, collect_system=False)
    admin = Admin(hub)
    a = hub.agent("a")
    hub.publish("agent.task.started", "a", task="work", task_id="t1")
    clock.advance(2.0)
    admin.send("a", "pause")
    state = hub.agents.get("a")
    assert state["paused"] is True and state["paused_at"] == 1_002.0
    assert state["status"] == "active"  # still holding its task: the card says "paused"
    assert state["note"] == {"command": "pause", "ts": 1_002.0}
    clock.advance(30.0)
    a.heartbeat()  # heartbeats go on while paused
    assert hub.agents.get("a")["paused"] is True
    admin.send("a", "resume")
    state = hub.agents.get("a")
    assert state["paused"] is False and state["paused_at"] is None
    assert state["note"]["command"] == "resume"
    admin.send("a", "pause")
    admin.send("a", "restart")
    assert hub.agents.get("a")["paused"] is False
    admin.send("a", "cancel")
    assert hub.agents.get("a")["note"]["command"] == "cancel"
    admin.mark_offline("a")
    assert hub.agents.get("a")["note"]["command"] == "mark_offline"


def test_a_forgotten_agent_that_comes_back_says_so() -> None:
    clock = FakeClock(1_000.0)
    hub = Hub(clock=clock, collect_system=False)
    admin = Admin(hub)
    a = hub.agent("a")
    admin.forget("a")
    assert "a" not in hub.agents
    clock.advance(1.0)
    a.heartbeat()  # the simulator's agents keep their heartbeat: the card comes straight back
    state = hub.agents.get("a")
    assert state is not None and state["note"] == {"command": "forget", "ts": 1_000.0}
    assert state["tasks_completed"] == 0


def test_a_rebuilt_past_shows_an_agent_paused_then(tmp_path: Any) -> None:
    clock = FakeClock(1_000.0)
    hub = Hub(clock=clock, collect_system=False, history=tmp_path / "h.sqlite")
    hub.agent("a")
    Admin(hub).send("a", "pause")
    clock.advance(5.0)
    hub.stop()
    assert hub.history is not None
    past = hub.history.rebuild()
    assert past.agents.get("a")["paused"] is True
    hub.history.close()


def test_admin_lines_are_info_for_views_and_warning_for_destructive_actions() -> None:
    hub, admin, _ = make()
    hub.agent("a")
    admin.record("view.range", mode="past", since=1_764_057_723.0, until=1_764_058_023.0)
    admin.send("a", "pause")
    admin.forget("a")
    admin.reset_counters()
    lines = {line["message"]: line["level"] for line in hub.logs.query(source="admin")}
    by_start = {message.split(" ")[1]: level for message, level in lines.items()}
    assert by_start == {
        "view.range": "INFO",
        "pause": "INFO",
        "forget": "WARNING",
        "reset_counters": "WARNING",
    }
    (view,) = [m for m in lines if "view.range" in m]
    # Times as a person reads them (local time), not raw epoch seconds.
    assert "1764057723" not in view and re.search(
        r"since=\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", view
    )
