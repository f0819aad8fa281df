"""AgentRegistry: keyed by name, counters that increment, staleness, bad data ignored."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from codeur_widgets.core.clock import FakeClock
from codeur_widgets.core.events import Event
from codeur_widgets.core.registry import AgentRegistry


def feed(reg: AgentRegistry, clock: FakeClock, topic: str, agent: str, **data: object) -> None:
    reg.apply(Event.create(topic, agent, data, clock=clock))


def agent(reg: AgentRegistry, name: str) -> dict:
    found = reg.get(name)
    assert found is not None
    return found


def test_two_agents_of_one_role_never_overwrite_each_other() -> None:
    """Defect 8: the plan keyed the registry by agent type."""
    clock = FakeClock()
    reg = AgentRegistry(clock=clock)
    feed(reg, clock, "agent.registered", "coder-1", role="executor", model="gpt-4o")
    feed(reg, clock, "agent.registered", "coder-2", role="executor", model="claude")
    feed(reg, clock, "agent.task.started", "coder-1", task="A")
    names = [a["name"] for a in reg.snapshot()["agents"]]
    assert names == ["coder-1", "coder-2"]
    assert agent(reg, "coder-1")["status"] == "active"
    assert agent(reg, "coder-2")["status"] == "idle"
    assert agent(reg, "coder-2")["model"] == "claude"


def test_tasks_completed_increments_and_mean_is_a_running_mean() -> None:
    """Defect 2: the plan overwrote tasks_completed with 1 and kept the last duration."""
    clock = FakeClock()
    reg = AgentRegistry(clock=clock)
    for duration in [1.0, 2.0, 3.0, 10.0]:
        feed(reg, clock, "agent.task.started", "a", task="t", task_id=f"t{duration}")
        clock.advance(duration)
        feed(reg, clock, "agent.task.completed", "a", task_id=f"t{duration}")
    a = agent(reg, "a")
    assert a["tasks_completed"] == 4
    assert a["duration_mean"] == 4.0
    assert 3.0 < a["duration_p95"] <= 10.0
    assert a["status"] == "idle" and a["task"] is None


def test_concurrent_tasks_on_one_agent_are_tracked_separately() -> None:
    clock = FakeClock()
    reg = AgentRegistry(clock=clock)
    feed(reg, clock, "agent.task.started", "a", task="first", task_id="1")
    feed(reg, clock, "agent.task.started", "a", task="second", task_id="2")
    feed(reg, clock, "agent.task.completed", "a", task_id="2")
    assert agent(reg, "a")["task"] == "first"
    assert agent(reg, "a")["status"] == "active"
    feed(reg, clock, "agent.task.completed", "a", task_id="1")
    assert agent(reg, "a")["status"] == "idle"


def test_failures_errors_tokens_and_metrics() -> None:
    clock = FakeClock()
    reg = AgentRegistry(clock=clock)
    feed(reg, clock, "agent.task.started", "a", task="t", task_id="1")
    feed(reg, clock, "agent.tokens", "a", prompt=800, completion=200, cost_usd=0.01)
    feed(reg, clock, "agent.tokens", "a", prompt=100, completion=50, cost_usd=0.002)
    feed(reg, clock, "agent.task.failed", "a", task_id="1", error_type="TimeoutError", error="slow")
    feed(reg, clock, "agent.error", "a", error_type="TimeoutError", error="slow")
    feed(reg, clock, "agent.metrics", "a", queue_depth=3, ratio=0.5)
    a = agent(reg, "a")
    assert (a["prompt_tokens"], a["completion_tokens"]) == (900, 250)
    assert abs(a["cost_usd"] - 0.012) < 1e-9
    assert a["tasks_failed"] == 1 and a["errors"] == 1
    assert a["last_error"]["type"] == "TimeoutError" and a["last_error"]["message"] == "slow"
    assert a["status"] == "error"
    assert a["metrics"] == {"queue_depth": 3.0, "ratio": 0.5}


def test_cancelled_task_is_not_a_failure() -> None:
    clock = FakeClock()
    reg = AgentRegistry(clock=clock)
    feed(reg, clock, "agent.task.started", "a", task="t", task_id="1")
    feed(reg, clock, "agent.task.failed", "a", task_id="1", cancelled=True)
    a = agent(reg, "a")
    assert (a["tasks_failed"], a["status"], a["task"]) == (0, "idle", None)


def test_stale_agents_go_offline_and_come_back() -> None:
    clock = FakeClock()
    reg = AgentRegistry(clock=clock, stale_after=30)
    feed(reg, clock, "agent.task.started", "a", task="t")
    last = clock()
    clock.advance(29)
    reg.tick(clock())
    assert reg.stale_agents() == []
    clock.advance(2)
    version = reg.version
    reg.tick(clock())
    assert reg.version > version
    a = agent(reg, "a")
    assert (a["status"], a["stale"], a["stale_since"]) == ("offline", True, last)
    assert reg.stale_agents() == ["a"]
    feed(reg, clock, "agent.heartbeat", "a")
    a = agent(reg, "a")
    assert (a["status"], a["stale"]) == ("active", False)


def test_message_senders_are_not_agents_but_keep_agents_alive() -> None:
    clock = FakeClock()
    reg = AgentRegistry(clock=clock)
    feed(reg, clock, "agent.message", "user", target="request_planner", kind="request")
    assert reg.snapshot()["agents"] == []
    feed(reg, clock, "agent.registered", "rp")
    clock.advance(10)
    feed(reg, clock, "agent.message", "rp", target="cp", kind="x")
    assert agent(reg, "rp")["last_heartbeat"] == clock()


def test_bad_fields_are_ignored_and_counted() -> None:
    clock = FakeClock()
    reg = AgentRegistry(clock=clock)
    feed(reg, clock, "agent.tokens", "a", prompt="many", completion=1)
    feed(reg, clock, "agent.status", "a", status="sleepy")
    feed(reg, clock, "agent.metrics", "a", x="high")
    feed(reg, clock, "agent.something.new", "a")
    a = agent(reg, "a")
    assert a["prompt_tokens"] == 0 and a["status"] == "idle" and a["metrics"] == {}
    assert reg.ignored == 3 and reg.unknown_topics == 1


def test_forget_and_reset_counters() -> None:
    clock = FakeClock()
    reg = AgentRegistry(clock=clock)
    feed(reg, clock, "agent.tokens", "a", prompt=5, completion=5)
    feed(reg, clock, "agent.registered", "b")
    reg.reset_counters()
    assert agent(reg, "a")["prompt_tokens"] == 0
    assert reg.forget("b") and not reg.forget("b")
    assert reg.names() == ["a"]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)
topics = st.sampled_from(
    [
        "agent.registered",
        "agent.heartbeat",
        "agent.status",
        "agent.task.started",
        "agent.task.completed",
        "agent.task.failed",
        "agent.error",
        "agent.tokens",
        "agent.metrics",
        "agent.message",
        "agent.unknown",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(topics, st.dictionaries(st.text(max_size=12), json_values)), max_size=20))
def test_arbitrary_data_never_raises_and_snapshot_stays_json(items: list) -> None:
    clock = FakeClock()
    reg = AgentRegistry(clock=clock)
    for topic, data in items:
        reg.apply(Event.create(topic, "a", data, clock=clock))
        clock.advance(1)
    reg.tick(clock())
    json.dumps(reg.snapshot(), allow_nan=False)
