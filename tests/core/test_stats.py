"""Running mean, windowed quantiles and time buckets."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codeur_widgets.core.stats import RunningMean, TimeBuckets, WindowQuantiles


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=200))
def test_running_mean_matches_the_arithmetic_mean(values: list[float]) -> None:
    m = RunningMean()
    for v in values:
        m.add(v)
    assert m.count == len(values)
    assert m.mean == pytest.approx(sum(values) / len(values), rel=1e-9, abs=1e-6)


def test_window_quantiles_cover_only_the_window() -> None:
    q = WindowQuantiles(size=100)
    for v in range(1000):
        q.add(float(v))
    assert len(q) == 100
    assert q.quantile(0.0) == 900.0
    assert q.quantile(1.0) == 999.0
    assert q.quantile(0.5) == pytest.approx(949.5)
    assert q.summary()["count"] == 100


def test_window_quantiles_empty_is_none() -> None:
    assert WindowQuantiles().summary() == {"count": 0, "mean": None, "p50": None, "p95": None}


def test_time_buckets_count_exactly_over_the_window() -> None:
    b = TimeBuckets(span=3600, bucket=1)
    start = 1_000_000.0
    for i in range(5000):
        b.add(start + i * 0.7)  # 5000 events over ~58 minutes
    end = start + 4999 * 0.7
    assert b.total(end) == 5000
    # Halfway through expiry, the oldest ones are gone exactly by the second.
    cutoff = end + 1800
    expected = sum(1 for i in range(5000) if start + i * 0.7 >= (int(cutoff) - 3599))
    assert 0 < expected < 5000
    assert b.total(cutoff) == expected
    assert b.total(end + 3600) == 0


def test_time_buckets_accept_late_events_in_order() -> None:
    b = TimeBuckets(span=60, bucket=1)
    for ts in [10.0, 12.0, 11.0, 5.0, 12.5]:
        b.add(ts)
    assert b.total(12.9) == 5
    _start, values = b.series(12.9, step=1)
    assert sum(values) == 5
    assert values[-1] == 2 and values[-2] == 1


def test_time_buckets_do_not_count_the_future_yet() -> None:
    b = TimeBuckets(span=60, bucket=1)
    b.add(100.0)
    b.add(200.0)
    assert b.total(100.5) == 1
    assert b.total(200.5) == 1


def test_series_per_minute_sums_to_total() -> None:
    rng = random.Random(3)
    b = TimeBuckets(span=3600, bucket=1)
    stamps = sorted(rng.uniform(0, 3600) for _ in range(2000))
    for ts in stamps:
        b.add(ts)
    start, values = b.series(3600.0, step=60)
    # Whole minutes, the current (partial) one last: [60, 3660).
    assert (start, len(values)) == (60.0, 60)
    assert sum(values) == sum(1 for ts in stamps if ts >= 60.0)
