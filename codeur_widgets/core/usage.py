"""Windowed counters: sums over sliding time windows, and the ``usage`` store.

Alert rules ask questions such as "what did coding_agent spend in the last hour?" or "how many
tokens per minute across all agents?" about once a second. Scanning recent events to answer would
make the cost of a rule grow with the event rate, so the answers are kept ready in time-bucketed
ring buffers instead: adding a sample touches one bucket of each ring, and a window's sum reads at
most a few hundred buckets, whatever the rate.

* :class:`TimeRing`: ``k`` sums per fixed-width time bucket, in a ring of ``size`` buckets.
* :class:`WindowedSums`: two rings (one-second buckets over :data:`FINE_SPAN`, one-minute buckets
  over :data:`MAX_WINDOW`) and the all-time totals.
* :class:`UsageWindows`: the ``usage`` store: cost and tokens in total, per agent, per model and
  per job. It reads no event: the agent registry already counts every call's usage per agent and
  per model (as the cards show it), and the trace store per trace (a job's trace id is its job
  id); the windows difference those running counters once a tick.
"""

from __future__ import annotations

import heapq
import math
from typing import TYPE_CHECKING, Any, ClassVar

from .clock import Clock, wall_clock
from .events import Event
from .store import Store

if TYPE_CHECKING:
    from .registry import AgentRegistry, AgentState
    from .traces import Trace, TraceStore

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
TOP_JOBS = 64
"""Jobs with new usage examined per tick by rules over every job (the costliest first)."""
SNAPSHOT_WINDOW = 3600.0
_EMPTY = -(2**62)  # the stamp of a slot never used (no real bucket index is this low)
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


class UsageWindows(Store):
    """The ``usage`` store: LLM cost and tokens over sliding windows, nothing per event.

    Usage is reported by ``agent.tokens`` and ``span.ended`` (the contract of ``core/spans.py``
    reports each call's usage exactly once, on one of the two), and two stores already fold it
    as it arrives: the agent registry per agent (the cards' totals), per model (the event's
    ``model``, else the agent's registered model) and in total (usage of no agent included), and
    the trace store per trace (a job's trace id is its job id; an ``agent.tokens`` that names no
    trace counts in the job it names, else in the job of the agent's newest open task).

    :meth:`sample` reads those running counters and adds what grew since the previous sample to
    ring buffers, stamped with the sample's time: the hub's alert rules sample once per
    housekeeping tick (about once a second), and any read (:meth:`sums`) samples first when
    usage arrived since. So a window's sum has the resolution of the sampling, not of the
    events' own timestamps: usage lands in the second it was sampled, an event stamped in the
    past or the future included. :meth:`baseline` takes the counters as they are as the start
    (the hub calls it once a history file was replayed into the stores): restored usage counts
    in the all-time totals (``window=None``), not as new usage in a window. Per job, a rule
    reads the job's whole total (``window`` is ignored), as kept for the trace store's newest
    traces (``max_traces``).

    Args:
        clock: unix-seconds clock.
        registry: the agent registry whose counters are sampled (None: no usage).
        traces: the trace store whose per-trace totals are the jobs' (None: no jobs).
        max_keys: agents and models tracked one by one; beyond, usage counts in the total only.
    """

    name: ClassVar[str] = "usage"
    topics: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        clock: Clock = wall_clock,
        registry: AgentRegistry | None = None,
        traces: TraceStore | None = None,
        *,
        max_keys: int = MAX_KEYS,
    ) -> None:
        super().__init__(clock)
        self.registry = registry
        self.traces = traces
        self.max_keys = max_keys
        self._total = WindowedSums(2)  # (cost_usd, tokens)
        self._agents: dict[str, WindowedSums] = {}
        self._models: dict[str, WindowedSums] = {}
        # The counters' values at the last sample: in total, per agent (with its state object),
        # per model, and the registry's count of resets.
        self._seen_total: tuple[float, float] = (0.0, 0.0)
        self._seen_agents: dict[str, tuple[AgentState, tuple[float, float]]] = {}
        self._seen_models: dict[str, tuple[float, float]] = {}
        self._seen_resets = 0
        self.untracked = 0
        """Samples of an agent or model beyond :data:`MAX_KEYS` (counted in the total only)."""

    def apply(self, event: Event) -> None:
        """Nothing: usage is read from the registry and the trace store (see the class)."""

    # -- sampling ------------------------------------------------------------------------------
    def sample(self, now: float | None = None, *, record: bool = True) -> None:
        """Add the usage counted since the previous sample to the windows, at ``now`` (default:
        the clock). O(agents + models), once a tick. ``record=False`` takes the counters as
        they are as the new start (their values count in the all-time totals only)."""
        registry = self.registry
        if registry is None:
            return
        if now is None:
            now = self.clock()
        total = (registry.usage_cost, float(registry.usage_tokens))
        before = self._seen_total
        self._seen_total = total
        if total != before:
            self._add(self._total, now, _grown(total, before), record)
        # An agent's counters restart from zero when they are reset or the agent is forgotten
        # (a new state object): all of their value is then new since the previous sample.
        reset = registry.resets != self._seen_resets
        self._seen_resets = registry.resets
        seen_agents = self._seen_agents
        agents = registry.states()
        for state in agents:
            current = (state.cost_usd, float(state.prompt_tokens + state.completion_tokens))
            last = seen_agents.get(state.name)
            if last is None or last[0] is not state or reset:
                if current == _ZERO:
                    seen_agents[state.name] = (state, current)
                    continue
                grown = current
            elif current == last[1]:
                continue
            else:
                grown = _grown(current, last[1])
            seen_agents[state.name] = (state, current)
            self._add_key(self._agents, state.name, now, grown, record)
        seen_models = self._seen_models
        for model, (cost, tokens) in list(registry.model_usage.items()):
            current = (cost, float(tokens))
            before = seen_models.get(model, _ZERO)
            if current != before:
                seen_models[model] = current
                self._add_key(self._models, model, now, _grown(current, before), record)
        if len(seen_agents) > 2 * len(agents) + 100:  # forgotten agents: keep the table bounded
            alive = {s.name for s in agents}
            for name in [n for n in seen_agents if n not in alive]:
                del seen_agents[name]

    def baseline(self) -> None:
        """Take the counters as they are now as the start of the windows (see the class)."""
        self.sample(record=False)

    def _sync(self) -> None:
        """Sample now when usage arrived since the last sample (every call adds to the total)."""
        registry = self.registry
        if registry is None:
            return
        if (registry.usage_cost, float(registry.usage_tokens)) != self._seen_total:
            self.sample()

    def _add(self, series: WindowedSums, now: float, values: tuple[float, float], record: bool):
        if record:
            series.add(now, values)
        else:
            series.total[0] += values[0]
            series.total[1] += values[1]
        self.version += 1

    def _add_key(
        self,
        table: dict[str, WindowedSums],
        key: str,
        now: float,
        values: tuple[float, float],
        record: bool,
    ) -> None:
        series = table.get(key)
        if series is None:
            if len(table) >= self.max_keys:
                self.untracked += 1
                return
            series = table[key] = WindowedSums(2)
        self._add(series, now, values, record)

    # -- reading -------------------------------------------------------------------------------
    @property
    def agents(self) -> dict[str, WindowedSums]:
        """Per-agent sums, by agent name (read-only)."""
        self._sync()
        return self._agents

    @property
    def models(self) -> dict[str, WindowedSums]:
        """Per-model sums, by model name (read-only)."""
        self._sync()
        return self._models

    def sums(
        self, kind: str, key: str | None, now: float, window: float | None
    ) -> tuple[float, float] | None:
        """``(cost_usd, tokens)`` over the window for ``kind`` ``"hub"`` (the total), ``"agent"``,
        ``"model"`` or ``"job"`` (a job's own total: ``window`` is ignored); None if unknown."""
        if kind == "job":
            info = self.job(key or "")
            return None if info is None else (info[0], info[1])
        self._sync()
        if kind == "hub":
            series: WindowedSums | None = self._total
        elif kind == "agent":
            series = self._agents.get(key or "")
        elif kind == "model":
            series = self._models.get(key or "")
        else:
            raise ValueError(f"unknown usage kind {kind!r}")
        if series is None:
            return None
        cost, tokens = series.sums(now, window)
        return cost, tokens

    def job(self, job: str) -> tuple[float, float, float] | None:
        """``(cost_usd, tokens, last usage time)`` of one job (its trace), or None if it had no
        usage or is no longer kept."""
        t = self.traces.trace(job) if self.traces is not None else None
        return None if t is None or t.usage_at is None else _job(t)

    def recent_jobs(self, now: float, window: float | None) -> dict[str, tuple[float, float]]:
        """``{job: (cost_usd, tokens)}`` of every kept job with usage in the last ``window``
        seconds (all for None), each with its whole total. A scan: call it rarely."""
        if self.traces is None:
            return {}
        since = -math.inf if window is None else now - window
        return {
            t.trace_id: (t.cost, float(t.prompt + t.completion))
            for t in self.traces.traces()
            if t.usage_at is not None and t.usage_at > since
        }

    def changed_jobs(self) -> dict[str, tuple[float, float, float]]:
        """The costliest jobs (at most :data:`TOP_JOBS`) that received usage since the last
        call, as ``{job: (cost_usd, tokens, last usage time)}``; the next call starts afresh.

        Job costs only grow, so a job can newly cross a threshold only when it received usage,
        and of many that did in one tick, the costliest cross first: a rule over every job reads
        these each tick, whatever the number of jobs or the event rate."""
        if self.traces is None:
            return {}
        spent = self.traces.take_spent()
        if len(spent) > TOP_JOBS:
            spent = heapq.nlargest(TOP_JOBS, spent, key=lambda t: t.cost)
        return {t.trace_id: _job(t) for t in spent}

    def snapshot(self) -> dict[str, Any]:
        """Cost and tokens over the last hour: in total, and for the top agents and models."""
        self._sync()
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
        jobs = 0
        if self.traces is not None:
            jobs = sum(1 for t in self.traces.traces() if t.usage_at is not None)
        return {
            "now": now,
            "window": SNAPSHOT_WINDOW,
            "total": {"cost_usd": round(cost, 6), "tokens": int(tokens)},
            "all_time": {"cost_usd": round(all_cost, 6), "tokens": int(all_tokens)},
            "agents": rows(self._agents),
            "models": rows(self._models),
            "jobs": jobs,
            "untracked": self.untracked,
        }


_ZERO = (0.0, 0.0)


def _grown(current: tuple[float, float], before: tuple[float, float]) -> tuple[float, float]:
    """What a running counter added since ``before`` (one that went down restarted: all of its
    current value is new)."""
    if current[0] >= before[0] and current[1] >= before[1]:
        return current[0] - before[0], current[1] - before[1]
    return current


def _job(t: Trace) -> tuple[float, float, float]:
    assert t.usage_at is not None
    return t.cost, float(t.prompt + t.completion), t.usage_at
