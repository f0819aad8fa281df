"""FlowTracker: the ``flows`` store, message traffic per graph edge.

Each ``agent.message`` (source → target, kind) updates its edge in O(1):

* an *intensity* that decays exponentially with the message timestamps:
  ``I ← I · 0.5 ** ((t − t_last) / half_life) + 1``. Decay is computed when the value is read,
  never scheduled: the original plan's FlowTracker created one asyncio task per message to decay
  it later and re-sent the whole graph each time (DESIGN section 10, defect 4); this one creates
  no task, no timer, and serialises nothing per message;
* exact counts over the last minute (one-second buckets), hence a rate in messages/s;
* counts per message kind (bounded: the first ``max_kinds`` kinds, then ``"other"``).

Stats (messages in the last minute, active edges, busiest edge, rate) are computed by
:meth:`FlowTracker.snapshot` at render rate, over the recently active edges only.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

from .clock import Clock, wall_clock
from .events import Event, InvalidEvent, check_agent
from .stats import TimeBuckets
from .store import Store

__all__ = ["ACTIVE_THRESHOLD", "SNAPSHOT_BUDGET", "WINDOW", "FlowTracker", "snapshot_flows"]

WINDOW = 60.0
"""Seconds of exact message counts per edge (the "last minute")."""

ACTIVE_THRESHOLD = 0.05
"""An edge whose decayed intensity is above this is active even without a message in the window
(with a long half-life, traffic can stay visible for more than a minute). Same value as the JS."""

SNAPSHOT_BUDGET = 60_000
"""Serialised bytes the per-edge arrays of a snapshot may take (a snapshot stays ≤ 64 KB)."""

OTHER_KIND = "other"
DEFAULT_KIND = "message"
MAX_KIND = 64

# Bytes an edge takes in the parallel arrays besides its id's text and its two numbers: the
# ', ' after each of the three items.
_ENTRY_OVERHEAD = 6


def _json_len(text: str) -> int:
    # Upper bound of the JSON-escaped length (ASCII escapes of the comm layer included).
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return len(text) + 2
    return len(text) * 6 + 2


class _Edge:
    """One directed edge's traffic. ``intensity`` is the value at time ``t``."""

    __slots__ = (
        "buckets",
        "id",
        "intensity",
        "kinds",
        "last_ts",
        "size",
        "t",
        "total",
    )

    def __init__(self, edge_id: str) -> None:
        self.id = edge_id
        self.intensity = 0.0
        self.t = -math.inf
        self.last_ts = -math.inf
        self.total = 0
        self.buckets = TimeBuckets(WINDOW, 1.0)
        self.kinds: dict[str, int] = {}
        self.size = _json_len(edge_id) + _ENTRY_OVERHEAD


class FlowTracker(Store):
    """The ``flows`` store: per-edge flow intensity, last-minute counts, rate and kinds.

    Args:
        clock: unix-seconds clock (a :class:`~codeur_widgets.core.clock.FakeClock` in tests).
        half_life: seconds for an edge's intensity to halve (> 0).
        max_edges: edges tracked; messages on further new edges still count in the totals but
            not per edge (counted in :attr:`dropped_edges`).
        max_kinds: kinds counted per edge; later kinds are counted as ``"other"``.

    The source of a message is the event's ``agent`` (else ``data["source"]``), its target
    ``data["target"]``, its kind ``data["kind"]`` (default ``"message"``). Messages whose source or
    target is missing or not a valid agent name are ignored and counted in :attr:`ignored`.
    Timestamps are the events'; one stamped in the future counts as now.

    :attr:`version` moves on each message (ignored ones included: they are counted in the
    snapshot), and in :meth:`tick` when an edge leaves the one-minute window or, cooling after it,
    falls to :data:`ACTIVE_THRESHOLD`, so views refresh their stats then; never on decay alone
    (the browser decays intensities between frames itself).
    """

    name = "flows"
    topics = ("agent.message",)

    def __init__(
        self,
        clock: Clock = wall_clock,
        half_life: float = 2.0,
        *,
        max_edges: int = 10_000,
        max_kinds: int = 32,
    ) -> None:
        super().__init__(clock)
        if (
            isinstance(half_life, bool)
            or not isinstance(half_life, (int, float))
            or not math.isfinite(half_life)
            or half_life <= 0
        ):
            raise ValueError(f"half_life must be a positive number of seconds, got {half_life!r}")
        for label, cap in (("max_edges", max_edges), ("max_kinds", max_kinds)):
            if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
                raise ValueError(f"{label} must be a positive int, got {cap!r}")
        self.half_life = float(half_life)
        self.max_edges = max_edges
        self.max_kinds = max_kinds
        self._edges: dict[tuple[str, str], _Edge] = {}
        # Edges with traffic in the window, least recently messaged first: expiry pops from the
        # front, so tick() and snapshot() never walk idle edges.
        self._recent: OrderedDict[tuple[str, str], _Edge] = OrderedDict()
        # Edges past the window whose intensity is still above the threshold (long half-lives).
        self._cooling: dict[tuple[str, str], _Edge] = {}
        self._all = TimeBuckets(WINDOW, 1.0)
        # Edges that changed state (left the window, stopped cooling) since the last tick: a
        # snapshot may expire them first, and tick() must still refresh the other views.
        self._moved = 0
        self.total = 0
        self.ignored = 0
        self.bad_kinds = 0
        self.dropped_edges = 0

    # -- ingest --------------------------------------------------------------------------------
    def apply(self, event: Event) -> None:
        """Count one ``agent.message`` on its edge: O(1), no task, no serialisation."""
        data = event.data if isinstance(event.data, dict) else {}
        source = event.agent if event.agent is not None else data.get("source")
        target = data.get("target")
        if not (_valid_name(source) and _valid_name(target)):
            self.ignored += 1
            self.touch()
            return
        kind = data.get("kind", DEFAULT_KIND)
        if not isinstance(kind, str) or not kind:
            if kind is not None:
                self.bad_kinds += 1
            kind = DEFAULT_KIND
        elif len(kind) > MAX_KIND:
            kind = kind[:MAX_KIND]
        self.record(source, target, kind, event.ts)

    def record(
        self, source: str, target: str, kind: str = DEFAULT_KIND, ts: float | None = None
    ) -> None:
        """Count one message ``source → target`` at ``ts`` (default: now). Names are not checked."""
        now = self.clock()
        if ts is None or ts > now:
            ts = now  # a producer's clock running ahead must not hide traffic until then
        self.total += 1
        if ts > now - WINDOW:  # older ones could not be counted in the window anyway
            self._all.add(ts)
        key = (source, target)
        edge = self._edges.get(key)
        if edge is None:
            if len(self._edges) >= self.max_edges:
                self.dropped_edges += 1
                self.touch()
                return
            edge = self._edges[key] = _Edge(f"{source}->{target}")
        # Exponential decay from the timestamps alone. A late (out-of-order) message adds its own
        # decayed contribution, so the result does not depend on arrival order.
        hl = self.half_life
        if ts >= edge.t:
            edge.intensity = edge.intensity * 0.5 ** ((ts - edge.t) / hl) + 1.0
            edge.t = ts
        else:
            edge.intensity += 0.5 ** ((edge.t - ts) / hl)
        edge.total += 1
        if ts > now - WINDOW:
            edge.buckets.add(ts)
        if ts > edge.last_ts:
            edge.last_ts = ts
        kinds = edge.kinds
        if kind in kinds:
            kinds[kind] += 1
        elif len(kinds) < self.max_kinds:
            kinds[kind] = 1
        else:
            kinds[OTHER_KIND] = kinds.get(OTHER_KIND, 0) + 1
        recent = self._recent
        if key in recent:
            recent.move_to_end(key)
        else:
            recent[key] = edge
            self._cooling.pop(key, None)
        self.touch()

    # -- time ----------------------------------------------------------------------------------
    def _intensity(self, edge: _Edge, now: float) -> float:
        if edge.intensity == 0.0 or now <= edge.t:
            return edge.intensity
        return edge.intensity * 0.5 ** ((now - edge.t) / self.half_life)

    def _expire(self, now: float) -> int:
        """Move edges out of the window (to cooling while their intensity is above the threshold,
        else out of sight); returns how many edges changed state."""
        moved = 0
        horizon = now - WINDOW
        recent = self._recent
        while recent:
            key, edge = next(iter(recent.items()))
            if edge.last_ts > horizon:
                break
            del recent[key]
            moved += 1
            if self._intensity(edge, now) > ACTIVE_THRESHOLD:
                self._cooling[key] = edge
        if self._cooling:
            for key, edge in list(self._cooling.items()):
                if self._intensity(edge, now) <= ACTIVE_THRESHOLD:
                    del self._cooling[key]
                    moved += 1
        self._moved += moved
        return moved

    def tick(self, now: float) -> None:
        """Refresh views when an edge left the one-minute window (or, after it, dropped below
        the activity threshold); nothing otherwise: no work per decay step."""
        self._expire(now)
        if self._moved:
            self._moved = 0
            self.touch()

    # -- reading -------------------------------------------------------------------------------
    def intensity(self, source: str, target: str, now: float | None = None) -> float:
        """The decayed intensity of ``source → target`` at ``now`` (default: the clock)."""
        edge = self._edges.get((source, target))
        if edge is None:
            return 0.0
        return self._intensity(edge, self.clock() if now is None else now)

    def last_minute(self, source: str, target: str, now: float | None = None) -> int:
        """Messages on ``source → target`` in the minute ending at ``now``."""
        edge = self._edges.get((source, target))
        if edge is None:
            return 0
        return edge.buckets.total(self.clock() if now is None else now)

    def kinds(self, source: str, target: str) -> dict[str, int]:
        """Messages per kind on ``source → target`` since it was first seen (``max_kinds`` kinds,
        then ``"other"``); ``{}`` for an unknown edge. Not in the snapshot, to keep it small."""
        edge = self._edges.get((source, target))
        return dict(edge.kinds) if edge is not None else {}

    def messages_last_minute(self, now: float | None = None) -> int:
        """Messages on all edges in the minute ending at ``now`` (exact at any volume)."""
        return self._all.total(self.clock() if now is None else now)

    def snapshot(self) -> dict[str, Any]:
        """The ``flows`` snapshot (see docs/internals.md), ≤ ~60 KB of per-edge arrays.

        Lists the active edges (a message in the last minute, or an intensity still above
        :data:`ACTIVE_THRESHOLD`) as parallel arrays: ``edges`` (ids ``"source->target"``),
        ``intensity`` and ``last_minute``, busiest first (:func:`snapshot_flows` turns them into a
        dict by id). If they do not all fit in :data:`SNAPSHOT_BUDGET`, the busiest are listed
        and the rest counted in ``omitted`` (the stats still cover every edge).
        """
        now = self.clock()
        self._expire(now)
        rows: list[tuple[int, float, str, _Edge]] = []
        busiest: tuple[int, float, str] | None = None
        for edge in (*self._recent.values(), *self._cooling.values()):
            count = edge.buckets.total(now)
            level = self._intensity(edge, now)
            if count == 0 and level <= ACTIVE_THRESHOLD:
                continue
            rows.append((count, level, edge.id, edge))
            if count and (busiest is None or (count, edge.last_ts) > busiest[:2]):
                busiest = (count, edge.last_ts, edge.id)
        # Busiest first, so a budget cut drops the quietest edges.
        rows.sort(key=lambda r: (-r[0], -r[1], r[2]))
        ids: list[str] = []
        intensity: list[float] = []
        last_minute: list[int] = []
        spent = 0
        for count, level, edge_id, edge in rows:
            value = round(level, 4)
            size = edge.size + len(repr(value)) + len(str(count))
            if spent + size > SNAPSHOT_BUDGET:
                break
            spent += size
            ids.append(edge_id)
            intensity.append(value)
            last_minute.append(count)
        total = self._all.total(now)
        return {
            "now": now,
            "half_life": self.half_life,
            "edges": ids,
            "intensity": intensity,
            "last_minute": last_minute,
            "omitted": len(rows) - len(ids),
            "stats": {
                "messages_last_minute": total,
                "active_edges": len(rows),
                "busiest_edge": busiest[2] if busiest else None,
                "rate": round(total / WINDOW, 4),
                "total": self.total,
                "ignored": self.ignored,
            },
        }


def snapshot_flows(
    flows: Mapping[str, Any], ids: Sequence[str | None] = ()
) -> dict[str, dict[str, Any]]:
    """``{edge id: {"intensity", "rate", "last_minute"}}`` from the parallel arrays of a ``flows``
    snapshot (``rate`` = ``last_minute / 60``).

    ``edges`` holds edge ids in a store's snapshot; in the form an ``AgentGraphView`` sends it
    holds indices into the topology's edges, whose ids are then given as ``ids``. An ``edges``
    dict of ``{id: {...}}`` (the pre-0.2 shape) is passed through.
    """
    edges = flows.get("edges") or []
    if isinstance(edges, Mapping):
        return {str(k): dict(v) for k, v in edges.items() if isinstance(v, Mapping)}
    levels = flows.get("intensity") or []
    counts = flows.get("last_minute") or []
    out: dict[str, dict[str, Any]] = {}
    for i, key in enumerate(edges):
        if isinstance(key, bool) or i >= len(levels) or i >= len(counts):
            continue
        if isinstance(key, int):
            key = ids[key] if 0 <= key < len(ids) else None
            if key is None:
                continue
        count = int(counts[i])
        out[str(key)] = {
            "intensity": float(levels[i]),
            "rate": round(count / WINDOW, 4),
            "last_minute": count,
        }
    return out


def _valid_name(value: object) -> TypeGuard[str]:
    if not isinstance(value, str):
        return False
    try:
        check_agent(value)
    except InvalidEvent:
        return False
    return True
