"""QueueStats (the ``queue`` store), including the regression for DESIGN defect 3."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codeur_widgets.core.clock import FakeClock
from codeur_widgets.core.events import Event
from codeur_widgets.core.queue import QueueStats, normalise_status

T0 = 1_700_000_000.0
_ids = itertools.count()


def ev(topic: str, ts: float, **data: Any) -> Event:
    # The unchecked constructor: the store must cope with whatever a transport let through.
    return Event(topic, None, data, ts, f"q{next(_ids)}")


def make(**kwargs: Any) -> tuple[QueueStats, FakeClock]:
    clock = FakeClock(T0)
    return QueueStats(clock=clock, **kwargs), clock


def run_job(q: QueueStats, clock: FakeClock, job_id: str, wait: float, run: float) -> None:
    q.apply(ev("job.enqueued", clock(), job_id=job_id, kind="code_generation"))
    clock.advance(wait)
    q.apply(ev("job.started", clock(), job_id=job_id))
    clock.advance(run)
    q.apply(ev("job.completed", clock(), job_id=job_id, success=True))


# -- counts and times ------------------------------------------------------------------------------
def test_lifecycle_counts_and_times() -> None:
    q, clock = make()
    q.apply(ev("job.enqueued", clock(), job_id="j1"))
    q.apply(ev("job.enqueued", clock(), job_id="j2"))
    snap = q.snapshot()
    assert (snap["queued"], snap["processing"], snap["completed"]) == (2, 0, 0)
    clock.advance(2.0)
    q.apply(ev("job.started", clock(), job_id="j1"))
    snap = q.snapshot()
    assert (snap["queued"], snap["processing"]) == (1, 1)
    assert snap["wait"] == {"count": 1, "mean": 2.0, "p50": 2.0, "p95": 2.0}
    clock.advance(5.0)
    q.apply(ev("job.completed", clock(), job_id="j1"))
    snap = q.snapshot()
    assert (snap["queued"], snap["processing"], snap["completed"]) == (1, 0, 1)
    assert snap["run"] == {"count": 1, "mean": 5.0, "p50": 5.0, "p95": 5.0}
    assert snap["completed_last_hour"] == 1


def test_wait_and_run_percentiles_over_the_window() -> None:
    q, clock = make(window=10)
    for i in range(30):
        run_job(q, clock, f"j{i}", wait=float(i), run=float(100 + i))
    snap = q.snapshot()
    # Only the last 10 samples: waits 20..29, runs 120..129.
    assert snap["wait"]["count"] == 10
    assert snap["wait"]["mean"] == pytest.approx(24.5)
    assert snap["wait"]["p50"] == pytest.approx(24.5)
    assert snap["wait"]["p95"] == pytest.approx(28.55)
    assert snap["run"]["mean"] == pytest.approx(124.5)
    assert snap["completed"] == 30


def test_failed_and_cancelled_outcomes() -> None:
    q, clock = make()
    q.apply(ev("job.completed", clock(), job_id="a", success=False))
    q.apply(ev("job.completed", clock(), job_id="b", status="cancelled"))
    q.apply(ev("job.completed", clock(), job_id="c", status="failed", success=True))
    q.apply(ev("job.failed", clock(), job_id="d"))
    q.apply(ev("job.cancelled", clock(), job_id="e"))
    q.apply(ev("job.completed", clock(), job_id="f", status="succeeded"))
    snap = q.snapshot()
    assert (snap["completed"], snap["failed"], snap["cancelled"]) == (1, 3, 2)
    # completed_last_hour counts successes only; throughput counts every finished job.
    assert snap["completed_last_hour"] == 1
    assert sum(snap["throughput"]["values"]) == 6


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("queued", "queued"),
        ("pending", "queued"),
        ("PENDING", "queued"),
        ("processing", "processing"),
        ("running", "processing"),
        ("in_progress", "processing"),
        ("In-Progress", "processing"),
        ("JOB_STATUS_RUNNING", "processing"),
        ("completed", "completed"),
        ("succeeded", "completed"),
        ("failed", "failed"),
        ("error", "failed"),
        ("cancelled", "cancelled"),
        ("canceled", "cancelled"),
        (" Canceled ", "cancelled"),
    ],
)
def test_status_spellings(spelling: str, canonical: str) -> None:
    assert normalise_status(spelling) == canonical


@pytest.mark.parametrize("bad", ["", "paused", "queuedx", None, 3, ["queued"]])
def test_unknown_statuses(bad: object) -> None:
    assert normalise_status(bad) is None


def test_status_changed_drives_the_whole_lifecycle() -> None:
    q, clock = make()
    q.apply(ev("job.status.changed", clock(), job_id="j", status="pending"))
    assert q.snapshot()["queued"] == 1
    clock.advance(3)
    q.apply(ev("job.status.changed", clock(), job_id="j", status="running"))
    snap = q.snapshot()
    assert (snap["queued"], snap["processing"], snap["wait"]["mean"]) == (0, 1, 3.0)
    clock.advance(4)
    q.apply(ev("job.status.changed", clock(), job_id="j", status="succeeded"))
    snap = q.snapshot()
    assert (snap["processing"], snap["completed"], snap["run"]["mean"]) == (0, 1, 4.0)
    for status, field in [("error", "failed"), ("canceled", "cancelled")]:
        q.apply(ev("job.status.changed", clock(), job_id=f"x-{status}", status=status))
        assert q.snapshot()[field] == 1
    q.apply(ev("job.status.changed", clock(), job_id="k", new_status="in_progress"))
    assert q.snapshot()["processing"] == 1


def test_job_first_seen_at_start_has_no_wait_but_a_run_time() -> None:
    q, clock = make()
    q.apply(ev("job.started", clock(), job_id="j"))
    snap = q.snapshot()
    assert (snap["queued"], snap["processing"], snap["wait"]["count"]) == (0, 1, 0)
    clock.advance(7)
    q.apply(ev("job.completed", clock(), job_id="j"))
    snap = q.snapshot()
    assert (snap["processing"], snap["completed"]) == (0, 1)
    assert snap["run"]["count"] == 1 and snap["run"]["mean"] == 7.0


def test_job_first_seen_at_completion_is_counted_without_samples() -> None:
    q, clock = make()
    q.apply(ev("job.completed", clock(), job_id="ghost"))  # no KeyError
    snap = q.snapshot()
    assert snap["completed"] == 1
    assert snap["run"]["count"] == 0 and snap["wait"]["count"] == 0
    assert (snap["queued"], snap["processing"]) == (0, 0)


def test_a_job_cancelled_while_queued_has_no_run_time() -> None:
    q, clock = make()
    q.apply(ev("job.enqueued", clock(), job_id="j"))
    clock.advance(1)
    q.apply(ev("job.status.changed", clock(), job_id="j", status="cancelled"))
    snap = q.snapshot()
    assert (snap["queued"], snap["cancelled"], snap["run"]["count"]) == (0, 1, 0)


def test_duplicate_completions_count_once() -> None:
    q, clock = make()
    run_job(q, clock, "j", 1, 1)
    for _ in range(3):
        q.apply(ev("job.completed", clock(), job_id="j"))
    q.apply(ev("job.status.changed", clock(), job_id="j", status="failed"))
    snap = q.snapshot()
    assert (snap["completed"], snap["failed"], snap["duplicates"]) == (1, 0, 4)
    assert snap["completed_last_hour"] == 1
    assert snap["run"]["count"] == 1


def test_a_retry_after_completion_is_a_new_run() -> None:
    q, clock = make()
    run_job(q, clock, "j", 1, 1)
    clock.advance(1)
    run_job(q, clock, "j", 2, 3)  # the same id enqueued again later
    snap = q.snapshot()
    assert snap["completed"] == 2
    assert snap["run"]["count"] == 2


def test_late_events_after_completion_are_ignored() -> None:
    q, clock = make()
    start = clock()
    clock.advance(10)
    q.apply(ev("job.completed", clock(), job_id="j"))
    # The start and enqueue arrive after the completion (different producers, late delivery).
    q.apply(ev("job.started", start + 5, job_id="j"))
    q.apply(ev("job.enqueued", start, job_id="j"))
    snap = q.snapshot()
    assert (snap["queued"], snap["processing"], snap["completed"]) == (0, 0, 1)
    assert snap["late"] == 2


def test_a_late_enqueue_of_a_running_job_gives_its_wait() -> None:
    q, _ = make()
    q.apply(ev("job.started", T0 + 4, job_id="j"))
    q.apply(ev("job.enqueued", T0 + 1, job_id="j"))
    snap = q.snapshot()
    assert (snap["queued"], snap["processing"]) == (0, 1)
    assert snap["wait"]["mean"] == 3.0


def test_re_enqueued_while_processing_goes_back_to_the_queue() -> None:
    q, clock = make()
    q.apply(ev("job.enqueued", clock(), job_id="j"))
    clock.advance(1)
    q.apply(ev("job.started", clock(), job_id="j"))
    clock.advance(1)
    q.apply(ev("job.enqueued", clock(), job_id="j"))
    snap = q.snapshot()
    assert (snap["queued"], snap["processing"]) == (1, 0)
    q.apply(ev("job.started", clock(), job_id="j"))
    q.apply(ev("job.started", clock(), job_id="j"))  # started twice: one job, one sample more
    snap = q.snapshot()
    assert (snap["queued"], snap["processing"], snap["wait"]["count"]) == (0, 1, 2)


def test_integer_job_ids_are_accepted() -> None:
    q, clock = make()
    q.apply(ev("job.enqueued", clock(), job_id=42))
    q.apply(ev("job.started", clock(), job_id="42"))
    assert q.snapshot()["processing"] == 1


# -- defect 3: completed_last_hour ----------------------------------------------------------------
def test_completed_last_hour_is_exact_with_5000_jobs_in_an_hour() -> None:
    """Regression for DESIGN defect 3: the plan counted over a 1000-entry deque, so any hour
    with more than 1000 jobs was under-reported."""
    q, clock = make()
    for i in range(5000):
        job = f"job-{i}"
        q.apply(ev("job.enqueued", clock(), job_id=job))
        q.apply(ev("job.started", clock(), job_id=job))
        clock.advance(0.7)  # 5000 jobs in 3500 s: all within one hour
        q.apply(ev("job.completed", clock(), job_id=job))
    assert q.snapshot()["completed_last_hour"] == 5000
    assert q.completed_last_hour() == 5000
    assert sum(q.snapshot()["throughput"]["values"]) == 5000
    clock.advance(3600)
    assert q.snapshot()["completed_last_hour"] == 0
    assert q.snapshot()["completed"] == 5000  # cumulative counts stay


def test_completed_last_hour_expires_by_the_second() -> None:
    q, clock = make()
    for i in range(100):
        q.apply(ev("job.completed", clock(), job_id=f"j{i}"))
        clock.advance(10.0)  # one every 10 s, the last at T0 + 990
    assert q.completed_last_hour() == 100
    # At T0 + 3600 + 5 the window starts at T0 + 6 (one-second buckets): job 0 has left.
    assert q.completed_last_hour(T0 + 3605) == 99
    assert q.completed_last_hour(T0 + 3600 + 995) == 0


def test_throughput_is_per_minute_over_the_last_hour() -> None:
    q, clock = make()
    clock.set(T0 - T0 % 60 + 60)  # a minute boundary
    minute0 = clock()
    clock.set(minute0 + 3 * 60 + 30)
    for m, n in enumerate([3, 0, 5, 1]):
        for i in range(n):
            q.apply(ev("job.completed", minute0 + m * 60 + i, job_id=f"m{m}-{i}"))
    tp = q.snapshot()["throughput"]
    assert tp["step"] == 60.0
    assert len(tp["values"]) == 60
    assert tp["values"][-4:] == [3, 0, 5, 1]
    assert tp["start"] == minute0 + 3 * 60 - 59 * 60


def test_timestamps_in_the_future_count_now_and_old_ones_not_in_the_hour() -> None:
    q, clock = make()
    q.apply(ev("job.completed", clock() + 500, job_id="future"))
    q.apply(ev("job.completed", clock() - 7200, job_id="old"))
    snap = q.snapshot()
    assert snap["completed"] == 2
    assert snap["completed_last_hour"] == 1


# -- bounds and bad input ------------------------------------------------------------------------
def test_active_table_is_bounded_and_evictions_counted() -> None:
    q, clock = make(max_active=10)
    for i in range(12):
        q.apply(ev("job.enqueued", clock(), job_id=f"q{i}"))
    for i in range(3):
        q.apply(ev("job.started", clock(), job_id=f"p{i}"))
    snap = q.snapshot()
    assert snap["active"] == 10
    assert snap["evicted"] == 5
    assert (snap["queued"], snap["processing"]) == (7, 3)
    # An evicted job that completes later is still counted, without a run sample.
    q.apply(ev("job.completed", clock(), job_id="q0"))
    snap = q.snapshot()
    assert snap["completed"] == 1 and snap["run"]["count"] == 0
    assert (snap["queued"], snap["processing"]) == (7, 3)


def test_eviction_is_fast_at_the_bound() -> None:
    q, clock = make(max_active=1000)
    for i in range(50_000):  # 49,000 evictions: each O(1)
        q.apply(ev("job.enqueued", clock(), job_id=f"j{i}"))
    assert q.snapshot()["evicted"] == 49_000
    assert q.snapshot()["queued"] == 1000


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"job_id": None},
        {"job_id": ""},
        {"job_id": True},
        {"job_id": 1.5},
        {"job_id": ["j"]},
        {"job_id": "x" * 300},
    ],
)
def test_bad_job_ids_are_counted_not_raised(data: dict[str, Any]) -> None:
    q, clock = make()
    for topic in ("job.enqueued", "job.started", "job.completed", "job.status.changed"):
        q.apply(ev(topic, clock(), **data))
    snap = q.snapshot()
    assert snap["rejected"]["fields"] == 4
    assert (snap["queued"], snap["processing"], snap["completed"]) == (0, 0, 0)


def test_bad_statuses_and_success_are_counted() -> None:
    q, clock = make()
    q.apply(ev("job.status.changed", clock(), job_id="a", status="paused"))
    q.apply(ev("job.status.changed", clock(), job_id="a", status=7))
    q.apply(ev("job.completed", clock(), job_id="b", status="running"))  # not an outcome
    q.apply(ev("job.completed", clock(), job_id="c", success="yes"))
    snap = q.snapshot()
    assert snap["rejected"] == {"fields": 1, "statuses": 3}
    assert snap["completed"] == 2  # b and c still finished (success is the default)


def test_unknown_job_topics_are_ignored() -> None:
    q, clock = make()
    q.apply(ev("job.progress", clock(), job_id="j", percent=50))
    assert q.version == 0
    assert q.snapshot()["rejected"] == {"fields": 0, "statuses": 0}


@pytest.mark.parametrize("kwargs", [{"window": 0}, {"max_active": 0}, {"window": True}])
def test_constructor_validation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        QueueStats(**kwargs)


_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
_json = st.recursive(
    _json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
_keys = st.sampled_from(["job_id", "status", "new_status", "success", "kind"]) | st.text(max_size=8)
_values = _json | st.sampled_from(
    ["j1", "j2", "j3", "queued", "running", "completed", "failed", "canceled", "error", "pending"]
)
_topics = st.sampled_from(
    [
        "job.enqueued",
        "job.started",
        "job.completed",
        "job.failed",
        "job.cancelled",
        "job.status.changed",
        "job.other",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(_topics, st.dictionaries(_keys, _values, max_size=4), st.floats(-100, 4000)),
        max_size=40,
    ),
    st.integers(1, 5),
)
def test_arbitrary_job_events_never_raise(
    events: list[tuple[str, dict[str, Any], float]], max_active: int
) -> None:
    q, clock = make(max_active=max_active)
    for topic, data, dt in events:
        q.apply(Event(topic, None, data, max(0.0, T0 + dt), "p"))
        q.tick(clock())
    snap = q.snapshot()
    json.dumps(snap, allow_nan=False)
    assert snap["queued"] >= 0 and snap["processing"] >= 0
    assert snap["queued"] + snap["processing"] == snap["active"] <= max_active
    for key in ("completed", "failed", "cancelled", "evicted", "duplicates", "late"):
        assert snap[key] >= 0
    assert snap["completed_last_hour"] <= snap["completed"]


# -- versions and snapshots ------------------------------------------------------------------------
def test_version_moves_with_events_and_with_time_only_when_visible() -> None:
    q, clock = make()
    q.tick(clock())
    assert q.version == 0  # idle: nothing to refresh
    clock.advance(120)
    q.tick(clock())
    assert q.version == 0
    q.apply(ev("job.completed", clock(), job_id="j"))
    v = q.version
    assert v > 0
    q.tick(clock())
    v = q.version
    clock.advance(1)
    q.tick(clock())
    assert q.version == v  # same minute, same hour count
    clock.advance(60)
    q.tick(clock())
    assert q.version == v + 1  # the throughput series moved on by a minute
    v = q.version
    clock.advance(3600)
    q.tick(clock())
    assert q.version == v + 1  # the completion left the hour
    v = q.version
    clock.advance(120)
    q.tick(clock())
    assert q.version == v  # nothing left to show moving


def test_snapshot_shape_is_json_and_small() -> None:
    q, clock = make()
    for i in range(2000):
        run_job(q, clock, f"job-{i}", 0.5, 1.5)
    q.apply(ev("job.enqueued", clock(), job_id="waiting"))
    snap = q.snapshot()
    text = json.dumps(snap, allow_nan=False)
    assert len(text.encode()) <= 64 * 1024
    assert {
        "now",
        "queued",
        "processing",
        "completed",
        "failed",
        "cancelled",
        "wait",
        "run",
        "completed_last_hour",
        "throughput",
    } <= set(snap)
    assert set(snap["wait"]) == {"count", "mean", "p50", "p95"}
    assert set(snap["throughput"]) == {"start", "step", "values"}
    assert snap["now"] == clock()
    assert snap["queued"] == 1 and snap["completed"] == 2000


def test_empty_snapshot() -> None:
    q, _ = make()
    snap = q.snapshot()
    json.dumps(snap, allow_nan=False)
    assert snap["wait"] == {"count": 0, "mean": None, "p50": None, "p95": None}
    assert snap["throughput"]["values"] == [0] * 60


def test_the_memory_of_finished_jobs_is_bounded_and_keeps_the_newest() -> None:
    q, clock = make(finished_memory=1_000)
    for i in range(30_000):
        q.apply(ev("job.completed", clock(), job_id=f"j{i}", success=True))
    assert len(q._finished) <= 1_000
    # The newest half is always remembered: a repeated completion there counts once.
    for i in range(29_500, 30_000):
        q.apply(ev("job.completed", clock(), job_id=f"j{i}", success=True))
    assert (q.completed, q.duplicates) == (30_000, 500)


def test_finished_memory_is_validated() -> None:
    for bad in (0, 1, True, "10"):
        with pytest.raises(ValueError, match="finished_memory"):
            QueueStats(finished_memory=bad)  # type: ignore[arg-type]
