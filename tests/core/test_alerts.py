"""Alert rules on a fake clock: every metric fires after its "for" duration and not before,
resolves with hysteresis, and does not flap; states, events, history, acknowledgement, defaults.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from codeur_widgets.core.alerts import (
    METRICS,
    AlertError,
    Rule,
    RuleError,
    default_rules,
    rule_from_dict,
)
from codeur_widgets.core.clock import FakeClock
from codeur_widgets.core.events import Event
from codeur_widgets.core.hub import Hub

T0 = 1_700_000_000.0


def make(**kwargs: Any) -> tuple[Hub, FakeClock, list[Event]]:
    clock = FakeClock(T0)
    kwargs.setdefault("default_alerts", False)
    hub = Hub(clock=clock, collect_system=False, **kwargs)
    events: list[Event] = []
    hub.bus.subscribe("alert.*", events.append)
    return hub, clock, events


def topics(events: list[Event]) -> list[str]:
    return [e.topic for e in events]


# -- the state machine, with a value set directly ----------------------------------------------


class Knob:
    """A metric function whose value the test sets."""

    def __init__(self, value: float | None = 0.0) -> None:
        self.value = value

    def __call__(self) -> float | None:
        return self.value


def test_fires_after_for_not_before_and_resolves_past_the_clear_level() -> None:
    hub, clock, events = make()
    knob = Knob()
    hub.alerts.add(Rule("r", metric=knob, above=10, for_=3, clear_for=2))
    hub.alerts.evaluate()
    knob.value = 11
    for _ in range(3):  # t0, t0+1, t0+2: pending, not fired
        hub.alerts.evaluate()
        assert hub.alerts.active() == []
        assert hub.alerts.describe("r")["state"] == "pending"
        clock.advance(1)
    hub.alerts.evaluate()  # t0+3: held for 3 s
    [alert] = hub.alerts.active()
    assert alert["value"] == 11 and alert["since"] == T0 and alert["fired_at"] == T0 + 3
    assert topics(events) == ["alert.fired"]
    # Inside the hysteresis band (clear level 9): still firing, "last seen" stays.
    knob.value = 9.5
    for _ in range(5):
        clock.advance(1)
        hub.alerts.evaluate()
    [alert] = hub.alerts.active()
    assert alert["current"] == 9.5 and alert["last_seen"] == T0 + 3
    # Back past the clear level: resolves once it stayed clear for clear_for (2 s).
    knob.value = 8.9
    clock.advance(1)
    hub.alerts.evaluate()
    clock.advance(1)
    hub.alerts.evaluate()
    assert len(hub.alerts.active()) == 1
    clock.advance(1)
    hub.alerts.evaluate()
    assert hub.alerts.active() == []
    [done] = hub.alerts.resolved()
    assert done["reason"] == "cleared" and done["value"] == 11 and done["current"] == 8.9
    assert topics(events) == ["alert.fired", "alert.resolved"]


def test_a_broken_streak_restarts_the_for_duration() -> None:
    hub, clock, events = make()
    knob = Knob(11)
    hub.alerts.add(Rule("r", metric=knob, above=10, for_=3))
    for value in (11, 11, 10, 11, 11, 11):  # 10 is not above 10: the streak restarts
        knob.value = value
        hub.alerts.evaluate()
        clock.advance(1)
    assert events == []
    knob.value = 11
    hub.alerts.evaluate()
    assert topics(events) == ["alert.fired"]


@pytest.mark.parametrize("for_", [0.0, 3.0])
def test_no_flapping_on_a_value_oscillating_around_the_threshold(for_: float) -> None:
    hub, clock, events = make()
    knob = Knob()
    hub.alerts.add(Rule("r", metric=knob, above=100, for_=for_))
    for i in range(120):
        knob.value = 101 if i % 2 else 99  # ±1 % around the threshold, every tick
        hub.alerts.evaluate()
        clock.advance(1)
    # With for_=0 it fires once and the band (clear at 90) keeps it firing; with for_=3 the
    # condition never holds 3 s, so it never fires.
    assert topics(events) == (["alert.fired"] if for_ == 0 else [])


def test_below_rules_and_an_explicit_clear_level() -> None:
    hub, _clock, events = make()
    knob = Knob(50)
    hub.alerts.add(Rule("low", metric=knob, below=10, clear=20))
    hub.alerts.evaluate()
    knob.value = 9
    hub.alerts.evaluate()
    assert topics(events) == ["alert.fired"]
    knob.value = 19  # above the threshold, below the clear level: still firing
    hub.alerts.evaluate()
    assert len(hub.alerts.active()) == 1
    knob.value = 20
    hub.alerts.evaluate()
    assert topics(events) == ["alert.fired", "alert.resolved"]


def test_none_means_no_data_and_a_vanished_key_resolves() -> None:
    hub, _clock, events = make()
    values: dict[str, float | None] = {"a": 5.0, "b": 0.0}
    hub.alerts.add(Rule("per key", metric=lambda: dict(values), scope="agent:*", above=1))
    hub.alerts.evaluate()
    assert [a["scope"] for a in hub.alerts.active()] == ["agent:a"]
    assert events[0].agent == "a"  # the alert is about agent a
    del values["a"]  # the agent was forgotten
    hub.alerts.evaluate()
    assert hub.alerts.active() == []
    values["b"] = None
    hub.alerts.evaluate()
    assert topics(events) == ["alert.fired", "alert.resolved"]


# -- every built-in metric, through the stores -------------------------------------------------


@dataclass
class Driver:
    """Makes a metric's value high (breaching) or low through the stores.

    ``feed`` runs on every tick while high (windowed metrics need fresh events); ``settle`` is
    how many seconds after ``low`` the value can take to fall (its window).
    """

    rule: dict[str, Any]
    high: Callable[[Hub, FakeClock], None]
    low: Callable[[Hub, FakeClock], None] = lambda hub, clock: None
    feed: Callable[[Hub, FakeClock], None] | None = None
    settle: float = 0.0
    setup: Callable[[Hub, FakeClock], None] = field(default=lambda hub, clock: None)


def _tokens(agent: str, cost: float, tokens: int = 100) -> Callable[[Hub, FakeClock], None]:
    def feed(hub: Hub, clock: FakeClock) -> None:
        hub.publish("agent.tokens", agent, prompt=tokens, completion=0, cost_usd=cost)

    return feed


def _span_usage(hub: Hub, clock: FakeClock) -> None:
    hub.publish(
        "span.ended", "coder", trace_id="t1", span_id="s1",
        data={"status": "ok", "model": "gpt-x", "prompt_tokens": 100, "completion_tokens": 50,
              "cost_usd": 1.0},
    )  # fmt: skip


def _job_usage(hub: Hub, clock: FakeClock) -> None:
    hub.publish("agent.tokens", "coder", prompt=10, completion=0, cost_usd=1.0, job_id="job-9")


def _errors(hub: Hub, clock: FakeClock) -> None:
    for _ in range(3):
        hub.publish("agent.error", "coder", error_type="E", error="boom")


def _failed_task(hub: Hub, clock: FakeClock) -> None:
    hub.publish("agent.task.started", "coder", task="t")
    hub.publish("agent.task.failed", "coder", error_type="E", error="x")


def _durations(seconds: float, n: int) -> Callable[[Hub, FakeClock], None]:
    def run(hub: Hub, clock: FakeClock) -> None:
        for _ in range(n):
            hub.publish("agent.task.started", "coder", task="t")
            hub.publish("agent.task.completed", "coder", duration=seconds)

    return run


def _old_agent(hub: Hub, clock: FakeClock) -> None:
    hub.publish("agent.registered", "coder", ts=clock() - 100)


def _beat(hub: Hub, clock: FakeClock) -> None:
    hub.publish("agent.heartbeat", "coder")


def _enqueue(n: int, waited: float = 0.0) -> Callable[[Hub, FakeClock], None]:
    def run(hub: Hub, clock: FakeClock) -> None:
        for _ in range(n):
            job = f"job-{next(_JOBS)}"
            hub.publish("job.enqueued", job_id=job, ts=clock() - waited)
            if waited or n > 3:
                hub.publish("job.started", job_id=job)

    return run


def _start_all(hub: Hub, clock: FakeClock) -> None:
    for job in list(hub.queue._active):
        hub.publish("job.started", job_id=job)


def _job_failed(hub: Hub, clock: FakeClock) -> None:
    hub.publish("job.completed", job_id=f"job-{next(_JOBS)}", success=False)


def _set(attr: str, value: Any) -> Callable[[Hub, FakeClock], None]:
    def run(hub: Hub, clock: FakeClock) -> None:
        target: Any = hub
        *path, last = attr.split(".")
        for part in path:
            target = getattr(target, part)
        setattr(target, last, value)

    return run


def _drop(hub: Hub, clock: FakeClock) -> None:
    hub._inbox.dropped += 5


def _reject(hub: Hub, clock: FakeClock) -> None:
    hub.ingest({"topic": "Not A Topic!"})


class _FakeHistory:
    degraded = False
    dropped = 0


class _FakeSource:
    def __init__(self) -> None:
        self.connected = True

    def health(self) -> dict[str, Any]:
        return {
            "url": "redis://***@h:6379/0",
            "stream": "codeur:events",
            "connected": self.connected,
        }


_JOBS = iter(range(1, 10**9))

DRIVERS: dict[str, Driver] = {
    "cost_usd agent": Driver(
        {"metric": "cost_usd", "scope": "agent:coder", "above": 0.5, "window": 10},
        high=lambda hub, clock: None, feed=_tokens("coder", 1.0), settle=10,
    ),
    "cost_usd model (span.ended)": Driver(
        {"metric": "cost_usd", "scope": "model:gpt-x", "above": 0.5, "window": 10},
        high=lambda hub, clock: None, feed=_span_usage, settle=10,
    ),
    "cost_usd job:*": Driver(
        {"metric": "cost_usd", "scope": "job:*", "above": 0.5, "window": 10},
        high=lambda hub, clock: None, feed=_job_usage, settle=10,
    ),
    "cost_usd hub": Driver(
        {"metric": "cost_usd", "scope": "hub", "above": 0.5, "window": 10},
        high=lambda hub, clock: None, feed=_tokens("coder", 1.0), settle=10,
    ),
    "tokens agent": Driver(
        {"metric": "tokens", "scope": "agent:coder", "above": 50, "window": 10},
        high=lambda hub, clock: None, feed=_tokens("coder", 0.0), settle=10,
    ),
    "tokens_per_minute": Driver(
        {"metric": "tokens_per_minute", "above": 500, "window": 10},
        high=lambda hub, clock: None, feed=_tokens("coder", 0.0, tokens=1000), settle=10,
    ),
    "task_p95_s": Driver(
        {"metric": "task_p95_s", "scope": "agent:coder", "above": 5},
        high=_durations(10.0, 3), low=_durations(0.1, 200),
    ),
    "errors": Driver(
        {"metric": "errors", "scope": "agent:*", "above": 2, "window": 10},
        high=lambda hub, clock: None, feed=_errors, settle=10,
    ),
    "error_rate": Driver(
        {"metric": "error_rate", "scope": "agent:coder", "above": 0.5, "window": 10},
        high=lambda hub, clock: None, feed=_failed_task, settle=10,
    ),
    "heartbeat_age": Driver(
        {"metric": "heartbeat_age", "scope": "agent:*", "above": 30},
        high=_old_agent, low=_beat,
    ),
    "queue_length": Driver(
        {"metric": "queue_length", "above": 2}, high=_enqueue(3), low=_start_all,
    ),
    "queue_wait_p95": Driver(
        {"metric": "queue_wait_p95", "above": 5}, high=_enqueue(3, waited=10), low=_enqueue(200),
    ),
    "jobs_failed": Driver(
        {"metric": "jobs_failed", "above": 0, "window": 10},
        high=lambda hub, clock: None, feed=_job_failed, settle=10,
    ),
    "loop_lag_ms": Driver(
        {"metric": "loop_lag_ms", "above": 250}, high=_set("_loop_lag", 0.5),
        low=_set("_loop_lag", 0.01),
    ),
    "dropped": Driver(
        {"metric": "dropped", "above": 0, "window": 10},
        high=lambda hub, clock: None, feed=_drop, settle=10,
    ),
    "rejected": Driver(
        {"metric": "rejected", "above": 0, "window": 10},
        high=lambda hub, clock: None, feed=_reject, settle=10,
    ),
    "history_degraded": Driver(
        {"metric": "history_degraded"}, setup=_set("history", _FakeHistory()),
        high=_set("history.degraded", True), low=_set("history.degraded", False),
    ),
    "source_disconnected": Driver(
        {"metric": "source_disconnected", "scope": "source:*"},
        setup=lambda hub, clock: setattr(hub, "sources", [_FakeSource()]),
        high=lambda hub, clock: setattr(hub.sources[0], "connected", False),
        low=lambda hub, clock: setattr(hub.sources[0], "connected", True),
    ),
}  # fmt: skip


def test_every_metric_has_a_driver() -> None:
    assert {d.rule["metric"] for d in DRIVERS.values()} == set(METRICS)


@pytest.mark.parametrize("kind", sorted(DRIVERS))
def test_each_metric_fires_after_for_and_resolves(kind: str) -> None:
    driver = DRIVERS[kind]
    hub, clock, events = make()
    driver.setup(hub, clock)
    if "agent:" in driver.rule.get("scope", "") and kind != "heartbeat_age":
        hub.publish("agent.registered", "coder")
    hub.alerts.add(Rule(kind, **driver.rule, for_=3))
    hub.alerts.evaluate()  # a quiet first tick
    assert hub.alerts.active() == [], kind

    def tick(high: bool) -> None:
        clock.advance(1)
        if high and driver.feed is not None:
            driver.feed(hub, clock)
        hub.alerts.evaluate()

    driver.high(hub, clock)
    if driver.feed is not None:
        driver.feed(hub, clock)
    hub.alerts.evaluate()
    start = clock()
    while clock() - start < 3:
        assert hub.alerts.active() == [], (kind, clock() - start)
        tick(high=True)
    assert len(hub.alerts.active()) == 1, (kind, hub.alerts.describe(kind))
    for _ in range(5):
        tick(high=True)
    assert topics(events) == ["alert.fired"], kind
    [alert] = hub.alerts.active()
    assert alert["severity"] == "warning" and alert["rule"] == kind

    driver.low(hub, clock)
    for _ in range(int(driver.settle) + 5):  # its window, then clear_for (= for_, 3 s)
        tick(high=False)
    assert hub.alerts.active() == [], (kind, hub.alerts.describe(kind))
    assert topics(events) == ["alert.fired", "alert.resolved"], kind


# -- rules that cannot be added ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric": "cost"}, r"unknown metric 'cost' \(did you mean 'cost_usd'\?\); known"),
        ({"metric": "cost_usd", "window": -5, "above": 1}, r"window must be > 0 seconds"),
        ({"metric": "cost_usd", "window": 0, "above": 1}, r"window must be > 0 seconds"),
        ({"metric": "cost_usd", "window": 1e9, "above": 1}, r"at most 86400 seconds"),
        ({"metric": "loop_lag_ms", "window": 60, "above": 1}, r"has no window"),
        ({"metric": "cost_usd"}, r"needs a threshold"),
        ({"metric": "cost_usd", "above": 1, "below": 0}, r"not both"),
        ({"metric": "cost_usd", "above": float("nan")}, r"above must be a finite number"),
        ({"metric": "cost_usd", "above": True}, r"above must be a finite number"),
        ({"metric": "cost_usd", "above": 1, "for_": -1}, r"for_ must be >= 0"),
        ({"metric": "cost_usd", "above": 1, "scope": "team:x"}, r"scope 'team:x' is not"),
        ({"metric": "loop_lag_ms", "above": 1, "scope": "agent:x"}, r"has no scope 'agent'"),
        ({"metric": "cost_usd", "above": 1, "actions": ["explode"]}, r"unknown action"),
        ({"metric": "cost_usd", "above": 1, "actions": ["pause"]}, r"needs an agent"),
        ({"metric": "cost_usd", "above": 1, "actions": "stop_simulator:x"}, r"unknown action"),
        ({"metric": "cost_usd", "above": 1, "webhook": "ftp://h/x"}, r"http:// or https://"),
        ({"metric": "cost_usd", "above": 1, "webhook": "https:///x"}, r"has no host"),
        ({"metric": "cost_usd", "above": 1, "severity": "fatal"}, r"severity must be one of"),
        ({"metric": "cost_usd", "above": 1, "clear": 2}, r"clear \(2\) must be <= above"),
        ({"metric": lambda a, b: 0, "above": 1}, r"at most one argument"),
    ],
)
def test_bad_rules_are_refused_with_a_clear_error(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(RuleError, match=message):
        Rule("bad", **kwargs)


def test_bad_names_duplicates_and_unknown_rules() -> None:
    hub, _, _ = make()
    with pytest.raises(RuleError, match="non-empty"):
        Rule("", metric="dropped", above=0)
    hub.alerts.add(Rule("x", metric="dropped", above=0))
    with pytest.raises(RuleError, match="a rule named 'x' exists"):
        hub.alerts.add(Rule("x", metric="rejected", above=0))
    hub.alerts.add(Rule("x", metric="rejected", above=0), replace=True)
    assert hub.alerts.rules()[0].metric == "rejected"
    with pytest.raises(RuleError, match="no rule named 'y'; rules: x"):
        hub.alerts.remove("y")
    with pytest.raises(RuleError, match="takes a Rule"):
        hub.alerts.add({"name": "z"})  # type: ignore[arg-type]
    with pytest.raises(AlertError, match="no firing alert"):
        hub.alerts.acknowledge("x@hub")


def test_a_function_that_raises_is_disabled_as_broken_and_the_others_go_on() -> None:
    hub, clock, _events = make()
    calls = []

    def broken() -> float:
        calls.append(1)
        raise KeyError("gpu0")

    hub.alerts.add(Rule("flaky", metric=broken, above=1))
    hub.alerts.add(Rule("fine", metric=lambda: 5, above=1))
    hub.alerts.add(Rule("wrong type", metric=lambda: "high", above=1))
    for _ in range(4):
        hub.alerts.evaluate()
        clock.advance(1)
    assert len(calls) == 3  # three strikes, then never called again
    flaky = hub.alerts.describe("flaky")
    assert flaky["state"] == "broken" and "KeyError: 'gpu0'" in flaky["broken"]
    assert "returned 'high'" in hub.alerts.describe("wrong type")["broken"]
    assert [a["rule"] for a in hub.alerts.active()] == ["fine"]
    assert hub.health()["alerts"]["broken"] == ["flaky", "wrong type"]
    hub.alerts.enable("flaky")  # a person fixed it: evaluated again
    assert hub.alerts.describe("flaky")["state"] == "ok"


def test_a_function_that_hangs_is_broken_without_holding_the_hub() -> None:
    hub, clock, _events = make()
    hub.alerts.call_timeout = 0.3
    release = __import__("threading").Event()

    def hangs() -> float:
        release.wait(30)
        return 0.0

    hub.alerts.add(Rule("hangs", metric=hangs, above=1))
    hub.alerts.add(Rule("fine", metric="dropped", above=0))
    try:
        durations = []
        for _ in range(4):
            hub._inbox.dropped += 1
            t0 = time.perf_counter()
            hub.alerts.evaluate()
            durations.append(time.perf_counter() - t0)
            time.sleep(0.15)
            clock.advance(1)
        assert max(durations) < 0.2, durations  # a tick waits at most CALL_WAIT for a function
        hangs_rule = hub.alerts.describe("hangs")
        assert hangs_rule["state"] == "broken", hangs_rule
        assert "no answer within 0.3 s" in hangs_rule["broken"]
        assert [a["rule"] for a in hub.alerts.active()] == ["fine"]
        assert hub.health()["alerts"]["calls_abandoned"] == 1
    finally:
        release.set()


def test_a_failing_action_is_counted_and_the_alert_still_fires() -> None:
    hub, _clock, events = make()
    seen: list[dict[str, Any]] = []

    def bad_action(alert: dict[str, Any]) -> None:
        raise RuntimeError("pager down")

    hub.alerts.add(
        Rule("r", metric=lambda: 2, above=1, actions=[bad_action, seen.append, "stop_simulator"])
    )
    hub.alerts.evaluate()
    assert topics(events) == ["alert.fired"]
    assert seen and seen[0]["id"] == "r@hub" and seen[0]["value"] == 2
    described = hub.alerts.describe("r")
    assert described["action_errors"] == 2  # the raising callable, and no simulator attached
    assert "no simulator is attached" in described["last_action_error"]


def test_rule_from_dict_checks_the_form() -> None:
    rule = rule_from_dict(
        {"name": " budget ", "metric": "cost_usd", "scope": "agent:coder", "op": "above",
         "threshold": "5", "window": "3600", "for": "", "severity": "critical", "action": "pause"}
    )  # fmt: skip
    assert (rule.name, rule.above, rule.window, rule.for_, rule.actions) == (
        "budget", 5.0, 3600.0, 0.0, ("pause",),
    )  # fmt: skip
    for form, message in [
        ({"name": "x", "metric": "cost_usd", "threshold": "abc"}, "threshold must be a number"),
        ({"name": "x", "metric": "cost_usd"}, "threshold is required"),
        ({"name": "x", "metric": "cost_usd", "threshold": 1, "op": "near"}, "op must be"),
        ({"name": "x", "metric": "", "threshold": 1}, "metric is required"),
        ({"name": "x", "metric": "cost_usd", "threshold": 1, "action": "rm -rf"}, "unknown action"),
        ({"name": 5, "metric": "cost_usd", "threshold": 1}, "name must be text"),
    ]:
        with pytest.raises(RuleError, match=message):
            rule_from_dict(form)


# -- actions, events and the log tail ----------------------------------------------------------


def test_pause_is_an_audited_admin_command_from_alerts() -> None:
    hub, _clock, _events = make()
    coder = hub.agent("coding_agent")
    got: list[tuple[str, dict[str, Any]]] = []
    coder.on_command(lambda command, args: got.append((command, args)))
    hub.alerts.add(
        Rule("coder budget", metric="cost_usd", scope="agent:coding_agent", above=5.0,
             window=3600, actions=["pause", "log"])
    )  # fmt: skip
    coder.tokens(prompt=100, completion=10, cost_usd=4.0)
    hub.alerts.evaluate()
    assert got == []
    coder.tokens(prompt=100, completion=10, cost_usd=1.5)
    hub.alerts.evaluate()
    assert got == [("pause", {"alert": "coder budget@agent:coding_agent"})]
    lines = [(r["source"], r["level"], r["message"]) for r in hub.logs.query()]
    assert (
        "alerts",
        "WARNING",
        "alert.fired: coder budget: cost_usd 5.5 > 5 over 1 h (agent:coding_agent)",
    ) in lines
    assert (  # a pause is INFO in the audit trail (WARNING is for destructive commands)
        "admin",
        "INFO",
        "admin.command: pause coding_agent alert=coder budget@agent:coding_agent (by alerts)",
    ) in lines


def test_acknowledge_summary_and_severity_colours() -> None:
    hub, _clock, events = make()
    hub.alerts.add(Rule("warn", metric=lambda: 2, above=1))
    hub.alerts.add(Rule("crit", metric=lambda: 2, above=1, severity="critical"))
    hub.alerts.add(Rule("info", metric=lambda: 2, above=1, severity="info"))
    hub.alerts.evaluate()
    assert hub.alerts.summary() == {"firing": 3, "unacked": 3, "severity": "critical"}
    assert [a["rule"] for a in hub.alerts.active()] == ["crit", "warn", "info"]
    hub.alerts.acknowledge("crit@hub", by="ana")
    assert hub.alerts.summary() == {"firing": 3, "unacked": 2, "severity": "warning"}
    acked = next(a for a in hub.alerts.active() if a["rule"] == "crit")
    assert acked["acked"] and acked["acked_by"] == "ana"
    assert topics(events)[-1] == "alert.acknowledged"
    assert hub.logs.query(source="alerts")[-1]["message"] == (
        "alert.acknowledged: crit@hub acknowledged by ana"
    )


def test_removing_or_disabling_a_rule_resolves_its_alerts() -> None:
    hub, _clock, _events = make()
    hub.alerts.add(Rule("a", metric=lambda: 2, above=1))
    hub.alerts.add(Rule("b", metric=lambda: 2, above=1))
    hub.alerts.evaluate()
    hub.alerts.remove("a")
    hub.alerts.disable("b")
    assert [(r["rule"], r["reason"]) for r in hub.alerts.resolved()] == [
        ("b", "rule disabled"),
        ("a", "rule removed"),
    ]
    hub.alerts.evaluate()
    assert hub.alerts.active() == [] and hub.alerts.describe("b")["state"] == "disabled"


def test_defaults_are_on_and_can_be_turned_off() -> None:
    clock = FakeClock(T0)
    hub = Hub(clock=clock, collect_system=False)
    names = [r.name for r in hub.alerts.rules()]
    assert names == [r.name for r in default_rules()]
    assert names == [
        "stale agent", "error burst", "loop lag", "events dropped", "history degraded",
        "source disconnected",
    ]  # fmt: skip
    assert len(Hub(clock=clock, collect_system=False, default_alerts=False).alerts) == 0
    hub.alerts.remove("loop lag")
    # The stale-agent default fires for an agent silent past the heartbeat timeout, and only
    # for it; an agent that left cleanly is not stale.
    hub.agent("quiet")
    gone = hub.agent("gone")
    hub.alerts.evaluate()
    gone.close()
    clock.advance(31)
    hub.agents.tick(clock())
    hub.alerts.evaluate()
    assert [a["id"] for a in hub.alerts.active()] == ["stale agent@agent:quiet"]
    hub.publish("agent.heartbeat", "quiet")
    hub.alerts.evaluate()
    assert hub.alerts.active() == []
    # An error burst from one agent.
    for _ in range(6):
        hub.publish("agent.error", "quiet", error="x")
    hub.alerts.evaluate()
    assert [a["id"] for a in hub.alerts.active()] == ["error burst@agent:quiet"]


def test_evaluation_only_runs_while_the_hub_runs() -> None:
    hub, clock, events = make()
    hub.alerts.add(Rule("r", metric=lambda: 2, above=1))
    hub.alerts.tick(clock())  # what the housekeeping loop calls: a stopped hub does nothing
    assert events == [] and hub.alerts.evaluations == 0


# -- history: events stored, past ranges, a reopened hub ---------------------------------------


def test_history_keeps_alerts_and_a_rebuilt_past_shows_what_was_firing(tmp_path: Any) -> None:
    path = str(tmp_path / "runs.sqlite")
    hub, clock, _ = make(history=path)
    knob = Knob(0)
    hub.alerts.add(Rule("r", metric=knob, above=1, severity="critical"))
    hub.alerts.evaluate()
    clock.advance(10)
    knob.value = 5
    hub.alerts.evaluate()
    fired_at = clock()
    clock.advance(10)
    knob.value = 0
    hub.alerts.evaluate()
    resolved_at = clock()
    assert hub.history is not None
    assert hub.history.flush(timeout=10)
    stored = [e["topic"] for e in hub.history.query(topic="alert.*")]
    assert stored == ["alert.fired", "alert.resolved"]

    during = hub.history.rebuild(until=fired_at + 5)
    assert [a["id"] for a in during.alerts.active()] == ["r@hub"]
    assert during.alerts.summary()["severity"] == "critical"
    after = hub.history.rebuild(until=resolved_at + 1)
    assert after.alerts.active() == [] and after.alerts.resolved()[0]["id"] == "r@hub"
    hub.history.close()


def test_a_reopened_hub_takes_over_or_resolves_what_was_firing(tmp_path: Any) -> None:
    path = str(tmp_path / "runs.sqlite")
    hub, _clock, _ = make(history=path)
    hub.alerts.add(Rule("kept", metric=lambda: 2, above=1))
    hub.alerts.add(Rule("dropped rule", metric=lambda: 2, above=1))
    hub.alerts.evaluate()
    assert hub.history is not None
    hub.history.close()

    again, _clock2, events = make(history=path)  # a kernel restart: the rules are defined again
    knob = Knob(2)
    again.alerts.add(Rule("kept", metric=knob, above=1))
    assert {a["rule"] for a in again.alerts.active()} == {"kept", "dropped rule"}
    again.alerts.evaluate()
    assert [a["rule"] for a in again.alerts.active()] == ["kept"]  # taken over, not re-fired
    assert again.alerts.resolved()[0]["reason"] == "no such rule in this kernel"
    knob.value = 0
    again.alerts.evaluate()
    assert again.alerts.active() == []
    assert topics(events) == ["alert.resolved", "alert.resolved"]
    assert again.history is not None
    again.history.close()


def test_restored_errors_are_not_new_errors(tmp_path: Any) -> None:
    path = str(tmp_path / "runs.sqlite")
    hub, _clock, _ = make(history=path)
    for _ in range(10):
        hub.publish("agent.error", "coder", error="old")
    assert hub.history is not None
    hub.history.close()
    again, _, events = make(history=path)
    again.alerts.add(Rule("burst", metric="errors", scope="agent:*", above=5, window=60))
    again.alerts.evaluate()
    assert events == []
    for _ in range(6):
        again.publish("agent.error", "coder", error="new")
    again.alerts.evaluate()
    assert topics(events) == ["alert.fired"]
    assert again.history is not None
    again.history.close()


# -- cost of evaluation ------------------------------------------------------------------------


def test_a_hundred_rules_evaluate_in_milliseconds_whatever_the_event_count() -> None:
    hub, clock, _ = make()
    names = [f"agent{i}" for i in range(10)]
    metrics = ["cost_usd", "tokens_per_minute", "errors", "error_rate", "heartbeat_age"]
    for i in range(100):
        metric = metrics[i % len(metrics)]
        window = None if metric == "heartbeat_age" else (60, 300, 3600)[i % 3]
        hub.alerts.add(Rule(f"r{i}", metric=metric, scope="agent:*", above=1e9, window=window))
    for n in range(20_000):
        hub.publish("agent.tokens", names[n % 10], prompt=10, completion=5, cost_usd=0.001)
        if n % 1000 == 0:
            clock.advance(1)
    for _ in range(5):
        hub.alerts.evaluate()
        clock.advance(1)
    health = hub.health()["alerts"]["eval_ms"]
    assert health["max"] < 250, health  # generous for a shared 2-core machine
