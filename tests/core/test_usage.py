"""Windowed sums (O(1) per sample) and the ``usage`` store that alert rules read."""

from __future__ import annotations

import random

import pytest

from codeur_widgets.core.clock import FakeClock
from codeur_widgets.core.hub import Hub
from codeur_widgets.core.usage import FINE_SPAN, TimeRing, UsageWindows, WindowedSums

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


def test_odd_fields_are_counted_and_the_future_counts_as_now() -> None:
    clock = FakeClock(T0)
    store = UsageWindows(clock=clock)
    hub = Hub(clock=clock, collect_system=False, default_alerts=False)
    bad = hub.publish("agent.tokens", "a", prompt="many", completion=1, cost_usd=1.0)
    store.apply(bad)
    assert store.ignored == 1
    future = hub.publish("agent.tokens", "a", prompt=1, completion=1, cost_usd=1.0, ts=T0 + 999)
    store.apply(future)
    assert store.sums("agent", "a", T0, 1) == (1.0, 2.0)


def test_agents_and_models_beyond_the_bound_count_only_in_the_total() -> None:
    clock = FakeClock(T0)
    store = UsageWindows(clock=clock, max_keys=2)
    hub = Hub(clock=clock, collect_system=False, default_alerts=False)
    for name in ("a", "b", "c"):
        store.apply(hub.publish("agent.tokens", name, prompt=1, completion=0, cost_usd=1.0))
    assert sorted(store.agents) == ["a", "b"]
    assert store.untracked == 1
    assert store.sums("hub", None, T0, 60) == (3.0, 3.0)


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


def test_llm_spans_without_a_cost_are_priced_like_the_cards() -> None:
    """The simulator and the agent API report tokens and a model, not a cost: a budget rule
    must see the same dollars as the agent's card (the hub's price table), unknown models 0."""
    from codeur_widgets.core.events import Event
    from codeur_widgets.core.prices import Prices

    clock = FakeClock(T0)
    store = UsageWindows(clock=clock, prices=Prices({"m": (1.0, 2.0)}))  # USD per 1M tokens
    priced = {"model": "m", "prompt_tokens": 1_000_000, "completion_tokens": 500_000}
    unknown = {"model": "nobody-knows", "prompt_tokens": 10, "completion_tokens": 10}
    store.apply(Event("span.ended", "coder", priced, T0, "e1"))
    store.apply(Event("span.ended", "coder", unknown, T0, "e2"))
    clock.advance(1.0)
    cost, tokens = store.sums("agent", "coder", T0 + 1, 60)
    assert cost == pytest.approx(2.0) and tokens == 1_500_020
    assert store.unpriced == 1
