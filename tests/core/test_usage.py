"""Windowed sums (O(1) per sample) and the ``usage`` store that alert rules read: the
registry's and the trace store's running counters, sampled (differenced) once a tick."""

from __future__ import annotations

import random
from typing import Any

import pytest

from codeur_widgets.core.admin import Admin
from codeur_widgets.core.clock import FakeClock
from codeur_widgets.core.hub import Hub
from codeur_widgets.core.usage import FINE_SPAN, TimeRing, WindowedSums

T0 = 1_700_000_000.0


def brute(samples: list[tuple[float, float]], now: float, window: float) -> float:
    return sum(v for ts, v in samples if now - window < ts <= now)


def test_one_second_buckets_are_exact_for_short_windows() -> None:
    rng = random.Random(4)
    sums = WindowedSums(1)
    samples = []
    for _ in range(5_000):
        ts = T0 + rng.uniform(0, 600)
        value = float(rng.randint(1, 9))
        samples.append((ts, value))
        sums.add(ts, (value,))
    now = T0 + 600.0
    for window in (1, 10, 60, 299):
        # A window of whole seconds ending on a whole second covers whole one-second buckets.
        assert sums.sums(now, window)[0] == pytest.approx(brute(samples, now, window)), window


def test_minute_buckets_count_the_oldest_minute_in_proportion() -> None:
    ring = TimeRing(60.0, 10)
    base = 1_700_000_040.0  # a whole minute
    ring.add(base + 30, (60.0,))  # minute [base, base+60)
    ring.add(base + 90, (5.0,))  # minute [base+60, base+120)
    now = base + 150
    # (base+30, base+150]: half of the first minute, all of the second.
    assert ring.sums(now, 120)[0] == pytest.approx(30.0 + 5.0)
    # (base+90, base+150]: half of the second minute (an estimate: its sample was at +90).
    assert ring.sums(now, 60)[0] == pytest.approx(2.5)
    assert ring.span == 540


def test_late_samples_land_in_their_bucket_and_too_old_ones_are_ignored() -> None:
    ring = TimeRing(1.0, 10)
    assert ring.add(T0 + 20, (1.0,))
    assert ring.add(T0 + 15, (2.0,))  # late, still in the ring
    assert not ring.add(T0 + 5, (4.0,))  # its slot holds a newer second
    assert ring.sums(T0 + 20, 9)[0] == 3.0


def test_windows_longer_than_the_fine_ring_use_minutes_and_none_means_all() -> None:
    sums = WindowedSums(2)
    sums.add(T0, (1.0, 10.0))
    sums.add(T0 + 1000, (2.0, 20.0))
    now = T0 + 1000
    assert sums.sums(now, 60) == [2.0, 20.0]
    assert sums.sums(now, 3600) == [3.0, 30.0]
    assert sums.sums(now + 86_400 * 2, 3600) == [0.0, 0.0]
    assert sums.sums(now, None) == [3.0, 30.0]
    assert FINE_SPAN == 300


def test_the_store_sums_agent_tokens_and_span_usage_per_agent_model_and_job() -> None:
    clock = FakeClock(T0)
    hub = Hub(clock=clock, collect_system=False, default_alerts=False)
    a = hub.agent("coder", model="gpt-4o")
    with a.task("t", job_id="job-1") as t:
        t.tokens(prompt=100, completion=50, cost_usd=0.5)  # no job in the event: the task's
    hub.publish("agent.tokens", "coder", prompt=1, completion=1, cost_usd=0.25, job_id="job-2")
    hub.publish(
        "span.ended", "coder", trace_id="trace-3", span_id="s",
        data={"status": "ok", "model": "claude", "prompt_tokens": 10, "completion_tokens": 5,
              "cost_usd": 1.0},
    )  # fmt: skip
    hub.publish("span.ended", "coder", trace_id="trace-3", span_id="s2", data={"status": "ok"})
    usage = hub.usage
    now = clock()
    assert usage.sums("agent", "coder", now, 60) == (1.75, 167.0)
    assert usage.sums("model", "gpt-4o", now, 60) == (0.75, 152.0)
    assert usage.sums("model", "claude", now, 60) == (1.0, 15.0)
    assert usage.sums("job", "job-1", now, None) == (0.5, 150.0)
    assert usage.sums("job", "job-2", now, None) == (0.25, 2.0)
    assert usage.sums("job", "trace-3", now, None) == (1.0, 15.0)
    assert usage.sums("agent", "ghost", now, 60) is None
    snap = usage.snapshot()
    assert snap["total"] == {"cost_usd": 1.75, "tokens": 167}
    assert snap["agents"][0]["name"] == "coder"
    clock.advance(120)
    assert usage.sums("agent", "coder", clock(), 60) == (0.0, 0.0)
    assert usage.recent_jobs(clock(), 60) == {}
    assert set(usage.recent_jobs(clock(), 3600)) == {"job-1", "job-2", "trace-3"}


def test_usage_lands_in_the_second_it_is_sampled_not_the_events_own() -> None:
    """Tick resolution: usage is stamped when the windows sample the counters (each alert
    evaluation, or a read after new usage), whatever the event's own timestamp."""
    clock = FakeClock(T0)
    hub = Hub(clock=clock, collect_system=False, default_alerts=False)
    usage = hub.usage
    hub.publish("agent.tokens", "a", prompt=1, completion=1, cost_usd=1.0, ts=T0 - 100)  # late
    hub.publish("agent.tokens", "a", prompt=1, completion=1, cost_usd=1.0, ts=T0 + 999)  # ahead
    usage.sample(T0)
    assert usage.sums("agent", "a", T0, 1) == (2.0, 4.0)  # both in the second sampled
    clock.advance(5)
    hub.publish("agent.tokens", "a", prompt=5, completion=0, cost_usd=0.5)
    clock.advance(5)  # not sampled yet: the next read samples it, at T0 + 10
    assert usage.sums("agent", "a", T0 + 10, 1) == (0.5, 5.0)
    assert usage.sums("agent", "a", T0 + 10, 9) == (0.5, 5.0)  # the buckets T0+1 .. T0+10
    assert usage.sums("agent", "a", T0 + 10, 10) == (2.5, 9.0)  # and T0's
    assert usage.sums("hub", None, T0 + 10, None) == (2.5, 9.0)  # all time
    # Odd fields are the registry's to refuse (the card and the windows agree).
    hub.publish("agent.tokens", "a", prompt="many", completion=1, cost_usd=1.0)
    assert hub.agents.ignored == 1
    assert usage.sums("hub", None, T0 + 10, None) == (2.5, 9.0)


def test_agents_and_models_beyond_the_bound_count_only_in_the_total() -> None:
    clock = FakeClock(T0)
    hub = Hub(clock=clock, collect_system=False, default_alerts=False)
    hub.usage.max_keys = 2
    for name in ("a", "b", "c"):
        hub.publish("agent.tokens", name, prompt=1, completion=0, cost_usd=1.0, model=f"m-{name}")
    assert sorted(hub.usage.agents) == ["a", "b"]
    assert sorted(hub.usage.models) == ["m-a", "m-b"]
    assert hub.usage.untracked == 2
    assert hub.usage.sums("hub", None, T0, 60) == (3.0, 3.0)


def test_changed_jobs_are_the_costliest_with_new_usage_since_the_last_call() -> None:
    clock = FakeClock(T0)
    hub = Hub(clock=clock, collect_system=False, default_alerts=False)
    rng = random.Random(9)
    totals: dict[str, float] = {}
    for _ in range(3_000):  # 500 jobs, costs growing in random order
        job = f"job-{rng.randrange(500)}"
        cost = rng.choice((0.001, 0.01, 0.1))
        totals[job] = totals.get(job, 0.0) + cost
        hub.publish("agent.tokens", "a", prompt=1, completion=0, cost_usd=cost, job_id=job)
    changed = hub.usage.changed_jobs()
    costliest = sorted(totals, key=lambda j: -totals[j])[:64]
    assert len(changed) == 64
    assert min(c[0] for c in changed.values()) == pytest.approx(totals[costliest[-1]])
    assert set(changed) == set(costliest) or len(set(totals[j] for j in costliest)) < 64
    assert hub.usage.changed_jobs() == {}  # drained
    hub.publish("agent.tokens", "a", prompt=1, completion=0, cost_usd=0.5, job_id="job-1")
    assert list(hub.usage.changed_jobs()) == ["job-1"]
    cost, tokens, last = hub.usage.job("job-1")  # type: ignore[misc]
    assert cost == pytest.approx(totals["job-1"] + 0.5) and last == T0
    assert tokens == hub.traces.get("job-1")["prompt_tokens"]  # type: ignore[index]


def test_llm_spans_without_a_cost_are_priced_like_the_cards() -> None:
    """The simulator and the agent API report tokens and a model, not a cost: a budget rule
    must see the same dollars as the agent's card (the hub's price table), unknown models 0."""
    clock = FakeClock(T0)
    hub = Hub(clock=clock, collect_system=False, default_alerts=False, prices={"m": (1.0, 2.0)})
    priced = {"model": "m", "prompt_tokens": 1_000_000, "completion_tokens": 500_000}
    unknown = {"model": "nobody-knows", "prompt_tokens": 10, "completion_tokens": 10}
    hub.publish("span.ended", "coder", trace_id="t", span_id="s1", data=priced)
    hub.publish("span.ended", "coder", trace_id="t", span_id="s2", data=unknown)
    clock.advance(1.0)
    cost, tokens = hub.usage.sums("agent", "coder", T0 + 1, 60)  # type: ignore[misc]
    assert cost == pytest.approx(2.0) and tokens == 1_500_020
    assert cost == pytest.approx(hub.agents.get("coder")["cost_usd"])  # type: ignore[index]
    assert hub.agents.get("coder")["cost_unknown"] == 1  # type: ignore[index]
    assert hub.usage.sums("model", "nobody-knows", T0 + 1, 60) == (0.0, 20.0)
    assert hub.usage.sums("job", "t", T0 + 1, None) == (pytest.approx(2.0), 1_500_020.0)


def test_usage_of_no_agent_counts_in_the_total_and_its_model() -> None:
    """An LLM span outside any agent (an OpenTelemetry span with no agent ancestor): no card,
    but the hub's and the model's sums count it, and its trace's."""
    clock = FakeClock(T0)
    hub = Hub(clock=clock, collect_system=False, default_alerts=False)
    span = {"model": "m", "prompt_tokens": 7, "completion_tokens": 3, "cost_usd": 0.25}
    hub.publish("span.ended", None, trace_id="t", span_id="s", data=span)
    hub.publish("agent.tokens", None, prompt=5, completion=0, cost_usd=0.5, model="m")
    hub.publish("span.ended", None, trace_id="t", span_id="no-usage", data={"status": "ok"})
    assert hub.usage.sums("hub", None, T0, 60) == (0.75, 15.0)
    assert hub.usage.sums("model", "m", T0, 60) == (0.75, 15.0)
    assert hub.usage.agents == {}
    assert hub.usage.sums("job", "t", T0, None) == (0.25, 10.0)


def test_a_reset_or_a_forgotten_agent_never_counts_negative_usage() -> None:
    clock = FakeClock(T0)
    hub = Hub(clock=clock, collect_system=False, default_alerts=False)
    hub.publish("agent.tokens", "a", prompt=10, completion=0, cost_usd=1.0)
    hub.usage.sample()
    Admin(hub).reset_counters()
    clock.advance(5)
    hub.publish("agent.tokens", "a", prompt=2, completion=0, cost_usd=0.25)
    assert hub.usage.sums("agent", "a", T0 + 5, 1) == (0.25, 2.0)
    Admin(hub).forget("a")
    clock.advance(5)
    hub.publish("agent.tokens", "a", prompt=3, completion=0, cost_usd=0.5)
    assert hub.usage.sums("agent", "a", T0 + 10, 1) == (0.5, 3.0)
    assert hub.usage.sums("agent", "a", T0 + 10, None) == (1.75, 15.0)
    assert hub.usage.sums("hub", None, T0 + 10, None) == (1.75, 15.0)


def test_restored_usage_counts_in_all_time_totals_not_as_new_usage(tmp_path: Any) -> None:
    """A hub reopened on its history file replays the previous run into the stores: that
    spend is not new (a budget over the last minute does not fire on it), but it is the
    agent's all-time total, as on its card."""
    path = str(tmp_path / "runs.sqlite")
    clock = FakeClock(T0)
    hub = Hub(clock=clock, collect_system=False, default_alerts=False, history=path)
    hub.publish("agent.tokens", "coder", prompt=100, completion=0, cost_usd=4.0, model="m")
    assert hub.history is not None
    hub.history.close()
    again = Hub(clock=clock, collect_system=False, default_alerts=False, history=path)
    assert again.agents.get("coder")["cost_usd"] == 4.0  # type: ignore[index]
    assert again.usage.sums("agent", "coder", T0, 60) == (0.0, 0.0)
    assert again.usage.sums("agent", "coder", T0, None) == (4.0, 100.0)
    assert again.usage.sums("model", "m", T0, 60) == (0.0, 0.0)
    again.publish("agent.tokens", "coder", prompt=1, completion=0, cost_usd=1.0, model="m")
    assert again.usage.sums("agent", "coder", T0, 60) == (1.0, 1.0)
    assert again.usage.sums("hub", None, T0, None) == (5.0, 101.0)
    assert again.history is not None
    again.history.close()


def test_no_usage_store_subscribes_to_any_event() -> None:
    """The windows cost nothing per event: no subscription of theirs is on the bus."""
    hub = Hub(collect_system=False)
    assert not any(
        getattr(sub.handler, "__self__", None) is hub.usage for sub in hub.bus.subscriptions
    )
