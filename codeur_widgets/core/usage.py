"""Windowed counters: sums over sliding time windows in O(1) per event, and the ``usage`` store.

Alert rules ask questions such as "what did coding_agent spend in the last hour?" or "how many
tokens per minute across all agents?" about once a second. Scanning recent events to answer would
make the cost of a rule grow with the event rate, so the answers are kept ready in time-bucketed
ring buffers instead: adding a sample touches one bucket of each ring, and a window's sum reads at
most a few hundred buckets, whatever the rate.

* :class:`TimeRing`: ``k`` sums per fixed-width time bucket, in a ring of ``size`` buckets.
* :class:`WindowedSums`: two rings (one-second buckets over :data:`FINE_SPAN`, one-minute buckets
  over :data:`MAX_WINDOW`) and the all-time totals.
* :class:`UsageWindows`: the ``usage`` store, fed by ``agent.tokens`` and ``span.ended`` events
  (the two ways usage is reported, see ``core/spans.py``): cost and tokens in total, per agent,
  per model and per job.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from .clock import Clock, wall_clock
from .events import Event
from .store import Store

if TYPE_CHECKING:
    from .prices import Prices

__all__ = [
    "FINE_SPAN",
    "MAX_WINDOW",
    "TimeRing",
    "UsageWindows",
    "WindowedSums",
]

FINE_SPAN = 300.0
"""Windows up to this many seconds are summed from one-second buckets (exact to the second)."""
COARSE_BUCKET = 60.0
MAX_WINDOW = 86_400.0
"""The longest window a sum can be asked for: one day, in one-minute buckets (the oldest minute
is counted in proportion to the part of it inside the window)."""

MAX_KEYS = 1_000
"""Agents and models tracked one by one; beyond, usage still counts in the total."""
MAX_JOBS = 10_000
"""Jobs whose cost is remembered (the newest half at least)."""
TOP_JOBS = 64
"""Jobs with new usage examined per tick by rules over every job (the costliest first)."""
SNAPSHOT_WINDOW = 3600.0
_EMPTY = -(2**62)  # the stamp of a slot never used (no real bucket index is this low)
_NUMBER = (int, float)  # exact types: a bool is not a count
_INF = math.inf
SNAPSHOT_ROWS = 50


class TimeRing:
    """``k`` running sums per bucket of ``width`` seconds, for the last ``size`` buckets.

    ``add`` is O(1): the bucket of a timestamp is ``floor(ts / width)``, stored in slot
    ``bucket % size``; a slot holding an older bucket is reused. Samples older than the ring are
    ignored (``add`` returns False). ``sums(now, window)`` adds the buckets inside
    ``(now - window, now]``, the oldest one in proportion to its part inside the window.
    """

    __slots__ = ("_stamp", "_vals", "k", "size", "width")

    def __init__(self, width: float, size: int, k: int = 1) -> None:
        if width <= 0 or size < 2 or k < 1:
            raise ValueError("need width > 0, size >= 2 and k >= 1")
        self.width = float(width)
        self.size = size
        self.k = k
        self._stamp = [_EMPTY] * size
        self._vals: list[list[float] | None] = [None] * size

    @property
    def span(self) -> float:
        """The longest window this ring can sum (one bucket is kept for the partial oldest)."""
        return (self.size - 1) * self.width

    def add(self, ts: float, values: tuple[float, ...]) -> bool:
        """Add ``values`` (``k`` numbers) at time ``ts``; False if ``ts`` is older than the ring."""
        i = int(ts // self.width)
        slot = i % self.size
        held = self._stamp[slot]
        if held == i:
            v = self._vals[slot]
            assert v is not None
            for n, x in enumerate(values):
                v[n] += x
            return True
        if held > i:
            return False  # the slot already holds a newer bucket: this sample is too old
        self._stamp[slot] = i
        self._vals[slot] = list(values)
        return True

    def sums(self, now: float, window: float) -> list[float]:
        """The ``k`` sums over ``(now - window, now]`` (``window`` at most :attr:`span`)."""
        width = self.width
        window = min(window, self.span)
        start = now - window
        first = int(start // width)
        last = int(now // width)
        out = [0.0] * self.k
        stamp, vals, size = self._stamp, self._vals, self.size
        for i in range(first, last + 1):
            slot = i % size
            if stamp[slot] != i:
                continue
            v = vals[slot]
            assert v is not None
            if i == first:
                frac = ((first + 1) * width - start) / width
                for n in range(self.k):
                    out[n] += v[n] * frac
            else:
                for n in range(self.k):
                    out[n] += v[n]
        return out

    def reset(self) -> None:
        self._stamp = [_EMPTY] * self.size
        self._vals = [None] * self.size


class WindowedSums:
    """``k`` sums over any window up to :data:`MAX_WINDOW`, and since the start (``window=None``).

    One-second buckets answer windows up to :data:`FINE_SPAN` exactly; one-minute buckets answer
    longer ones. ``add`` is O(1) (two ring slots and the totals).
    """

    __slots__ = ("coarse", "fine", "k", "total")

    def __init__(self, k: int = 1) -> None:
        self.k = k
        self.fine = TimeRing(1.0, int(FINE_SPAN) + 2, k)
        self.coarse = TimeRing(COARSE_BUCKET, int(MAX_WINDOW / COARSE_BUCKET) + 2, k)
        self.total = [0.0] * k

    def add(self, ts: float, values: tuple[float, ...]) -> None:
        self.fine.add(ts, values)
        self.coarse.add(ts, values)
        total = self.total
        for n, x in enumerate(values):
            total[n] += x

    def sums(self, now: float, window: float | None) -> list[float]:
        """The ``k`` sums over the last ``window`` seconds (None: everything ever added)."""
        if window is None:
            return list(self.total)
        if window <= FINE_SPAN:
            return self.fine.sums(now, window)
        return self.coarse.sums(now, window)


class _Jobs:
    """Cost and tokens per job, at most ``size`` jobs (two generations, like QueueStats')."""

    __slots__ = ("_half", "_old", "_young")

    def __init__(self, size: int) -> None:
        self._half = max(1, size // 2)
        self._old: dict[str, list[float]] = {}
        self._young: dict[str, list[float]] = {}

    def add(self, job: str, cost: float, tokens: float, ts: float) -> list[float]:
        """Add usage to ``job``; returns its ``[cost, tokens, last]`` entry."""
        entry = self._young.get(job)
        if entry is None:
            entry = self._old.pop(job, None)
            if entry is None:
                entry = [0.0, 0.0, ts]
            if len(self._young) >= self._half:
                self._old, self._young = self._young, {}
            self._young[job] = entry
        entry[0] += cost
        entry[1] += tokens
        if ts > entry[2]:
            entry[2] = ts
        return entry

    def get(self, job: str) -> list[float] | None:
        return self._young.get(job) or self._old.get(job)

    def items(self) -> Iterator[tuple[str, list[float]]]:
        yield from self._old.items()
        yield from self._young.items()

    def __len__(self) -> int:
        return len(self._young) + len(self._old)


class UsageWindows(Store):
    """The ``usage`` store: LLM cost and tokens over sliding windows, O(1) per event.

    Fed by ``agent.tokens`` (``prompt``, ``completion``, ``cost_usd``) and ``span.ended``
    (``prompt_tokens``, ``completion_tokens``, ``cost_usd``, ``model``): the contract of
    ``core/spans.py`` reports each call's usage exactly once, on one of the two.
    ``agent.registered`` events give each agent's model, used when a usage event names none.

    Sums are kept in total, per agent, per model (the first :data:`MAX_KEYS` of each) and per job
    (the :data:`MAX_JOBS` most recent): the job is ``data["job_id"]``, else the event's
    ``trace_id``, else the job of the agent's newest open task (``job_of(agent)``, the registry's
    view). Timestamps are the events' own, so usage restored from history lands in the window it
    happened in; one stamped in the future counts as now, one older than a day only in the totals.

    The hot path adds an event to small per-second accumulators (a few dict lookups); they are
    folded into the rings when the second changes or when a sum is read.

    Args:
        clock: unix-seconds clock.
        job_of: ``job_of(agent) -> job id | None``, the agent's current job (optional).
    """

    name: ClassVar[str] = "usage"
    topics: ClassVar[tuple[str, ...]] = ("agent.tokens", "span.ended", "agent.registered")

    def __init__(
        self,
        clock: Clock = wall_clock,
        job_of: Callable[[str], str | None] | None = None,
        *,
        prices: Prices | None = None,
        max_keys: int = MAX_KEYS,
        max_jobs: int = MAX_JOBS,
    ) -> None:
        super().__init__(clock)
        self.job_of = job_of
        self.prices = prices
        self.max_keys = max_keys
        self._total = WindowedSums(2)  # (cost_usd, tokens)
        self._agents: dict[str, WindowedSums] = {}
        self._models: dict[str, WindowedSums] = {}
        self._jobs = _Jobs(max_jobs)
        self._agent_model: dict[str, str] = {}
        # The second being accumulated, and its sums: [cost, tokens] in total, per agent, per
        # model. Folded into the rings by _fold().
        self._second = _EMPTY
        self._acc_total = [0.0, 0.0]
        self._acc_agents: dict[str, list[float]] = {}
        self._acc_models: dict[str, list[float]] = {}
        # The costliest jobs that received usage since the last changed_jobs() call, at most
        # TOP_JOBS of them (job -> its live entry), and a min-heap of (cost when last keyed,
        # job) over them. Costs only grow, so a key may be stale (low): it is refreshed lazily
        # when it reaches the top of the heap.
        self._top: dict[str, list[float]] = {}
        self._top_heap: list[tuple[float, str]] = []
        self.ignored = 0
        """Usage events with a field of the wrong type (counted, never raised)."""
        self.untracked = 0
        self.unpriced = 0
        """LLM calls with tokens but no known price (their cost counts as 0 in the sums)."""
        """Seconds of usage whose agent or model came after :data:`MAX_KEYS` (totals only)."""

    # -- ingest --------------------------------------------------------------------------------
    def apply(self, event: Event) -> None:
        """Fold one usage event in: O(1), a few dict lookups on the common path."""
        data = event.data
        topic = event.topic
        agent = event.agent
        if topic == "agent.tokens":
            prompt = data.get("prompt", 0)
            completion = data.get("completion", 0)
            cost = data.get("cost_usd", 0.0)
        elif topic == "span.ended":  # usage only on the spans that report it
            prompt = data.get("prompt_tokens")
            completion = data.get("completion_tokens")
            cost = data.get("cost_usd")
            if prompt is None and completion is None and cost is None:
                return
            prompt = prompt or 0
            completion = completion or 0
            if cost is None and self.prices is not None:
                # Priced like the agent's card: the model's price, when the span gives none.
                cost = self.prices.cost(data.get("model"), prompt, completion)
                if cost is None:
                    self.unpriced += 1
            cost = cost or 0.0
        else:
            model = data.get("model")
            known = agent in self._agent_model or len(self._agent_model) < self.max_keys
            if agent is not None and isinstance(model, str) and model and known:
                self._agent_model[agent] = model
            return
        if not (
            type(prompt) in _NUMBER
            and type(completion) in _NUMBER
            and type(cost) in _NUMBER
            and 0 <= prompt < _INF
            and 0 <= completion < _INF
            and 0 <= cost < _INF
        ):
            self.ignored += 1  # a bool, a string, a negative or non-finite number
            return
        tokens = prompt + completion
        ts = event.ts
        second = int(ts)
        if second != self._second and not self._roll(second):
            self._add_late(agent, data.get("model"), ts, cost, tokens)
        else:
            total = self._acc_total
            total[0] += cost
            total[1] += tokens
            if agent is not None:
                per_agent = self._acc_agents.get(agent)
                if per_agent is None:
                    per_agent = self._acc_agents[agent] = [0.0, 0.0]
                per_agent[0] += cost
                per_agent[1] += tokens
            model = data.get("model") or (self._agent_model.get(agent) if agent else None)
            if type(model) is str:
                per_model = self._acc_models.get(model)
                if per_model is None:
                    per_model = self._acc_models[model] = [0.0, 0.0]
                per_model[0] += cost
                per_model[1] += tokens
        job = data.get("job_id")
        if type(job) is not str:
            job = str(job) if type(job) is int else event.trace_id
            if job is None and agent is not None and self.job_of is not None:
                job = self.job_of(agent)
        if job:
            entry = self._jobs.add(job, cost, tokens, ts)
            top = self._top
            if job not in top:
                heap = self._top_heap
                if len(top) < TOP_JOBS:
                    top[job] = entry
                    heapq.heappush(heap, (entry[0], job))
                elif entry[0] > heap[0][0]:
                    self._replace_top(job, entry)
        self.version += 1

    def _replace_top(self, job: str, entry: list[float]) -> None:
        """``job`` may be costlier than the cheapest of the top jobs: take its place if so
        (O(log TOP_JOBS); stale keys met on the way are refreshed first)."""
        heap, top = self._top_heap, self._top
        while heap:
            key, held = heap[0]
            current = top[held][0]
            if current > key:  # grew since it was keyed: re-key it and look again
                heapq.heapreplace(heap, (current, held))
                if entry[0] <= heap[0][0]:
                    return
                continue
            heapq.heapreplace(heap, (entry[0], job))
            del top[held]
            top[job] = entry
            return

    def _roll(self, second: int) -> bool:
        """A new second: fold the accumulated one in and accumulate ``second`` (clamped to now:
        a producer's clock running ahead). False when ``second`` is older (a late event)."""
        now = int(self.clock())
        if second > now:
            second = now
        if second == self._second:
            return True
        if second < self._second:
            return False
        self._fold()
        self._second = second
        return True

    def _fold(self) -> None:
        """Add the accumulated second to the rings (once per second and key)."""
        second = self._second
        acc = self._acc_total
        if acc[0] or acc[1]:
            self._total.add(second, (acc[0], acc[1]))
            acc[0] = acc[1] = 0.0
        for table, pending in ((self._agents, self._acc_agents), (self._models, self._acc_models)):
            for key, (cost, tokens) in pending.items():
                if self._has_room(table, key):
                    self._series(table, key).add(second, (cost, tokens))
            pending.clear()

    def _add_late(
        self, agent: str | None, model: object, ts: float, cost: float, tokens: float
    ) -> None:
        """An event older than the second being accumulated: straight into the rings."""
        values = (cost, tokens)
        self._total.add(ts, values)
        if agent is not None and self._has_room(self._agents, agent):
            self._series(self._agents, agent).add(ts, values)
        if not isinstance(model, str) or not model:
            model = self._agent_model.get(agent) if agent is not None else None
        if isinstance(model, str) and self._has_room(self._models, model):
            self._series(self._models, model).add(ts, values)

    def _has_room(self, table: dict[str, WindowedSums], key: str) -> bool:
        if key in table or len(table) < self.max_keys:
            return True
        self.untracked += 1
        return False

    @staticmethod
    def _series(table: dict[str, WindowedSums], key: str) -> WindowedSums:
        series = table.get(key)
        if series is None:
            series = table[key] = WindowedSums(2)
        return series

    # -- reading -------------------------------------------------------------------------------
    @property
    def agents(self) -> dict[str, WindowedSums]:
        """Per-agent sums, by agent name (read-only)."""
        self._fold()
        return self._agents

    @property
    def models(self) -> dict[str, WindowedSums]:
        """Per-model sums, by model name (read-only)."""
        self._fold()
        return self._models

    def sums(
        self, kind: str, key: str | None, now: float, window: float | None
    ) -> tuple[float, float] | None:
        """``(cost_usd, tokens)`` over the window for ``kind`` ``"hub"`` (the total), ``"agent"``,
        ``"model"`` or ``"job"`` (a job's own total: ``window`` is ignored); None if unknown."""
        self._fold()
        if kind == "hub":
            series: WindowedSums | None = self._total
        elif kind == "agent":
            series = self._agents.get(key or "")
        elif kind == "model":
            series = self._models.get(key or "")
        elif kind == "job":
            entry = self._jobs.get(key or "")
            return None if entry is None else (entry[0], entry[1])
        else:
            raise ValueError(f"unknown usage kind {kind!r}")
        if series is None:
            return None
        cost, tokens = series.sums(now, window)
        return cost, tokens

    def job(self, job: str) -> tuple[float, float, float] | None:
        """``(cost_usd, tokens, last usage time)`` of one job, or None if not remembered."""
        entry = self._jobs.get(job)
        return None if entry is None else (entry[0], entry[1], entry[2])

    def recent_jobs(self, now: float, window: float | None) -> dict[str, tuple[float, float]]:
        """``{job: (cost_usd, tokens)}`` of every remembered job with usage in the last
        ``window`` seconds (all for None), each with its whole total. A scan: call it rarely."""
        since = -math.inf if window is None else now - window
        return {job: (e[0], e[1]) for job, e in self._jobs.items() if e[2] > since}

    def changed_jobs(self) -> dict[str, tuple[float, float, float]]:
        """The costliest jobs (at most :data:`TOP_JOBS`) that received usage since the last
        call, as ``{job: (cost_usd, tokens, last usage time)}``; the next call starts afresh.

        Job costs only grow, so a job can newly cross a threshold only when it received usage,
        and of many that did in one tick, the costliest cross first: a rule over every job reads
        these each tick, whatever the number of jobs or the event rate."""
        top, self._top = self._top, {}
        self._top_heap = []
        return {job: (e[0], e[1], e[2]) for job, e in top.items()}

    def snapshot(self) -> dict[str, Any]:
        """Cost and tokens over the last hour: in total, and for the top agents and models."""
        self._fold()
        now = self.clock()

        def rows(table: dict[str, WindowedSums]) -> list[dict[str, Any]]:
            out: list[dict[str, Any]] = []
            for key, series in table.items():
                cost, tokens = series.sums(now, SNAPSHOT_WINDOW)
                out.append({"name": key, "cost_usd": round(cost, 6), "tokens": int(tokens)})
            out.sort(key=lambda r: (-r["cost_usd"], r["name"]))
            return out[:SNAPSHOT_ROWS]

        cost, tokens = self._total.sums(now, SNAPSHOT_WINDOW)
        all_cost, all_tokens = self._total.sums(now, None)
        return {
            "now": now,
            "window": SNAPSHOT_WINDOW,
            "total": {"cost_usd": round(cost, 6), "tokens": int(tokens)},
            "all_time": {"cost_usd": round(all_cost, 6), "tokens": int(all_tokens)},
            "agents": rows(self._agents),
            "models": rows(self._models),
            "jobs": len(self._jobs),
            "ignored": self.ignored,
            "untracked": self.untracked,
        }
