"""Widget traits after render ticks: snapshot in, traits out, nothing computed on the way."""

from __future__ import annotations

import pytest

from codeur_widgets.core.clock import FakeClock
from codeur_widgets.core.hub import Hub
from codeur_widgets.widgets import (
    AgentCards,
    AgentGraphView,
    DashboardHeader,
    LogTail,
    QueueStats,
    SystemMetrics,
)

from .conftest import CommSpy, from_browser
from .helpers import AGENTS, register_agents, sample


def test_agent_cards_follow_the_registry(hub: Hub, clock: FakeClock, spy: CommSpy) -> None:
    cards = AgentCards(hub)
    assert cards.data["agents"] == []  # the first state came with the comm-open message
    register_agents(hub, clock)
    hub.publish("agent.task.started", "coding_agent", task="Implement #42", job_id="job-7")
    hub.render_now()
    names = [a["name"] for a in cards.data["agents"]]
    assert names == [name for name, _, _ in AGENTS]  # stable registration order
    coding = cards.data["agents"][2]
    assert coding["status"] == "active"
    assert coding["task"] == "Implement #42"
    assert coding["job_id"] == "job-7"
    assert coding["task_started"] == pytest.approx(clock())
    assert cards.data["now"] == pytest.approx(clock())  # the browser ages from here
    assert cards.data == hub.agents.snapshot() | {"now": cards.data["now"]}
    cards.close()


def test_an_unchanged_store_sends_nothing(hub: Hub, clock: FakeClock, spy: CommSpy) -> None:
    register_agents(hub)
    cards = AgentCards(hub)
    hub.render_now(now=0.0)
    mark = spy.mark()
    for i in range(1, 50):  # five idle seconds of ticks: time passes, the registry does not move
        clock.advance(0.1)
        hub.render_now(now=i * 0.1)
    assert spy.updates(cards, since=mark) == []
    cards.close()


def test_agent_card_filters_are_synced_traits(hub: Hub, spy: CommSpy) -> None:
    cards = AgentCards(hub, status_filter="active", role_filter="executor")
    assert (cards.status_filter, cards.role_filter) == ("active", "executor")
    opened = [m for m in spy.messages if m.msg_type == "comm_open"]
    state = next(m.data["state"] for m in opened if "status_filter" in m.data.get("state", {}))
    assert state["status_filter"] == "active"
    # The browser changes a filter: the kernel just stores it (filtering happens in the browser).
    from_browser(cards, role_filter="")
    assert cards.role_filter == ""
    cards.close()


def test_queue_stats(hub: Hub, spy: CommSpy) -> None:
    q = QueueStats(hub)
    hub.publish("job.enqueued", job_id="j1", kind="code_generation")
    hub.publish("job.enqueued", job_id="j2", kind="code_generation")
    hub.publish("job.started", job_id="j1")
    hub.render_now()
    assert q.data["queued"] == 1
    assert q.data["processing"] == 1
    assert q.data == hub.queue.snapshot() | {"now": q.data["now"]}
    q.close()


def test_graph_sends_topology_only_when_it_changes(
    hub: Hub, clock: FakeClock, spy: CommSpy
) -> None:
    view = AgentGraphView(hub)
    assert {n["id"] for n in view.topology["nodes"]} >= {"request_planner", "coding_agent"}
    mark = spy.mark()
    for i in range(20):
        clock.advance(0.1)
        hub.publish("agent.message", "coding_agent", target="git_operations", kind="git_command")
        hub.render_now(now=float(i))
    updates = spy.updates(view, since=mark)
    assert len(updates) == 20
    assert all("flows" in m.state for m in updates)
    assert not any("topology" in m.state for m in updates)
    edge = view.flow_table()["coding_agent->git_operations"]
    assert edge["last_minute"] == 20
    assert view.flows["stats"]["busiest_edge"] == "coding_agent->git_operations"

    # A new agent talks: the topology grows once, and existing nodes keep their positions.
    before = {n["id"]: (n["x"], n["y"]) for n in view.topology["nodes"]}
    mark = spy.mark()
    hub.publish("agent.message", "coding_agent", target="test_runner", kind="run_tests")
    hub.render_now(now=100.0)
    (update,) = spy.updates(view, since=mark)
    assert {"topology", "flows"} <= set(update.state)
    assert "coding_agent->test_runner" in view.flow_table()
    after = {n["id"]: (n["x"], n["y"]) for n in view.topology["nodes"]}
    assert "test_runner" in after
    assert {k: after[k] for k in before} == before
    view.close()


def test_graph_selection_is_synced_from_the_browser(hub: Hub, spy: CommSpy) -> None:
    view = AgentGraphView(hub)
    seen = []
    view.observe(lambda c: seen.append(c["new"]), "selected")
    from_browser(view, selected="coding_agent")
    assert view.selected == "coding_agent"
    assert seen == ["coding_agent"]
    view.close()


def test_log_tail_filters_in_python(hub: Hub, spy: CommSpy) -> None:
    tail = LogTail(hub)
    for i in range(300):
        level = ["DEBUG", "INFO", "WARNING", "ERROR"][i % 4]
        hub.publish(
            "log",
            f"agent{i % 3}",
            level=level,
            message=f"message {i} {'needle' if i % 10 == 0 else ''}",
        )
    hub.render_now()
    assert len(tail.lines) == 200
    assert tail.lines[-1]["message"].startswith("message 299")
    assert tail.total == 300

    tail.level = "ERROR"
    assert {line["level"] for line in tail.lines} == {"ERROR"}
    tail.source = "agent1"
    assert {line["source"] for line in tail.lines} == {"agent1"}
    tail.level = ""
    tail.source = ""
    tail.text = "NEEDLE"  # case-insensitive substring
    assert len(tail.lines) == 30
    tail.text = r"message 29\d "
    tail.regex = True
    assert [line["message"].split()[1] for line in tail.lines] == [str(i) for i in range(290, 300)]
    tail.text = "("  # a bad pattern is reported, not raised
    assert tail.lines == []
    assert "invalid regular expression" in tail.error
    tail.text = ""
    assert tail.error == ""
    assert len(tail.lines) == 200
    tail.limit = 5000
    assert tail.limit == 200
    tail.close()


def test_log_tail_pause_keeps_lines_and_moves_counters(hub: Hub, spy: CommSpy) -> None:
    tail = LogTail(hub)
    hub.publish("log", "a", level="INFO", message="first")
    hub.render_now(now=0.0)
    tail.follow = False
    shown = list(tail.lines)
    mark = spy.mark()
    hub.publish("log", "a", level="INFO", message="second")
    hub.render_now(now=1.0)
    assert tail.lines == shown
    assert tail.total == 2
    (update,) = spy.updates(tail, since=mark)
    assert set(update.state) <= {"total", "dropped", "capacity"}
    tail.follow = True  # resume: the newest lines at once
    assert [line["message"] for line in tail.lines] == ["first", "second"]
    tail.close()


def test_log_tail_initial_filter_from_constructor(hub: Hub, spy: CommSpy) -> None:
    hub.publish("log", "a", level="INFO", message="info")
    hub.publish("log", "a", level="ERROR", message="error")
    tail = LogTail(hub, level="ERROR")
    assert [line["message"] for line in tail.lines] == ["error"]
    tail.close()


def test_system_metrics_windows_and_gpus(hub: Hub, clock: FakeClock, spy: CommSpy) -> None:
    sm = SystemMetrics(hub, window=60)
    assert sm.panel.window == 60
    for _ in range(120):
        clock.advance(1.0)
        hub.publish("system.sample", data=sample(clock(), cores=4))
    hub.render_now(now=0.0)
    assert sm.panel.data["latest"]["cpu"] == 12.5
    # The last minute, both ends included, after a gap point at the window's start (it keeps
    # the time axis spanning the whole window).
    assert len(sm._cpu.x) == len(sm._cpu.y) == 1 + 61
    assert list(sm._cores.y) == [10.0, 11.0, 12.0, 13.0]
    assert sm._gpu_load is None  # no GPU row without GPUs
    assert len(sm.plots.children) == 4

    sm.panel.window = 300  # the browser's window buttons
    assert sm.window == 300
    assert len(sm._cpu.x) == 1 + 120

    clock.advance(1.0)
    hub.publish("system.sample", data=sample(clock(), cores=4, gpus=2))
    hub.render_now(now=5.0)
    assert sm._gpu_load is not None
    assert len(sm.plots.children) == 5
    assert sm._gpu_load.y.shape == (4, 1 + 121)  # load and memory rows for two GPUs
    assert sm._gpu_temp.y.shape == (2, 1 + 121)
    sm.close()


def test_dashboard_header_health(hub: Hub, spy: CommSpy) -> None:
    header = DashboardHeader(hub, title="ops")
    register_agents(hub)
    hub.render_now()
    assert header.title == "ops"
    assert header.counts["idle"] == len(AGENTS)
    assert set(header.health) >= {
        "events_per_second",
        "dropped",
        "rejected",
        "loop_lag_ms",
        "stale_agents",
    }
    header.close()
