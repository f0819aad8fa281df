"""AgentRegistry: keyed by name, counters that increment, staleness, bad data ignored."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codeur_widgets.core.clock import FakeClock
from codeur_widgets.core.events import Event, InvalidEvent
from codeur_widgets.core.registry import (
    MAX_METRICS,
    MAX_RUNNING,
    STATUSES,
    AgentRegistry,
    normalize_status,
)


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


def test_task_ids_of_any_accepted_type_close_their_task() -> None:
    """Codeur may send integer task ids: the start and the end must still match."""
    clock = FakeClock()
    reg = AgentRegistry(clock=clock)
    feed(reg, clock, "agent.task.started", "a", task="int id", task_id=5, job_id=7)
    assert agent(reg, "a")["job_id"] == "7"
    clock.advance(3)
    feed(reg, clock, "agent.task.completed", "a", task_id=5)
    a = agent(reg, "a")
    assert (a["status"], a["task"], a["duration_mean"]) == ("idle", None, 3.0)


def test_completion_without_task_id_closes_the_newest_task() -> None:
    clock = FakeClock()
    reg = AgentRegistry(clock=clock)
    feed(reg, clock, "agent.task.started", "a", task="outer")
    clock.advance(1)
    feed(reg, clock, "agent.task.started", "a", task="inner")
    clock.advance(1)
    feed(reg, clock, "agent.task.completed", "a")
    assert agent(reg, "a")["task"] == "outer"
    feed(reg, clock, "agent.task.completed", "a", duration=5.0)
    a = agent(reg, "a")
    assert a["status"] == "idle" and a["tasks_completed"] == 2
    assert a["duration_mean"] == pytest.approx((1.0 + 5.0) / 2)


def test_a_completion_never_overwrites_the_count_with_one() -> None:
    """Defect 2, at volume: 1000 tasks of varied durations give exact count and mean."""
    clock = FakeClock()
    reg = AgentRegistry(clock=clock, duration_window=100)
    rng = random.Random(0)
    durations = [rng.uniform(0.1, 9.0) for _ in range(1000)]
    for i, d in enumerate(durations):
        feed(reg, clock, "agent.task.started", "a", task="t", task_id=str(i))
        feed(reg, clock, "agent.task.completed", "a", task_id=str(i), duration=d)
    a = agent(reg, "a")
    assert a["tasks_completed"] == 1000
    assert a["duration_mean"] == pytest.approx(sum(durations) / 1000)
    assert a["duration_mean"] != pytest.approx(durations[-1])
    # p95 is over the last `duration_window` durations.
    window = sorted(durations[-100:])
    assert window[90] <= a["duration_p95"] <= window[-1]


def test_a_failed_task_is_one_error_even_with_its_agent_error() -> None:
    clock = FakeClock()
    reg = AgentRegistry(clock=clock)
    # A producer that sends only the failure still gets an error counted.
    feed(reg, clock, "agent.task.started", "a", task="t", task_id="1")
    feed(reg, clock, "agent.task.failed", "a", task_id="1", error_type="KeyError", error="'x'")
    a = agent(reg, "a")
    assert (a["tasks_failed"], a["errors"], a["status"]) == (1, 1, "error")
    assert a["last_error"] == {"type": "KeyError", "message": "'x'", "ts": clock()}
    # AgentHandle's pair (failure + error carrying the same task_id) counts once.
    feed(reg, clock, "agent.task.started", "a", task="t", task_id="2")
    feed(reg, clock, "agent.task.failed", "a", task_id="2", error_type="E", error="boom")
    feed(reg, clock, "agent.error", "a", task_id="2", error_type="E", error="boom")
    assert (agent(reg, "a")["tasks_failed"], agent(reg, "a")["errors"]) == (2, 2)
    # A later error of its own counts, even with the same message.
    clock.advance(5)
    feed(reg, clock, "agent.error", "a", error_type="E", error="boom")
    assert agent(reg, "a")["errors"] == 3
    # A successful task clears the error status.
    feed(reg, clock, "agent.task.started", "a", task="t", task_id="3")
    feed(reg, clock, "agent.task.completed", "a", task_id="3")
    assert agent(reg, "a")["status"] == "idle"


def test_interleaved_failure_reports_of_concurrent_tasks_count_once_each() -> None:
    """Threads interleave a task's two reports (failed, agent.error) with other tasks' reports."""
    clock = FakeClock()
    reg = AgentRegistry(clock=clock)
    for i in range(3):
        feed(reg, clock, "agent.task.started", "a", task="t", task_id=str(i))
    feed(reg, clock, "agent.task.failed", "a", task_id="0", error_type="E", error="x")
    feed(reg, clock, "agent.task.failed", "a", task_id="1", error_type="E", error="x")
    feed(reg, clock, "agent.error", "a", task_id="2", error_type="E", error="x")  # error first
    feed(reg, clock, "agent.error", "a", task_id="0", error_type="E", error="x")
    feed(reg, clock, "agent.task.failed", "a", task_id="2", error_type="E", error="x")
    feed(reg, clock, "agent.error", "a", task_id="1", error_type="E", error="x")
    a = agent(reg, "a")
    assert (a["tasks_failed"], a["errors"], a["status"]) == (3, 3, "error")


def test_an_error_while_a_task_runs_keeps_the_agent_active() -> None:
    clock = FakeClock()
    reg = AgentRegistry(clock=clock)
    feed(reg, clock, "agent.task.started", "a", task="t", task_id="1")
    feed(reg, clock, "agent.error", "a", error="retrying", error_type="RateLimitError")
    a = agent(reg, "a")
    assert (a["status"], a["errors"], a["last_error"]["type"]) == ("active", 1, "RateLimitError")


def test_open_tasks_per_agent_are_bounded() -> None:
    clock = FakeClock()
    reg = AgentRegistry(clock=clock)
    for i in range(MAX_RUNNING + 10):
        feed(reg, clock, "agent.task.started", "a", task=f"t{i}", task_id=str(i))
    assert reg.evicted_tasks == 10
    assert agent(reg, "a")["task"] == f"t{MAX_RUNNING + 9}"
    for i in range(10, MAX_RUNNING + 10):
        feed(reg, clock, "agent.task.completed", "a", task_id=str(i))
    assert agent(reg, "a")["status"] == "idle"


def test_a_flood_of_agent_names_is_capped() -> None:
    clock = FakeClock()
    reg = AgentRegistry(clock=clock, max_agents=100)
    for i in range(1000):
        feed(reg, clock, "agent.heartbeat", f"random-{i}")
    assert len(reg) == 100 and reg.refused_agents == 900
    feed(reg, clock, "agent.tokens", "random-5", prompt=1)  # known agents still update
    assert agent(reg, "random-5")["prompt_tokens"] == 1


def test_snapshot_stays_small_with_many_agents() -> None:
    clock = FakeClock()
    reg = AgentRegistry(clock=clock)
    for i in range(3000):
        feed(reg, clock, "agent.registered", f"agent-{i:04d}", role="executor", model="m" * 100)
        feed(reg, clock, "agent.task.started", f"agent-{i:04d}", task="x" * 400)
    snap = reg.snapshot()
    size = len(json.dumps(snap, allow_nan=False))
    assert size <= 64 * 1024
    assert snap["omitted"] == 3000 - len(snap["agents"]) > 0
    assert sum(snap["counts"].values()) == 3000 and snap["counts"]["active"] == 3000
    listed = [a["name"] for a in snap["agents"]]
    assert listed == reg.names()[: len(listed)]  # a stable prefix in registration order
    assert AgentRegistry(clock=clock).snapshot()["omitted"] == 0


def test_snapshot_shape_and_order() -> None:
    clock = FakeClock()
    reg = AgentRegistry(clock=clock, stale_after=12.5)
    feed(reg, clock, "agent.registered", "zeta")
    clock.advance(1)
    feed(reg, clock, "agent.registered", "beta")  # same time as alpha, so ordered by name
    feed(reg, clock, "agent.registered", "alpha")
    feed(reg, clock, "agent.registered", "zeta", role="late")  # re-registering keeps its place
    snap = reg.snapshot()
    assert [a["name"] for a in snap["agents"]] == ["zeta", "alpha", "beta"]
    assert snap["now"] == clock() and snap["stale_after"] == 12.5
    assert list(snap["counts"]) == list(STATUSES)
    assert set(snap) == {"now", "stale_after", "counts", "agents", "omitted"}
    assert list(snap["agents"][0]) == [
        "name",
        "role",
        "model",
        "status",
        "task",
        "task_started",
        "job_id",
        "registered_at",
        "last_heartbeat",
        "stale",
        "stale_since",
        "tasks_completed",
        "tasks_failed",
        "duration_mean",
        "duration_p95",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
        "cost_unknown",
        "errors",
        "last_error",
        "metrics",
        "paused",
        "paused_at",
        "note",
    ]
    json.dumps(snap, allow_nan=False)
    # Snapshots are copies: mutating one does not change the store.
    snap["agents"][0]["metrics"]["x"] = 1.0
    assert agent(reg, "zeta")["metrics"] == {}


def test_any_agent_event_registers_the_agent_implicitly_as_idle() -> None:
    clock = FakeClock()
    reg = AgentRegistry(clock=clock)
    version = reg.version
    feed(reg, clock, "agent.tokens", "remote", prompt=3, completion=1, cost_usd=0.5)
    a = agent(reg, "remote")
    assert (a["status"], a["role"], a["registered_at"]) == ("idle", None, clock())
    assert (a["prompt_tokens"], a["cost_usd"]) == (3, 0.5)
    assert reg.version > version
    reg.apply(Event.create("agent.heartbeat", None, clock=clock))  # no agent: counted
    assert reg.ignored == 1 and len(reg) == 1


def test_stale_detection_details() -> None:
    clock = FakeClock()
    reg = AgentRegistry(clock=clock, stale_after=30)
    feed(reg, clock, "agent.error", "broken", error="x")
    feed(reg, clock, "agent.registered", "closed")
    feed(reg, clock, "agent.status", "closed", status="offline")
    feed(reg, clock, "agent.heartbeat", "fine")
    last = clock()
    clock.advance(20)
    feed(reg, clock, "agent.heartbeat", "fine")
    clock.advance(15)
    reg.tick(clock())
    # A late event (older timestamp, from a transport) does not move the heartbeat back.
    reg.apply(Event.create("agent.heartbeat", "fine", ts=clock() - 100, clock=clock))
    assert agent(reg, "fine")["last_heartbeat"] == clock() - 15
    assert reg.stale_agents() == ["broken"]  # "closed" left cleanly: offline, not stale
    broken = agent(reg, "broken")
    assert (broken["status"], broken["stale"], broken["stale_since"]) == ("offline", True, last)
    assert reg.snapshot()["counts"]["offline"] == 2
    version = reg.version
    reg.tick(clock() + 1)
    assert reg.version == version  # already stale: no change, no new frame
    feed(reg, clock, "agent.metrics", "broken", depth=1)  # any event is a sign of life
    broken = agent(reg, "broken")
    assert (broken["status"], broken["stale"], broken["stale_since"]) == ("error", False, None)


def test_bad_types_of_every_field_are_ignored_and_counted() -> None:
    clock = FakeClock()
    reg = AgentRegistry(clock=clock)
    feed(reg, clock, "agent.registered", "a", role=5, model=["x"])
    feed(reg, clock, "agent.task.started", "a", task={"no": 1}, task_id=[1], job_id=1.5)
    feed(reg, clock, "agent.task.completed", "a", duration="slow")
    feed(reg, clock, "agent.tokens", "a", prompt=-1)
    feed(reg, clock, "agent.tokens", "a", prompt=True)
    feed(reg, clock, "agent.tokens", "a", cost_usd=-0.5)
    feed(reg, clock, "agent.tokens", "a", cost_usd="free")
    feed(reg, clock, "agent.status", "a", status=3)
    feed(reg, clock, "agent.metrics", "a", flag=True, nested={"x": 1}, **{"n" * 65: 1.0})
    a = agent(reg, "a")
    assert a["role"] is None and a["model"] is None
    assert a["tasks_completed"] == 1 and a["duration_mean"] == 0.0  # duration from the start
    assert (a["prompt_tokens"], a["cost_usd"], a["metrics"]) == (0, 0.0, {})
    assert reg.ignored == 2 + 3 + 1 + 4 + 1 + 3
    # Integral floats are whole numbers (JSON producers send 812.0).
    feed(reg, clock, "agent.tokens", "a", prompt=812.0, completion=3)
    assert agent(reg, "a")["prompt_tokens"] == 812


def test_metrics_keep_the_last_value_and_are_capped() -> None:
    clock = FakeClock()
    reg = AgentRegistry(clock=clock)
    feed(reg, clock, "agent.metrics", "a", depth=1)
    feed(reg, clock, "agent.metrics", "a", depth=7.5)
    assert agent(reg, "a")["metrics"] == {"depth": 7.5}
    feed(reg, clock, "agent.metrics", "a", **{f"m{i}": i for i in range(2 * MAX_METRICS)})
    metrics = agent(reg, "a")["metrics"]
    assert len(metrics) == MAX_METRICS and metrics["depth"] == 7.5
    feed(reg, clock, "agent.metrics", "a", depth=9)  # known names still update
    assert agent(reg, "a")["metrics"]["depth"] == 9.0


def test_status_spellings() -> None:
    assert normalize_status("ACTIVE") == "active"
    assert normalize_status(" busy ") == "active"
    assert normalize_status("stopped") == "offline"
    assert normalize_status("sleepy") is None and normalize_status(None) is None
    clock = FakeClock()
    reg = AgentRegistry(clock=clock)
    feed(reg, clock, "agent.status", "a", status="Initializing")
    assert agent(reg, "a")["status"] == "initializing"
    feed(reg, clock, "agent.registered", "a")  # registering finishes initialisation
    assert agent(reg, "a")["status"] == "idle"


def test_reset_counters_keeps_the_present() -> None:
    clock = FakeClock()
    reg = AgentRegistry(clock=clock)
    feed(reg, clock, "agent.task.started", "a", task="t", task_id="1")
    feed(reg, clock, "agent.error", "a", error="x")
    feed(reg, clock, "agent.metrics", "a", depth=2)
    reg.reset_counters()
    a = agent(reg, "a")
    assert (a["errors"], a["last_error"], a["duration_mean"]) == (0, None, None)
    assert (a["status"], a["task"], a["metrics"]) == ("active", "t", {"depth": 2.0})
    assert reg.get("nobody") is None
    assert "a" in reg and "nobody" not in reg


def test_forgotten_agents_come_back_with_their_next_event() -> None:
    clock = FakeClock()
    reg = AgentRegistry(clock=clock)
    feed(reg, clock, "agent.registered", "a")
    feed(reg, clock, "agent.registered", "b")
    assert reg.forget("a")
    clock.advance(1)
    feed(reg, clock, "agent.heartbeat", "a")
    assert reg.names() == ["b", "a"]
    assert agent(reg, "a")["registered_at"] == clock()


def test_constructor_validates() -> None:
    with pytest.raises(ValueError):
        AgentRegistry(stale_after=0)
    with pytest.raises(ValueError):
        AgentRegistry(duration_window=0)
    reg = AgentRegistry()
    assert (reg.name, reg.stale_after) == ("agents", 30.0)
    assert reg.topics == ("agent.*", "admin.command", "span.started", "span.ended")


# -- property tests -------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    # Few leaves: odd types on the fields the registry reads are what matters, and a deep value
    # only costs generation time (with 10 leaves the test spent 23 s drawing its 300 examples).
    max_leaves=4,
)
# The fields the registry reads, plus anything else: odd values must land on real fields.
field_names = st.sampled_from(
    [
        "role",
        "model",
        "status",
        "task",
        "task_id",
        "job_id",
        "duration",
        "error",
        "error_type",
        "message",
        "prompt",
        "completion",
        "cost_usd",
        "cancelled",
        "target",
        "kind",
    ]
) | st.text(max_size=12)
data_dicts = st.dictionaries(field_names, json_values, max_size=6)
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
        "agent.task.retried",
    ]
)
agent_names = st.sampled_from(["a", "b", "user"]) | st.text(
    st.characters(categories=["L", "N", "P"]), min_size=1, max_size=20
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(topics, agent_names, data_dicts, st.floats(min_value=0, max_value=40)),
        max_size=30,
    )
)
def test_arbitrary_data_never_raises_and_snapshot_stays_json(items: list) -> None:
    clock = FakeClock()
    reg = AgentRegistry(clock=clock, stale_after=30)
    for topic, name, data, step in items:
        try:
            event = Event.create(topic, name, data, clock=clock)
        except InvalidEvent:
            continue  # e.g. an integer beyond ±2**63: refused before any store sees it
        reg.apply(event)
        clock.advance(step)
        reg.tick(clock())
    snap = reg.snapshot()
    json.dumps(snap, allow_nan=False)
    assert sum(snap["counts"].values()) == len(reg) == len(snap["agents"]) + snap["omitted"]
    for a in snap["agents"]:
        assert a["status"] in STATUSES
        assert a["tasks_completed"] >= 0 and a["tasks_failed"] >= 0 and a["errors"] >= 0
        assert a["prompt_tokens"] >= 0 and a["cost_usd"] >= 0
        assert a["stale"] == (a["stale_since"] is not None)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 5)), max_size=40))
def test_counts_only_ever_increase(ops: list) -> None:
    """However starts and ends interleave, completed + failed equals the ends received."""
    clock = FakeClock()
    reg = AgentRegistry(clock=clock)
    ends = 0
    for is_end, task in ops:
        if is_end:
            ends += 1
            topic = "agent.task.completed" if task % 2 else "agent.task.failed"
            before = agent(reg, "a") if "a" in reg else None
            feed(reg, clock, topic, "a", task_id=str(task), error="e")
            after = agent(reg, "a")
            if before is not None:
                assert after["tasks_completed"] >= before["tasks_completed"]
                assert after["tasks_failed"] >= before["tasks_failed"]
        else:
            feed(reg, clock, "agent.task.started", "a", task=f"t{task}", task_id=str(task))
        clock.advance(1)
    if ends:
        a = agent(reg, "a")
        assert a["tasks_completed"] + a["tasks_failed"] == ends
