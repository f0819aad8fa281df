"""QueueStats: the ``queue`` store, job-queue health from ``job.*`` events.

It keeps a bounded table of active jobs (queued or processing), cumulative counts of finished
jobs by outcome, wait and run times over a sliding window of samples, and time buckets for
"completed in the last hour" and the per-minute throughput.

Unlike the original plan (DESIGN section 10, defect 3), ``completed_last_hour`` is counted in
one-second buckets over the hour, so it is exact at any volume instead of being capped by a list of
the last 1000 jobs. Every update is O(1); nothing is computed per event that a snapshot can compute
at render rate.

Events understood (``data`` fields; anything else is ignored and counted, never raised):

* ``job.enqueued`` — ``job_id``, ``kind``;
* ``job.started`` — ``job_id``;
* ``job.completed`` — ``job_id``, ``success`` (bool, default true), ``status`` (an outcome);
* ``job.failed`` / ``job.cancelled`` — ``job_id`` (outcome from the topic);
* ``job.status.changed`` — ``job_id``, ``status`` (or ``new_status``), with Codeur's spellings:
  queued/pending, processing/running/in_progress, completed/succeeded, failed/error,
  cancelled/canceled (case-insensitive; ``JOB_STATUS_`` prefixes are accepted).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .clock import Clock, wall_clock
from .events import Event
from .stats import TimeBuckets, WindowQuantiles
from .store import Store

__all__ = ["QUEUE_STATUSES", "QueueStats", "normalise_status"]

HOUR = 3600.0
MINUTE = 60.0
MAX_JOB_ID = 256

# Internal states of an active job, and the outcomes of a finished one.
_QUEUED = "queued"
_PROCESSING = "processing"
_COMPLETED = "completed"
_FAILED = "failed"
_CANCELLED = "cancelled"
_TERMINAL = (_COMPLETED, _FAILED, _CANCELLED)

QUEUE_STATUSES: dict[str, str] = {
    # queued
    "queued": _QUEUED,
    "pending": _QUEUED,
    "enqueued": _QUEUED,
    "waiting": _QUEUED,
    "submitted": _QUEUED,
    "created": _QUEUED,
    # processing
    "processing": _PROCESSING,
    "running": _PROCESSING,
    "in_progress": _PROCESSING,
    "inprogress": _PROCESSING,
    "started": _PROCESSING,
    "active": _PROCESSING,
    # finished
    "completed": _COMPLETED,
    "complete": _COMPLETED,
    "succeeded": _COMPLETED,
    "success": _COMPLETED,
    "successful": _COMPLETED,
    "done": _COMPLETED,
    "finished": _COMPLETED,
    "failed": _FAILED,
    "failure": _FAILED,
    "error": _FAILED,
    "errored": _FAILED,
    "cancelled": _CANCELLED,
    "canceled": _CANCELLED,
    "aborted": _CANCELLED,
}
"""Accepted status spellings (after :func:`normalise_status`'s clean-up) → canonical status."""

_PREFIXES = ("job_status_", "jobstatus_", "status_")


def normalise_status(value: object) -> str | None:
    """The canonical status (queued, processing, completed, failed, cancelled) or ``None``.

    Case, surrounding spaces, ``-``/space separators and protobuf-style ``JOB_STATUS_`` prefixes
    are ignored: ``"In-Progress"``, ``"JOB_STATUS_RUNNING"`` and ``"canceled"`` are all understood.
    """
    if not isinstance(value, str):
        return None
    status = QUEUE_STATUSES.get(value)  # fast path: already canonical
    if status is not None:
        return status
    text = value.strip().lower().replace("-", "_").replace(" ", "_")
    for prefix in _PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    return QUEUE_STATUSES.get(text)


def _job_id(value: object) -> str | None:
    """A job id as a string: non-empty strings up to 256 characters, or integers."""
    if isinstance(value, str):
        return value if 0 < len(value) <= MAX_JOB_ID else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


class _Job:
    """One active job. ``enqueued_at`` is None when the job was first seen at its start."""

    __slots__ = ("enqueued_at", "started_at", "status")

    def __init__(self, status: str, enqueued_at: float | None, started_at: float | None) -> None:
        self.status = status
        self.enqueued_at = enqueued_at
        self.started_at = started_at


class QueueStats(Store):
    """The ``queue`` store: counts, wait/run times, hourly completions and throughput.

    Args:
        clock: unix-seconds clock (a :class:`~codeur_widgets.core.clock.FakeClock` in tests).
        window: how many recent wait and run samples the mean/p50/p95 are computed over.
        max_active: bound of the active-job table; beyond it the oldest entry is evicted and
            counted in :attr:`evicted`.
        finished_memory: how many finished job ids are remembered (at least the newest half of
            it at any time) to count a duplicated completion once and to recognise late events.

    ``queued``/``processing`` are current (from the active table); ``completed``, ``failed`` and
    ``cancelled`` are cumulative. ``completed_last_hour`` counts successful completions by their
    event timestamps, exact to the second; ``throughput`` counts every finished job (any outcome)
    per minute over the last hour. A job first seen at its start has no wait sample; a job first
    seen at its end has neither a wait nor a run sample, but is counted.
    """

    name = "queue"
    topics = ("job.*",)

    def __init__(
        self,
        clock: Clock = wall_clock,
        window: int = 1000,
        max_active: int = 100_000,
        finished_memory: int = 20_000,
    ) -> None:
        super().__init__(clock)
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be a positive int, got {window!r}")
        if isinstance(max_active, bool) or not isinstance(max_active, int) or max_active < 1:
            raise ValueError(f"max_active must be a positive int, got {max_active!r}")
        if (
            isinstance(finished_memory, bool)
            or not isinstance(finished_memory, int)
            or finished_memory < 2
        ):
            raise ValueError(f"finished_memory must be an int >= 2, got {finished_memory!r}")
        self.window = window
        self.max_active = max_active
        # OrderedDict, not dict: evicting the oldest entry must stay O(1) (popitem(last=False));
        # repeatedly removing the first key of a plain dict degrades to a scan of dead slots.
        self._active: OrderedDict[str, _Job] = OrderedDict()
        # Finished job id -> finish timestamp: a second terminal event for it is a duplicate, and
        # events older than the finish are late deliveries rather than a new run.
        self._finished = _Generations(finished_memory)
        self.queued = 0
        self.processing = 0
        self.completed = 0
        self.failed = 0
        self.cancelled = 0
        self.evicted = 0
        self.duplicates = 0
        self.late = 0
        self.bad_fields = 0
        self.bad_statuses = 0
        self.wait = WindowQuantiles(window)
        self.run = WindowQuantiles(window)
        self._completed_hour = TimeBuckets(HOUR, 1.0)  # exact to the second
        self._finished_hour = TimeBuckets(HOUR, MINUTE)  # the throughput series, per minute
        # What the last tick saw, so that tick() bumps the version only when time changed a view.
        self._seen_hour_total = 0
        self._seen_series_total = 0
        self._seen_minute = 0
        self._handlers: dict[str, Callable[[str, dict[str, Any], float], None]] = {
            "job.enqueued": self._on_enqueued,
            "job.started": self._on_started,
            "job.completed": self._on_completed,
            "job.failed": self._on_failed,
            "job.cancelled": self._on_cancelled,
            "job.canceled": self._on_cancelled,
            "job.status.changed": self._on_status,
        }

    # -- ingest --------------------------------------------------------------------------------
    def apply(self, event: Event) -> None:
        """Fold one ``job.*`` event in (O(1)); unknown ``job.*`` topics are ignored."""
        handler = self._handlers.get(event.topic)
        if handler is None:
            return
        data = event.data if isinstance(event.data, dict) else {}
        job_id = _job_id(data.get("job_id"))
        if job_id is None:
            self.bad_fields += 1
            self.touch()
            return
        handler(job_id, data, event.ts)

    def _on_enqueued(self, job_id: str, data: dict[str, Any], ts: float) -> None:
        job = self._active.get(job_id)
        if job is not None:
            if job.status == _PROCESSING:
                if job.started_at is not None and ts <= job.started_at:
                    # A late enqueue of a job already running: now we know its wait.
                    if job.enqueued_at is None:
                        job.enqueued_at = ts
                        self.wait.add(max(0.0, job.started_at - ts))
                        self.touch()
                    else:
                        self.late += 1
                        self.touch()
                    return
                # Re-enqueued after it started: a retry, back in the queue.
                job.status = _QUEUED
                job.enqueued_at = ts
                job.started_at = None
                self.processing -= 1
                self.queued += 1
                self.touch()
            return  # enqueued twice: nothing changes
        if self._is_late(job_id, ts):
            return
        self._add(job_id, _Job(_QUEUED, ts, None))
        self.queued += 1
        self.touch()

    def _on_started(self, job_id: str, data: dict[str, Any], ts: float) -> None:
        job = self._active.get(job_id)
        if job is not None:
            if job.status == _PROCESSING:
                return  # started twice: keep the first start
            job.status = _PROCESSING
            job.started_at = ts
            if job.enqueued_at is not None:
                # A start stamped before the enqueue is clock skew between producers: wait 0.
                self.wait.add(max(0.0, ts - job.enqueued_at))
            self.queued -= 1
            self.processing += 1
            self.touch()
            return
        if self._is_late(job_id, ts):
            return
        self._add(job_id, _Job(_PROCESSING, None, ts))  # first seen at its start: no wait sample
        self.processing += 1
        self.touch()

    def _on_completed(self, job_id: str, data: dict[str, Any], ts: float) -> None:
        outcome: str | None = None
        status = data.get("status")
        if status is not None:
            outcome = normalise_status(status)
            if outcome not in _TERMINAL:
                self.bad_statuses += 1
                outcome = None
        if outcome is None:
            success = data.get("success", True)
            if not isinstance(success, bool):
                self.bad_fields += 1
                success = True
            outcome = _COMPLETED if success else _FAILED
        self._finish(job_id, outcome, ts)

    def _on_failed(self, job_id: str, data: dict[str, Any], ts: float) -> None:
        self._finish(job_id, _FAILED, ts)

    def _on_cancelled(self, job_id: str, data: dict[str, Any], ts: float) -> None:
        self._finish(job_id, _CANCELLED, ts)

    def _on_status(self, job_id: str, data: dict[str, Any], ts: float) -> None:
        raw = data.get("status", data.get("new_status"))
        status = normalise_status(raw)
        if status is None:
            self.bad_statuses += 1
            self.touch()
        elif status == _QUEUED:
            self._on_enqueued(job_id, data, ts)
        elif status == _PROCESSING:
            self._on_started(job_id, data, ts)
        else:
            self._finish(job_id, status, ts)

    # -- helpers -------------------------------------------------------------------------------
    def _is_late(self, job_id: str, ts: float) -> bool:
        """True (and counted) if ``job_id`` finished after ``ts``: a late, out-of-order event.

        An enqueue or start stamped after the finish is a new run of the same id (a retry), so
        the id is forgotten as finished and its next completion counts again.
        """
        finished_at = self._finished.get(job_id)
        if finished_at is None:
            return False
        if ts < finished_at:
            self.late += 1
            self.touch()
            return True
        self._finished.discard(job_id)
        return False

    def _add(self, job_id: str, job: _Job) -> None:
        active = self._active
        if len(active) >= self.max_active:
            _, old = active.popitem(last=False)
            if old.status == _QUEUED:
                self.queued -= 1
            else:
                self.processing -= 1
            self.evicted += 1
        active[job_id] = job

    def _finish(self, job_id: str, outcome: str, ts: float) -> None:
        if job_id in self._finished:
            self.duplicates += 1  # a repeated completion counts once
            self.touch()
            return
        job = self._active.pop(job_id, None)
        if job is not None:
            if job.status == _QUEUED:
                self.queued -= 1
            else:
                self.processing -= 1
            if job.started_at is not None:
                self.run.add(max(0.0, ts - job.started_at))
        if outcome == _COMPLETED:
            self.completed += 1
        elif outcome == _FAILED:
            self.failed += 1
        else:
            self.cancelled += 1
        self._finished.put(job_id, ts)
        # Buckets use the event's time, but never the future (a producer's clock running ahead
        # would hide the job until then) and never before the hour (it could not be counted, and
        # a replay of old events must not fill the buckets).
        now = self.clock()
        stamp = ts if ts <= now else now
        if stamp > now - HOUR:
            self._finished_hour.add(stamp)
            if outcome == _COMPLETED:
                self._completed_hour.add(stamp)
        self.touch()

    # -- reading -------------------------------------------------------------------------------
    def completed_last_hour(self, now: float | None = None) -> int:
        """Jobs completed successfully in the hour ending at ``now`` (default: the clock)."""
        return self._completed_hour.total(self.clock() if now is None else now)

    def throughput(self, now: float | None = None) -> dict[str, Any]:
        """Finished jobs per minute over the last hour: ``{"start", "step", "values"}``."""
        start, values = self._finished_hour.series(
            self.clock() if now is None else now, step=MINUTE
        )
        return {"start": start, "step": MINUTE, "values": values}

    def tick(self, now: float) -> None:
        """Refresh views when time alone changed what they show: the hour's count expired, or
        the throughput series moved on to a new minute while it holds (or held) finished jobs."""
        hour_total = self._completed_hour.total(now)
        series_total = self._finished_hour.total(now)
        minute = int(now // MINUTE)
        changed = hour_total != self._seen_hour_total
        if minute != self._seen_minute:
            changed = changed or series_total > 0 or self._seen_series_total > 0
            self._seen_minute = minute
        self._seen_hour_total = hour_total
        self._seen_series_total = series_total
        if changed:
            self.touch()

    def snapshot(self) -> dict[str, Any]:
        """The ``queue`` snapshot (see docs/internals.md)."""
        now = self.clock()
        return {
            "now": now,
            "queued": self.queued,
            "processing": self.processing,
            "completed": self.completed,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "wait": self.wait.summary(),
            "run": self.run.summary(),
            "completed_last_hour": self._completed_hour.total(now),
            "throughput": self.throughput(now),
            "active": len(self._active),
            "max_active": self.max_active,
            "evicted": self.evicted,
            "duplicates": self.duplicates,
            "late": self.late,
            "rejected": {"fields": self.bad_fields, "statuses": self.bad_statuses},
        }


class _Generations:
    """A bounded memory of keys in two generations of plain dicts (at most ``size`` entries).

    New keys go into the young generation; when it holds ``size // 2`` the old one is dropped
    whole and the young one takes its place, so the newest ``size // 2`` keys are always
    remembered. Unlike an OrderedDict that deletes its oldest entry on every insert, it never
    churns one table: a long run at a steady rate allocates the same sizes again and again, and
    the process's memory stays flat (the benchmark's 10-minute soak showed the OrderedDict's
    periodic table rebuilds as RSS steps).
    """

    __slots__ = ("_half", "_old", "_young")

    def __init__(self, size: int) -> None:
        self._half = max(1, size // 2)
        self._old: dict[str, float] = {}
        self._young: dict[str, float] = {}

    def get(self, key: str) -> float | None:
        value = self._young.get(key)
        return value if value is not None else self._old.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._young or key in self._old

    def __len__(self) -> int:
        return len(self._young) + len(self._old)

    def put(self, key: str, value: float) -> None:
        if len(self._young) >= self._half:
            self._old, self._young = self._young, {}
        self._young[key] = value

    def discard(self, key: str) -> None:
        self._young.pop(key, None)
        self._old.pop(key, None)
