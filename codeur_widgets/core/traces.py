"""TraceStore: every job as a live tree of spans, open spans included (DESIGN section 11).

The ``traces`` store folds the span events of :mod:`codeur_widgets.core.spans` (``span.*``),
agent tasks (``agent.task.*``), job lifecycles (``job.*``), usage (``agent.tokens``: in its trace,
else in the job it names, else in the job the agent works on) and the messages agents send inside
a job (``agent.message``) into one tree per trace:

* a trace is a job (trace id = job id) or, for work outside any job, the tree under a root span;
  it is **running** while its job runs or a span is open, then **ok**, **failed** or
  **cancelled** (the job's outcome; without a job, whether a root span failed);
* a span is visible from its start, open (``end`` None) until its end arrives; the browser ages
  it, so an open span costs no message;
* order does not matter: a child may end after its parent, an end may come before its start (the
  span is then shown from its end until the start fills it in), a parent may arrive after its
  children; a repeated start or end is merged, never counted twice;
* per trace: status, start, end, agents, tokens, cost (computed from the price table when a call
  gives tokens and a model but no cost; ``cost_unknown`` counts calls whose price is unknown),
  errors, open spans, span count, and links (a message one agent sent to another inside it).

Everything is bounded: the newest ``max_traces`` traces (oldest evicted first, late events for
them ignored and counted), at most ``max_spans`` spans per trace (more are counted as
``omitted``, their usage and errors still added to the totals), ``max_total_spans`` in all, and
content (prompts, answers, tool arguments and results) kept for the newest
``max_content_spans`` spans only, each cut per :func:`~codeur_widgets.core.spans.content`.
Every event is O(1); summaries and trees are built when a view asks (≤ 10 times a second).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from .clock import Clock, wall_clock
from .events import Event
from .events import finite_number as _number
from .events import whole_number as _count
from .queue import normalise_status
from .spans import (
    CONTENT_TOTAL,
    SPAN_ENDED,
    SPAN_KINDS,
    SPAN_STARTED,
    SPAN_UPDATED,
    content,
    cut_text,
)
from .store import Store

if TYPE_CHECKING:
    from .prices import Prices

__all__ = [
    "MAX_SPANS",
    "MAX_TRACES",
    "TRACE_STATUSES",
    "Span",
    "Trace",
    "TraceEncoder",
    "TraceStore",
]

TRACE_STATUSES = ("running", "ok", "failed", "cancelled")
MAX_TRACES = 500
MAX_SPANS = 2_000
MAX_TOTAL_SPANS = 200_000
"""Spans kept in all traces together; past it the oldest traces are evicted (memory bound)."""
MAX_CONTENT_SPANS = 2_000
"""Spans whose content (input, output) is kept: the newest; older ones keep their timings."""
SPAN_CONTENT = CONTENT_TOTAL // 2
"""Characters of content kept per span and field (input, output)."""
MAX_TRACE_AGENTS = 64
MAX_LINKS = 256
MAX_PENDING_LINKS = 64
MAX_NAME = 256
MAX_ERROR = 2_000
SEARCH_TEXT = 8_192
"""Characters of searchable text per trace (ids, names, agents, models, errors)."""
SEARCH_WORDS = 128
SNAPSHOT_LIMIT = 100
FOLD_BATCH = 256
"""Events the hub hands the store before it folds them in (every read folds them in first)."""
SNAPSHOT_BUDGET = 60_000
MAX_AGENTS_LISTED = 256

_OPEN = "running"
_KINDS = frozenset(SPAN_KINDS)
_SPAN_STATUSES = ("ok", "error", "cancelled")
_JOB_DONE = {"completed": "ok", "failed": "failed", "cancelled": "cancelled"}
_DONE = frozenset(("ok", "failed", "cancelled"))
_RUNNING_JOB = frozenset(("queued", "running"))
_INF = math.inf
# The handler key of an agent.tokens that arrived naming neither trace nor job (see _AgentTokens):
# not a valid topic, so no event can take its route.
_AGENT_TOKENS = "agent.tokens (the agent's job)"
_ASK = object()  # _tokens: ask job_of now
log = logging.getLogger(__name__)
# job topic -> the trace's job state ("?": from job.completed's fields, "??": from a status)
_JOB_TOPICS = {
    "job.enqueued": "queued",
    "job.started": "running",
    "job.completed": "?",
    "job.failed": "failed",
    "job.cancelled": "cancelled",
    "job.canceled": "cancelled",
    "job.status.changed": "??",
}
# what _merge_end and _usage read from an end
_END_FIELDS = frozenset(
    ("model", "first_token_at", "attributes", "output", "prompt_tokens", "completion_tokens",
     "cost_usd")
)  # fmt: skip
# what _describe reads besides the name and the job
_START_FIELDS = frozenset(("kind", "parent_id", "model", "attributes", "input"))


def _text(value: object, limit: int = MAX_NAME) -> str | None:
    if type(value) is str and 0 < len(value) <= limit:
        return value
    if isinstance(value, str) and value:
        return value if len(value) <= limit else value[: limit - 1] + "…"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


class _AgentTokens:
    """An ``agent.tokens`` that names neither a trace nor a job, waiting to be folded in with the
    job its agent worked on when it arrived (the registry's answer then: by the fold, the agent
    may have moved on to another job)."""

    __slots__ = ("event", "job")
    topic = _AGENT_TOKENS

    def __init__(self, event: Event, job: str | None) -> None:
        self.event = event
        self.job = job


class Span:
    """One span of a trace (see :mod:`codeur_widgets.core.spans` for the fields)."""

    __slots__ = (
        "agent",
        "attributes",
        "completion",
        "cost",
        "cost_unknown",
        "end",
        "error",
        "error_type",
        "first_token_at",
        "i",
        "input",
        "job_id",
        "kind",
        "model",
        "name",
        "output",
        "parent_id",
        "prompt",
        "span_id",
        "start",
        "status",
        "usage_seen",
        "ver",
    )

    def __init__(
        self,
        i: int,
        span_id: str,
        agent: str | None = None,
        kind: str = "other",
        start: float | None = None,
    ) -> None:
        self.i = i  # arrival order in its trace: a stable, small id for views
        self.span_id = span_id
        self.parent_id: str | None = None
        self.name = "span"
        self.kind = kind
        self.agent = agent
        self.job_id: str | None = None
        self.start = start
        self.end: float | None = None
        self.status = _OPEN
        self.error_type: str | None = None
        self.error: str | None = None
        self.model: str | None = None
        self.prompt = 0
        self.completion = 0
        self.cost: float | None = None
        self.cost_unknown = False
        self.usage_seen = False  # usage from span.ended is added once, whatever repeats
        self.first_token_at: float | None = None
        self.attributes: dict[str, Any] | None = None
        self.input: Any = None
        self.output: Any = None
        self.ver = 0

    @property
    def open(self) -> bool:
        return self.status == _OPEN

    def to_dict(self, *, with_content: bool = False) -> dict[str, Any]:
        """The span as plain data (content only when asked)."""
        out: dict[str, Any] = {
            "i": self.i,
            "span_id": self.span_id,
            "parent_id": self.parent_id,
            "name": self.name,
            "kind": self.kind,
            "agent": self.agent,
            "job_id": self.job_id,
            "start": self.start,
            "end": self.end,
            "status": self.status,
            "error_type": self.error_type,
            "error": self.error,
            "model": self.model,
            "prompt_tokens": self.prompt,
            "completion_tokens": self.completion,
            "cost_usd": self.cost,
            "cost_unknown": self.cost_unknown,
            "first_token_at": self.first_token_at,
            "attributes": dict(self.attributes) if self.attributes else {},
        }
        start, end, first = self.start, self.end, self.first_token_at
        out["duration"] = end - start if start is not None and end is not None else None
        out["ttft"] = first - start if first is not None and start is not None else None
        out["tokens_per_s"] = _tokens_per_s(self.completion, start, first, end)
        if with_content:
            out["input"] = self.input
            out["output"] = self.output
        return out


def _tokens_per_s(
    completion: int, start: float | None, first: float | None, end: float | None
) -> float | None:
    """Completion tokens per second of generation, from the first token to the end: known
    only when the caller reported the first token (the prompt's processing is not generation)."""
    if not completion or end is None or first is None or end - first <= 0:
        return None
    return completion / (end - first)


class Trace:
    """One trace: its spans by id (arrival order) and running totals.

    Slots, and the containers only some traces need made when first needed: a trace is created
    per job on the ingest path, and an instance dict (or eight containers made for each) costs
    its creation, every attribute read (a slot is read by offset) and the garbage collector's
    passes.
    """

    __slots__ = (
        "agent_last",
        "agent_open",
        "agents",
        "completion",
        "cost",
        "cost_unknown",
        "end",
        "errors",
        "first_error",
        "job_end",
        "job_id",
        "job_start",
        "job_state",
        "links",
        "links_ver",
        "name",
        "omitted",
        "open",
        "pending",
        "prompt",
        "root_error",
        "search_cache",
        "spans",
        "start",
        "trace_id",
        "usage_at",
        "ver",
        "words",
    )

    def __init__(self, trace_id: str, start: float | None = None) -> None:
        self.trace_id = trace_id
        self.spans: dict[str, Span] = {}  # by span id, in arrival order (span.i is the position)
        self.agents: dict[str, None] = {}
        # What a text filter searches besides the id, the job, the name, the agents and the
        # spans' names and models (read from the spans when a filter asks, not kept per event):
        # error messages (bounded), made by the first.
        self.words: dict[str, None] | None = None
        # Message links ([from i, to i or -1, kind, ts]) and links waiting for their target's
        # span (target agent -> links): made by the first message inside the trace.
        self.links: list[list[Any]] | tuple[()] = ()
        self.pending: dict[str, list[list[Any]]] | None = None
        # Per agent: its open span ids (in order) and its newest span id. Built from the spans by
        # the first message that needs them (_agent_index), then kept up to date.
        self.agent_open: dict[str, dict[str, None]] | None = None
        self.agent_last: dict[str, str] | None = None
        self.job_id: str | None = None
        self.name: str | None = None
        self.start = start
        self.end: float | None = None  # latest span end seen
        self.job_state: str | None = None  # queued, running, ok, failed, cancelled
        self.job_start: float | None = None
        self.job_end: float | None = None
        self.open = 0
        self.prompt = 0
        self.completion = 0
        self.cost = 0.0
        self.cost_unknown = 0
        self.errors = 0
        self.first_error: str | None = None
        self.root_error = False
        self.omitted = 0
        self.links_ver = 0
        self.search_cache: tuple[int, str] = (-1, "")
        self.ver = 0
        self.usage_at: float | None = None  # the latest time usage was added (None: never)

    @property
    def status(self) -> str:
        """running, ok, failed or cancelled (see the module's docstring)."""
        state = self.job_state
        if state in ("ok", "failed", "cancelled"):
            return state
        if self.open or state is not None:
            return "running"
        return "failed" if self.root_error else "ok"

    def finished_at(self) -> float | None:
        """When the trace ended, None while it runs."""
        if self.job_state in ("ok", "failed", "cancelled"):
            return self.job_end if self.job_end is not None else self.end
        if self.open or self.job_state is not None:
            return None
        return self.end

    def note(self, text: str | None) -> None:
        """Add ``text`` (an error message) to what a text filter searches (bounded)."""
        words = self.words
        if words is None:
            words = self.words = {}
        if text and text not in words and len(words) < SEARCH_WORDS:
            words[text] = None

    @property
    def search(self) -> str:
        """The case-folded text a filter searches (rebuilt when the trace changed): its id, job,
        name and agents, its spans' distinct names and models, its error messages (at most
        ``SEARCH_WORDS`` distinct words, ``SEARCH_TEXT`` characters)."""
        ver, text = self.search_cache
        if ver != self.ver:
            found: dict[str, None] = dict.fromkeys(self.agents)
            for s in self.spans.values():
                if len(found) >= SEARCH_WORDS:
                    break
                found[s.name] = None
                if s.model is not None:
                    found[s.model] = None
            parts = [self.trace_id, self.job_id or "", self.name or "", *found]
            if self.words:
                parts += self.words
            text = "\n".join(parts).casefold()[:SEARCH_TEXT]
            self.search_cache = (self.ver, text)
        return text

    def see_time(self, ts: float | None) -> None:
        if ts is None:
            return
        if self.start is None or ts < self.start:
            self.start = ts

    def see_end(self, ts: float) -> None:
        if self.end is None or ts > self.end:
            self.end = ts

    def summary(self) -> dict[str, Any]:
        """The trace's entry in lists: small, no spans."""
        agents = list(self.agents)
        return {
            "id": self.trace_id,
            "job": self.job_id,
            "name": self.name,
            "status": self.status,
            "start": self.start,
            "end": self.finished_at(),
            "agents": agents[:8],
            "more_agents": max(0, len(agents) - 8),
            "prompt_tokens": self.prompt,
            "completion_tokens": self.completion,
            "cost_usd": round(self.cost, 6),
            "cost_unknown": self.cost_unknown,
            "errors": self.errors,
            "error": self.first_error,
            "spans": len(self.spans) + self.omitted,
            "open": self.open,
            "omitted": self.omitted,
        }


class TraceStore(Store):
    """The ``traces`` store: recent traces with their span trees, live.

    Args:
        clock: unix-seconds clock (a ``FakeClock`` in tests).
        prices: prices calls that report tokens and a model but no cost (None: such a cost is
            unknown).
        max_traces: traces kept (the newest by creation; the oldest is evicted first).
        max_spans: spans kept per trace; more are counted in the trace's ``omitted``.
        max_total_spans: spans kept in all traces together (oldest traces evicted past it).
        max_content_spans: spans whose captured content is kept (the newest).
        capture_content: False drops all content (``Hub(capture_content=False)``).
        job_of: ``job_of(agent) -> job id | None``, the job of the agent's newest open task
            (the registry's): an ``agent.tokens`` that names neither a trace nor a job counts
            in that job's trace.

    Counters: :attr:`evicted` (traces), :attr:`late` (events for an evicted trace),
    :attr:`ignored` (events that name no span or trace).

    **Folded in batches.** The hub's routes (:meth:`routes`) hand each event to a list, and the
    store folds the list in once it holds :data:`FOLD_BATCH` events, or first thing in any read
    (every method and property here, :attr:`version` included, so the render tick sees each
    change). The result is the same as folding each event as it comes, but the trace store's
    code and data stay in the CPU's caches for a whole batch instead of being evicted by the
    other stores between two of its events: on the mixed stream of ``benchmarks/traces.py`` it
    costs about a third less. What a later fold could answer differently is taken when the event
    arrives: the job an agent works on (:class:`_AgentTokens`); prices and ``capture_content``
    fold what is pending before they change. :meth:`apply` folds at once. A failing event is
    reported to :attr:`on_error` (the hub's bus counts it) and the batch goes on.
    """

    name: ClassVar[str] = "traces"
    topics: ClassVar[tuple[str, ...]] = (
        "span.*",
        "agent.task.*",
        "agent.tokens",
        "agent.message",
        "job.*",
    )

    def __init__(
        self,
        clock: Clock = wall_clock,
        prices: Prices | None = None,
        *,
        max_traces: int = MAX_TRACES,
        max_spans: int = MAX_SPANS,
        max_total_spans: int = MAX_TOTAL_SPANS,
        max_content_spans: int = MAX_CONTENT_SPANS,
        capture_content: bool | None = None,
        job_of: Callable[[str], str | None] | None = None,
    ) -> None:
        super().__init__(clock)
        for name, value in (
            ("max_traces", max_traces),
            ("max_spans", max_spans),
            ("max_total_spans", max_total_spans),
            ("max_content_spans", max_content_spans),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.prices = prices
        self.max_traces = max_traces
        self.max_spans = max_spans
        self.max_total_spans = max_total_spans
        self.max_content_spans = max_content_spans
        self._capture_content = capture_content
        self.job_of = job_of
        # By id in creation order; _order holds the same ids oldest first (the eviction order:
        # a deque's popleft is cheaper than an OrderedDict's popitem, and its nodes).
        self._traces: dict[str, Trace] = {}
        self._order: deque[str] = deque()
        self._gone: dict[str, None] = {}  # evicted trace ids (two generations, see _evict)
        self._gone_old: dict[str, None] = {}
        self._with_content: deque[Span] = deque()
        self._agents: dict[str, None] = {}
        # Per agent (at most MAX_AGENTS_LISTED), the span it opened last, in any trace: when
        # still open and in the trace at hand, it is the agent's innermost open span there
        # (what a usage report without a span id is for), found without the trace's index.
        self._newest_open: dict[str, Span] = {}
        self._total_spans = 0
        self._evicted = 0
        self._late = 0
        self._ignored = 0
        # Traces that received usage since the last take_spent() (the alert rules over every
        # job read them once a tick); evicted traces leave it, so it stays within max_traces.
        self._spent: dict[str, Trace] = {}
        self._snap_key: tuple[Any, ...] | None = None
        self._snap: dict[str, Any] = {}
        # Events handed over by the hub, not folded in yet (see the class docstring); folded by
        # one thread at a time (a read from another thread folds too).
        self._pending: list[Event | _AgentTokens] = []
        self._fold_lock = threading.RLock()
        self.on_error: Callable[[object, str, BaseException], None] | None = None
        """Called with (handler, topic, error) when an event fails in a batch (None: logged)."""
        if prices is not None:
            prices.before_change(self.fold)
        self._handlers: dict[str, Callable[[Any], None]] = {
            SPAN_STARTED: self._span_started,
            SPAN_UPDATED: self._span_updated,
            SPAN_ENDED: self._span_ended,
            "agent.task.started": self._open,
            "agent.task.completed": self._close,
            "agent.task.failed": self._task_failed,
            "agent.tokens": self._tokens,
            "agent.message": self._message,
            **dict.fromkeys(_JOB_TOPICS, self._job),
            "job.enqueued": self._job_enqueued,
            "job.started": self._job_started,
            "job.completed": self._job_completed,
            _AGENT_TOKENS: self._agent_tokens,
        }

    # -- reading (each read folds in what is pending first) -----------------------------------
    @property
    def version(self) -> int:  # the render tick reads it: folds too
        self.fold()
        return self._version

    @version.setter
    def version(self, value: int) -> None:
        self._version = value

    @property
    def capture_content(self) -> bool | None:
        """Content kept: None (this kernel's only), True (all) or False (none)."""
        return self._capture_content

    @capture_content.setter
    def capture_content(self, value: bool | None) -> None:
        self.fold()  # what arrived before the change is kept as it was meant to be
        self._capture_content = value

    @property
    def total_spans(self) -> int:
        """Spans kept in all traces."""
        self.fold()
        return self._total_spans

    @property
    def evicted(self) -> int:
        """Traces evicted (the oldest, past a bound)."""
        self.fold()
        return self._evicted

    @property
    def late(self) -> int:
        """Events for a trace already evicted (ignored)."""
        self.fold()
        return self._late

    @property
    def ignored(self) -> int:
        """Events that name no span or trace, or carry unusable usage."""
        self.fold()
        return self._ignored

    def __len__(self) -> int:
        self.fold()
        return len(self._traces)

    def __contains__(self, trace_id: object) -> bool:
        self.fold()
        return trace_id in self._traces

    def trace(self, trace_id: str) -> Trace | None:
        """The live :class:`Trace` object (read-only for callers), or None."""
        self.fold()
        return self._traces.get(trace_id)

    def get(self, trace_id: str) -> dict[str, Any] | None:
        """A trace's summary by trace id (a job's trace id is its job id), or None."""
        self.fold()
        t = self._traces.get(trace_id)
        return t.summary() if t is not None else None

    def traces(self) -> list[Trace]:
        """The live :class:`Trace` objects, oldest first (read-only for callers)."""
        self.fold()
        return list(self._traces.values())

    def ids(self) -> list[str]:
        """Trace ids, newest first."""
        self.fold()
        return list(reversed(self._traces))

    def agents(self) -> list[str]:
        """Agents seen in traces (at most 256), sorted."""
        self.fold()
        return sorted(self._agents)

    def spans(self, trace_id: str, *, with_content: bool = False) -> list[dict[str, Any]]:
        """A trace's spans in arrival order (empty when unknown)."""
        self.fold()
        t = self._traces.get(trace_id)
        if t is None:
            return []
        return [s.to_dict(with_content=with_content) for s in t.spans.values()]

    def span_version(self, trace_id: str, i: int) -> int | None:
        """The store version at which span ``i`` of a trace last changed (None: no such span)."""
        self.fold()
        t = self._traces.get(trace_id)
        s = _nth(t, i) if t is not None else None
        return s.ver if s is not None else None

    def span(self, trace_id: str, span: str | int) -> dict[str, Any] | None:
        """One span with its content and links (by span id or arrival index), or None."""
        self.fold()
        t = self._traces.get(trace_id)
        if t is None:
            return None
        found: Span | None
        if isinstance(span, int) and not isinstance(span, bool):
            found = _nth(t, span)
        else:
            found = t.spans.get(str(span))
        if found is None:
            return None
        out = found.to_dict(with_content=True)
        by_i = {s.i: s for s in t.spans.values()} if t.links else {}
        out["links"] = [
            {
                "direction": "out" if src == found.i else "in",
                "agent": (by_i[dst].agent if src == found.i and dst in by_i else None)
                if src == found.i
                else (by_i[src].agent if src in by_i else None),
                "kind": kind,
                "ts": ts,
            }
            for src, dst, kind, ts in t.links
            if found.i in (src, dst)
        ][:32]
        return out

    def query(
        self,
        status: str | None = None,
        agent: str | None = None,
        text: str | None = None,
        limit: int | None = SNAPSHOT_LIMIT,
    ) -> list[dict[str, Any]]:
        """Summaries of the newest traces matching every filter given, newest first.

        ``status``: running, ok, failed or cancelled; ``agent``: an agent involved; ``text``: a
        case-insensitive substring of the trace's id, job, name, agents, span names, models or
        error messages.
        """
        if status is not None and status not in TRACE_STATUSES:
            raise ValueError(f"unknown status {status!r}; expected one of {TRACE_STATUSES}")
        self.fold()
        needle = text.casefold() if text else None
        out: list[dict[str, Any]] = []
        for t in reversed(self._traces.values()):
            if status is not None and t.status != status:
                continue
            if agent is not None and agent not in t.agents:
                continue
            if needle is not None and needle not in t.search:
                continue
            out.append(t.summary())
            if limit is not None and len(out) >= limit:
                break
        return out

    def counters(self) -> dict[str, int]:
        """Bookkeeping for health views."""
        self.fold()
        return {
            "traces": len(self._traces),
            "spans": self._total_spans,
            "evicted": self._evicted,
            "late": self._late,
            "ignored": self._ignored,
        }

    def snapshot(self, limit: int = SNAPSHOT_LIMIT) -> dict[str, Any]:
        """The ``traces`` snapshot: counts by status and the newest ``limit`` summaries (cut
        to ~60 KB serialised; ``listed`` says how many are in ``traces``)."""
        key = (self.version, limit)  # folds in what is pending
        if key != self._snap_key:
            counts = dict.fromkeys(TRACE_STATUSES, 0)
            for t in self._traces.values():
                counts[t.status] += 1
            listed = _fit(self.query(limit=limit), SNAPSHOT_BUDGET)
            self._snap = {
                "counts": counts,
                "total": len(self._traces),
                "traces": listed,
                "agents": self.agents(),
                "counters": self.counters(),
            }
            self._snap_key = key
        return {"now": self.clock(), **self._snap}

    # -- ingest --------------------------------------------------------------------------------
    def routes(self) -> dict[str, Any]:
        """What the hub subscribes for each topic: the hand-over to the next batch (see the
        class docstring)."""
        routes: dict[str, Any] = dict.fromkeys(self._handlers, self._defer)
        del routes[_AGENT_TOKENS]
        routes["agent.tokens"] = self._defer_tokens
        return routes

    def apply(self, event: Event) -> None:
        """Fold one event in now (O(1)), after any pending; odd fields are ignored, never
        raised."""
        handler = self._handlers.get(event.topic)
        if handler is not None:
            with self._fold_lock:
                self.fold()
                handler(event)

    def fold(self) -> None:
        """Fold in the events the hub handed over since the last fold (each read does)."""
        if self._pending:
            self._fold()

    def _defer(self, event: Event | _AgentTokens) -> None:
        pending = self._pending
        pending.append(event)
        if len(pending) >= FOLD_BATCH:
            self._fold()

    def _defer_tokens(self, event: Event) -> None:
        if (
            event.trace_id is None
            and event.agent is not None
            and self.job_of is not None
            and event.data.get("job_id") is None
        ):
            # Counted in the job its agent works on now (see _tokens), asked now.
            self._defer(_AgentTokens(event, self.job_of(event.agent)))
        else:
            self._defer(event)

    def _fold(self) -> None:
        with self._fold_lock:
            pending = self._pending
            n = len(pending)
            if not n:
                return
            # Taken by slicing, not by swapping the list: a thread that hands an event over
            # while another thread folds appends it to this list, after the n taken here.
            batch = pending[:n]
            del pending[:n]
            handlers = self._handlers
            for event in batch:
                try:
                    handlers[event.topic](event)
                except Exception as exc:
                    self._failed(handlers[event.topic], event.topic, exc)

    def _failed(self, handler: object, topic: str, exc: Exception) -> None:
        if self.on_error is not None:
            self.on_error(handler, topic, exc)
        else:
            log.error("the trace store failed on an event of topic %r", topic, exc_info=exc)

    def _trace(self, trace_id: str, ts: float | None) -> Trace | None:
        """The trace, created when new (evicting the oldest past the bounds); None when the
        id belongs to a trace already evicted (a late event)."""
        traces = self._traces
        t = traces.get(trace_id)
        if t is not None:
            return t
        return self._new_trace(trace_id, ts)

    def _new_trace(self, trace_id: str, ts: float | None) -> Trace | None:
        """A new trace (evicting the oldest past the bounds), or None when the id belongs to a
        trace already evicted (a late event). The caller found no trace ``trace_id``."""
        if trace_id in self._gone or trace_id in self._gone_old:
            self._late += 1
            return None
        traces = self._traces
        if len(traces) >= self.max_traces:
            self._evict()
            while len(traces) >= self.max_traces:  # max_traces was lowered
                self._evict()
        t = traces[trace_id] = Trace(trace_id, ts)
        self._order.append(trace_id)
        return t

    def _evict(self) -> None:
        old_id = self._order.popleft()
        old = self._traces.pop(old_id)
        if self._spent:
            self._spent.pop(old_id, None)
        self._total_spans -= len(old.spans)
        self._evicted += 1
        # The ids of evicted traces (late events for them are counted, not a new trace): two
        # generations of max_traces ids each, so at least the newest max_traces are remembered.
        gone = self._gone
        gone[old_id] = None
        if len(gone) >= self.max_traces:
            self._gone_old = gone
            self._gone = {}

    def _changed(self, t: Trace, s: Span | None = None) -> None:
        self._version = version = self._version + 1
        t.ver = version
        if s is not None:
            s.ver = version

    def _add_span(
        self,
        t: Trace,
        span_id: str,
        agent: str | None,
        kind: str,
        start: float | None,
        running: bool,
    ) -> Span | None:
        """A new span in ``t``, or None when the trace is full (counted as omitted)."""
        spans = t.spans
        i = len(spans)
        if i >= self.max_spans:
            t.omitted += 1
            self._changed(t)
            return None
        if self._total_spans >= self.max_total_spans:
            self._make_room(t)
        s = spans[span_id] = Span(i, span_id, agent, kind, start)
        self._total_spans += 1
        if running:
            t.open += 1
        if agent is not None:
            agents = t.agents
            if agent not in agents and len(agents) < MAX_TRACE_AGENTS:
                agents[agent] = None
            if agent not in self._agents and len(self._agents) < MAX_AGENTS_LISTED:
                self._agents[agent] = None
            if running:
                newest = self._newest_open
                if agent in newest or len(newest) < MAX_AGENTS_LISTED:
                    newest[agent] = s
            opened, last = t.agent_open, t.agent_last
            if opened is not None and last is not None:  # the agents' index is kept
                if running:
                    opened.setdefault(agent, {})[span_id] = None
                last[agent] = span_id
                if t.pending:
                    self._resolve_links(t, agent, s)
        return s

    def _make_room(self, t: Trace) -> None:
        """Evict the oldest traces (never ``t``) while all traces hold max_total_spans."""
        while self._total_spans >= self.max_total_spans and len(self._traces) > 1:
            oldest = self._order[0]
            if oldest == t.trace_id:
                break
            self._evict()

    def _reattribute(self, t: Trace, s: Span, agent: str) -> None:
        """Give an existing span to ``agent`` (its producer learned whose it is)."""
        opened, last = t.agent_open, t.agent_last
        if opened is not None and last is not None:  # the agents' index is kept
            if s.agent is not None:
                mine = opened.get(s.agent)
                if mine is not None:
                    mine.pop(s.span_id, None)
                if last.get(s.agent) == s.span_id:
                    del last[s.agent]
            if s.status == _OPEN:
                opened.setdefault(agent, {})[s.span_id] = None
            last[agent] = s.span_id
        s.agent = agent
        if s.status == _OPEN and (
            agent in self._newest_open or len(self._newest_open) < MAX_AGENTS_LISTED
        ):
            self._newest_open[agent] = s
        if agent not in t.agents and len(t.agents) < MAX_TRACE_AGENTS:
            t.agents[agent] = None
        if agent not in self._agents and len(self._agents) < MAX_AGENTS_LISTED:
            self._agents[agent] = None

    def _describe(self, t: Trace, s: Span, data: dict[str, Any]) -> None:
        """Fill a span's description from a start (or a self-describing end)."""
        # The hot path of every start: fields are read once, absent ones cost a dict look-up.
        get = data.get
        name = get("name")
        if name is None:
            name = get("task")
        if name is not None:
            if type(name) is not str or not 0 < len(name) <= MAX_NAME:
                name = _text(name)
            if name is not None:
                s.name = name
        job = get("job_id")
        if job is not None:
            if job == t.job_id:  # the usual: the trace's job, an id checked already
                s.job_id = t.job_id
            else:
                if type(job) is not str or not 0 < len(job) <= 256:
                    job = _text(job, 256)
                if job is not None:
                    s.job_id = job
                    if t.job_id is None:
                        t.job_id = job
        if _START_FIELDS.isdisjoint(data):  # a task's start usually has none of the others
            if t.name is None and s.parent_id is None:
                t.name = s.name
            return
        kind = get("kind")
        if kind is not None and kind in _KINDS:
            s.kind = kind
        parent = get("parent_id")
        if parent is not None:
            if type(parent) is not str or not 0 < len(parent) <= 256:
                parent = _text(parent, 256)
            if parent is not None and parent != s.span_id:
                s.parent_id = parent
        model = get("model")
        if model is not None and s.model is None:
            if type(model) is not str or not 0 < len(model) <= MAX_NAME:
                model = _text(model)
            if model is not None:
                s.model = model
        attributes = get("attributes")
        if attributes and isinstance(attributes, dict):
            s.attributes = _merge_attributes(s.attributes, attributes)
        if "input" in data:
            self._keep_content(s, "input", data["input"])
        if t.name is None and s.parent_id is None:
            t.name = s.name

    def _keep_content(self, s: Span, field: str, value: Any) -> None:
        if self._capture_content is False or value is None:
            return
        kept = content(value, messages=s.kind == "llm", budget=SPAN_CONTENT)
        had = s.input is not None or s.output is not None
        setattr(s, field, kept)
        if not had:
            queue = self._with_content
            queue.append(s)
            while len(queue) > self.max_content_spans:
                old = queue.popleft()
                old.input = old.output = None

    def _trace_of(self, event: Event, span_id: str) -> str:
        """A span event's trace id: the envelope's, else its job's; a span with neither is the
        root of its own trace."""
        trace_id = event.trace_id
        if trace_id is None:
            job = event.data.get("job_id")
            if type(job) is str and 0 < len(job) <= 256:
                return job
            return (_text(job, 256) if job is not None else None) or span_id
        return trace_id

    def _open(self, event: Event, span_id: str | None = None, kind: str | None = "task") -> None:
        """A span's start; called as is (the defaults) for an ``agent.task.started``."""
        if span_id is None:
            span_id = event.span_id or self._task_span(event)
            if span_id is None:
                return
        trace_id = event.trace_id
        if trace_id is None:
            trace_id = self._trace_of(event, span_id)
        ts = event.ts
        t = self._traces.get(trace_id)
        if t is None:
            t = self._new_trace(trace_id, ts)
            if t is None:
                return
        agent = event.agent
        s = t.spans.get(span_id)
        if s is None:
            s = self._add_span(t, span_id, agent, kind or "other", ts, True)
            if s is None:
                return
        else:
            if s.start is None or ts < s.start:
                s.start = ts  # the start after its end (out of order), or a repeated start
            if kind is not None and s.kind == "other":
                # Seen first without meaning, now known as a task: an OpenTelemetry span whose
                # attributes tell that it is an agent only later (LangChain in the kernel).
                s.kind = kind
            if agent is not None and s.agent != agent:
                self._reattribute(t, s, agent)
        self._describe(t, s, event.data)
        if t.start is None or ts < t.start:
            t.start = ts
        self._version = version = self._version + 1  # touch(), inlined: this runs per event
        t.ver = s.ver = version

    def _close(
        self,
        event: Event,
        span_id: str | None = None,
        status: str = "ok",
        error_type: str | None = None,
        error: str | None = None,
        kind: str | None = "task",
    ) -> None:
        """A span's end; called as is (the defaults) for an ``agent.task.completed``."""
        if span_id is None:
            span_id = event.span_id or self._task_span(event)
            if span_id is None:
                return
        trace_id = event.trace_id
        if trace_id is None:
            trace_id = self._trace_of(event, span_id)
        data = event.data
        ts = event.ts
        t = self._traces.get(trace_id)
        if t is None:
            t = self._new_trace(trace_id, ts)
            if t is None:
                return
        s = t.spans.get(span_id)
        described = "start" in data  # a span whose start was never seen describes itself
        created = s is None
        if s is None:
            if len(t.spans) >= self.max_spans and not described:
                # The end of a span omitted at its start: its usage and error count, once.
                self._usage(t, None, data, ts)
                if status == "error":
                    self._count_error(t, None, error_type, error)
                self._changed(t)
                return
            s = self._add_span(t, span_id, event.agent, kind or "other", None, False)
            if s is None:  # full: this self-describing span is counted as omitted
                self._usage(t, None, data, ts)
                if status == "error":
                    self._count_error(t, None, error_type, error)
                return
        if described:
            start = _number(data.get("start"))
            if s.start is None and start is not None and start <= ts:
                s.start = start
                t.see_time(start)
            self._describe(t, s, data)
        if not created and s.status != _OPEN:
            # A repeated end: what it adds is merged, nothing is counted again.
            self._merge_end(t, s, data)
            self._changed(t, s)
            return
        if not created:  # it was open until now
            t.open -= 1
            opened = t.agent_open
            if opened is not None and s.agent is not None:
                mine = opened.get(s.agent)
                if mine is not None:
                    mine.pop(span_id, None)
        s.status = status
        s.end = ts
        if status != "ok":
            s.error_type = error_type
            s.error = error
        if not _END_FIELDS.isdisjoint(data):  # a task's end usually has none of them
            # A self-describing end had its attributes merged by _describe already.
            self._merge_end(t, s, data, attributes=not described)
            self._usage(t, s, data, ts)
        if status == "error":
            self._count_error(t, s, error_type, error)
        if t.end is None or ts > t.end:
            t.end = ts
        self._version = version = self._version + 1
        t.ver = s.ver = version

    def _merge_end(
        self, t: Trace, s: Span, data: dict[str, Any], *, attributes: bool = True
    ) -> None:
        get = data.get
        model = get("model")
        if model is not None and model != s.model and (model := _text(model)) is not None:
            s.model = model  # the response model is preferred over the requested one
        first = get("first_token_at")
        if first is not None and (first := _number(first)) is not None:
            s.first_token_at = first
        if attributes:
            new = get("attributes")
            if new and isinstance(new, dict):
                s.attributes = _merge_attributes(s.attributes, new)
        if "output" in data:
            self._keep_content(s, "output", data["output"])

    def _usage(self, t: Trace, s: Span | None, data: dict[str, Any], ts: float) -> None:
        """Add an LLM span's usage to the span (once) and to the trace's totals."""
        get = data.get
        prompt, completion, cost = get("prompt_tokens"), get("completion_tokens"), get("cost_usd")
        if prompt is None and completion is None and cost is None:
            return
        if type(prompt) is not int or prompt < 0:
            prompt = _count(prompt)
        if type(completion) is not int or completion < 0:
            completion = _count(completion)
        if cost is not None:
            cost = _number(cost)
            if cost is not None and cost < 0:
                cost = None
        if prompt is None and completion is None and cost is None:
            return
        if s is not None:
            if s.usage_seen:
                return
            s.usage_seen = True
        prompt, completion = prompt or 0, completion or 0
        unknown = False
        if cost is None and (prompt or completion):
            model = get("model")
            if type(model) is not str or not 0 < len(model) <= MAX_NAME:
                model = _text(model)
            if model is None and s is not None:
                model = s.model
            cost = self.prices.cost(model, prompt, completion) if self.prices else None
            unknown = cost is None
        t.prompt += prompt
        t.completion += completion
        if cost is not None:
            t.cost += cost
        if unknown:
            t.cost_unknown += 1
        if t.usage_at is None or ts > t.usage_at:
            t.usage_at = ts
        self._spent[t.trace_id] = t
        if s is not None:
            s.prompt += prompt
            s.completion += completion
            if cost is not None:
                s.cost = (s.cost or 0.0) + cost
            s.cost_unknown = unknown

    def _count_error(
        self, t: Trace, s: Span | None, error_type: str | None, error: str | None
    ) -> None:
        t.errors += 1
        text = f"{error_type or 'Error'}: {error}" if error else (error_type or "Error")
        if t.first_error is None:
            t.first_error = cut_text(text, 200)
        t.note(text[:200])
        if s is not None and s.parent_id is None:
            t.root_error = True

    # -- span events ---------------------------------------------------------------------------
    def _span_updated(self, event: Event) -> None:
        span_id = event.span_id
        t = self._traces.get(self._trace_of(event, span_id)) if span_id is not None else None
        s = t.spans.get(span_id) if t is not None and span_id is not None else None
        if t is None or s is None:
            self._ignored += 1  # an update is meaningless without its span
            return
        self._merge_end(t, s, event.data)
        self._changed(t, s)

    def _span_started(self, event: Event) -> None:
        span_id = event.span_id
        if span_id is None:
            self._ignored += 1  # no span to name (a producer without ids)
            return
        self._open(event, span_id, None)

    def _span_ended(self, event: Event) -> None:
        span_id = event.span_id
        if span_id is None:
            self._ignored += 1  # no span to name (a producer without ids)
            return
        data = event.data
        get = data.get
        status = get("status")
        error_type = get("error_type")
        error = get("error")
        if error_type is not None:
            error_type = _text(error_type, 128)
        if error is not None:
            error = _text(error, MAX_ERROR)
        if status not in _SPAN_STATUSES:
            status = "error" if error or error_type else "ok"
        kind = get("kind")
        self._close(event, span_id, status, error_type, error, kind if kind in _KINDS else None)

    def _task_span(self, event: Event) -> str | None:
        """A task event's span id: the envelope's, else its ``task_id`` (None: ignored)."""
        span_id = event.span_id
        if span_id is None:
            task_id = event.data.get("task_id")
            if type(task_id) is str and 0 < len(task_id) <= 256:
                return task_id
            span_id = _text(task_id, 256) if task_id is not None else None
            if span_id is None:
                self._ignored += 1  # no span to name (a producer without ids)
        return span_id

    def _task_failed(self, event: Event) -> None:
        span_id = event.span_id or self._task_span(event)
        if span_id is None:
            return
        data = event.data
        if data.get("cancelled") is True:
            status, error_type, error = "cancelled", None, None
        else:
            status = "error"
            error_type = _text(data.get("error_type"), 128) or "Error"
            error = _text(data.get("error"), MAX_ERROR) or "task failed"
        self._close(event, span_id, status, error_type, error, "task")

    def _agent_tokens(self, entry: _AgentTokens) -> None:
        self._tokens(entry.event, entry.job)

    def _tokens(self, event: Event, agent_job: object = _ASK) -> None:
        """Task-level usage (``agent.tokens``): to its span and trace. The trace is the event's,
        else the job it names, else the job the agent works on (``job_of``, or ``agent_job``
        when that was asked as the event arrived)."""
        data = event.data
        trace_id = event.trace_id
        agent = event.agent
        t: Trace | None
        if trace_id is not None:
            t = self._traces.get(trace_id) or self._new_trace(trace_id, event.ts)
        elif (job := data.get("job_id")) is not None:
            job = _text(job, 256)
            t = (self._traces.get(job) or self._new_trace(job, event.ts)) if job else None
        elif agent is not None and self.job_of is not None:
            job = self.job_of(agent) if agent_job is _ASK else agent_job
            t = self._traces.get(job) if type(job) is str else None  # never created from here
        else:
            return
        if t is None:
            return
        prompt = data.get("prompt", 0)
        completion = data.get("completion", 0)
        cost = data.get("cost_usd", 0.0)
        if not (
            type(prompt) is int
            and type(completion) is int
            and type(cost) is float
            and prompt >= 0
            and completion >= 0
            and 0.0 <= cost < _INF
        ):
            prompt, completion, cost = _count(prompt), _count(completion), _number(cost)
            if prompt is None or completion is None or cost is None or cost < 0:
                self._ignored += 1
                return
        t.prompt += prompt
        t.completion += completion
        t.cost += cost
        ts = event.ts
        if t.usage_at is None or ts > t.usage_at:
            t.usage_at = ts
        self._spent[t.trace_id] = t
        span_id = event.span_id
        s = t.spans.get(span_id) if span_id is not None else None
        if s is None and trace_id is None and agent is not None:
            # The task it reports for: the agent's innermost open span (its newest, unless
            # that one ended, changed hands or is another trace's).
            s = self._newest_open.get(agent)
            if (
                s is None
                or s.status != _OPEN
                or s.agent != agent
                or t.spans.get(s.span_id) is not s
            ):
                s = _innermost(t, agent, open_only=True)
        self._version = version = self._version + 1
        t.ver = version
        if s is not None:
            s.prompt += prompt
            s.completion += completion
            s.cost = (s.cost or 0.0) + cost
            s.ver = version

    def take_spent(self) -> list[Trace]:
        """The traces that received usage (tokens, cost) since the last call, each once; the
        next call starts afresh. What a rule over every job reads once a tick."""
        self.fold()
        spent, self._spent = self._spent, {}
        return list(spent.values())

    # -- links and jobs ------------------------------------------------------------------------
    def _message(self, event: Event) -> None:
        data = event.data
        trace_id = event.trace_id
        if trace_id is None:
            job = data.get("job_id")
            if job is None:
                return  # the common case outside a job: nothing to link
            trace_id = _text(job, 256)
        if trace_id is None or event.agent is None:
            return
        t = self._traces.get(trace_id)
        target = data.get("target")
        if t is None or not isinstance(target, str):
            return
        source = t.spans.get(event.span_id) if event.span_id else None
        if source is None:
            source = _innermost(t, event.agent)
        if source is None or len(t.links) >= MAX_LINKS:
            return
        links = t.links
        if isinstance(links, tuple):
            links = t.links = []
        kind = _text(data.get("kind"), 64) or "message"
        link = [source.i, -1, kind, event.ts]
        dest = _innermost(t, target, open_only=True)
        if dest is not None and dest is not source:
            link[1] = dest.i
        else:
            pending = t.pending
            if pending is None:
                pending = t.pending = {}
            waiting = pending.setdefault(target, [])
            if len(waiting) < MAX_PENDING_LINKS:
                waiting.append(link)
        links.append(link)
        t.links_ver += 1
        self._changed(t)

    def _resolve_links(self, t: Trace, agent: str, s: Span) -> None:
        waiting = t.pending.pop(agent, None) if t.pending else None
        if waiting:
            for link in waiting:
                if link[0] != s.i:
                    link[1] = s.i
            t.links_ver += 1

    def _job(self, event: Event) -> None:
        """Any ``job.*`` topic (see ``_JOB_TOPICS``); the three common ones have their own."""
        state = _JOB_TOPICS.get(event.topic)
        if state is None:
            return
        data = event.data
        if state == "?":  # job.completed: the outcome from its fields
            status = data.get("status")
            found = normalise_status(status) if status is not None else None
            outcome = _JOB_DONE.get(found) if found is not None else None
            state = outcome or ("failed" if data.get("success") is False else "ok")
        elif state == "??":  # job.status.changed
            outcome = normalise_status(data.get("status", data.get("new_status")))
            if outcome is None:
                return
            state = _JOB_DONE.get(outcome, "queued" if outcome == "queued" else "running")
        self._job_state(event, state)

    # The three common job topics have their own handlers: each does the usual case (a new job's
    # trace; a queued job starting; a running job ending) in a few steps and hands anything else
    # (an unknown or odd id, an unusual order, a status field) to _job_state.
    def _job_enqueued(self, event: Event) -> None:
        data = event.data
        job_id = data.get("job_id")
        if type(job_id) is not str or job_id in self._traces or not 0 < len(job_id) <= 256:
            self._job_state(event, "queued")
            return
        t = self._new_trace(job_id, event.ts)
        if t is None:
            return
        t.job_id = job_id
        t.job_state = "queued"
        t.job_start = event.ts
        kind = data.get("kind")
        if kind is not None:
            self._job_name(t, kind)
        self._version = version = self._version + 1
        t.ver = version

    def _job_started(self, event: Event) -> None:
        job_id = event.data.get("job_id")
        t = self._traces.get(job_id) if type(job_id) is str else None
        if t is None or t.job_state != "queued" or t.name is None:
            self._job_state(event, "running")
            return
        t.job_state = "running"
        ts = event.ts
        if ts < t.start:  # type: ignore[operator]  # a job's trace has a start (its enqueue)
            t.start = ts
        self._version = version = self._version + 1
        t.ver = version

    def _job_completed(self, event: Event) -> None:
        data = event.data
        job_id = data.get("job_id")
        t = self._traces.get(job_id) if type(job_id) is str else None
        if t is None or t.job_state not in _RUNNING_JOB or t.name is None or "status" in data:
            self._job(event)
            return
        t.job_state = "failed" if data.get("success") is False else "ok"
        t.job_end = ts = event.ts
        end = t.end
        if end is None or ts > end:
            t.end = ts
        if ts < t.start:  # type: ignore[operator]  # a job's trace has a start
            t.start = ts
        self._version = version = self._version + 1
        t.ver = version

    def _job_name(self, t: Trace, kind: object) -> None:
        """The job's kind as the trace's name (and searchable)."""
        if type(kind) is not str or not 0 < len(kind) <= MAX_NAME:
            kind = _text(kind)
            if kind is None:
                return
        t.name = kind

    def _job_state(self, event: Event, state: str) -> None:
        """A job event with its trace's new state: the general case of every job topic."""
        data = event.data
        job_id: Any = data.get("job_id")
        ts = event.ts
        # A trace's id is a checked one: an id that finds a trace needs no other check.
        try:
            t = self._traces.get(job_id)
        except TypeError:  # unhashable: no id
            t = None
        if t is None:
            if type(job_id) is not str or not 0 < len(job_id) <= 256:
                job_id = _text(job_id, 256)
                if job_id is None:
                    return
                t = self._traces.get(job_id)
            if t is None:
                t = self._new_trace(job_id, ts)
                if t is None:
                    return
        t.job_id = job_id
        if state == "queued" or t.name is None:
            kind = data.get("kind")
            if kind is not None:
                self._job_name(t, kind)
        before = t.job_state
        if state in _DONE:
            if before not in _DONE:
                t.job_end = ts
            end = t.end
            if end is None or ts > end:
                t.end = ts
        elif before in _DONE and ts <= (t.job_end or 0.0):
            return  # a late start of a finished job
        elif t.job_start is None:
            t.job_start = ts
        t.job_state = state
        start = t.start
        if start is None or ts < start:
            t.start = ts
        self._version = version = self._version + 1
        t.ver = version


def _agent_index(t: Trace) -> tuple[dict[str, dict[str, None]], dict[str, str]]:
    """Per agent, its open span ids (in order) and its newest span id: built from the spans
    when a message first needs them, then kept up to date by the store."""
    opened, last = t.agent_open, t.agent_last
    if opened is None or last is None:
        opened, last = {}, {}
        for s in t.spans.values():
            agent = s.agent
            if agent is not None:
                last[agent] = s.span_id
                if s.status == _OPEN:
                    opened.setdefault(agent, {})[s.span_id] = None
        t.agent_open, t.agent_last = opened, last
    return opened, last


def _innermost(t: Trace, agent: str, *, open_only: bool = False) -> Span | None:
    """The agent's most recently started open span in ``t`` (else its newest span)."""
    opened, newest = _agent_index(t)
    mine = opened.get(agent)
    if mine:
        return t.spans.get(next(reversed(mine)))
    if open_only:
        return None
    last = newest.get(agent)
    return t.spans.get(last) if last is not None else None


def _nth(t: Trace, i: int) -> Span | None:
    """Span ``i`` of ``t`` (its arrival index: its position among the spans, never removed)."""
    if not 0 <= i < len(t.spans):
        return None
    return next(itertools.islice(t.spans.values(), i, None))


def _merge_attributes(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    merged = dict(old) if old else {}
    for key, value in new.items():
        if len(merged) >= 64 and key not in merged:
            break
        if type(value) is str:  # the usual value first; cut_text keeps a short text as is
            if len(value) > 1_024:
                value = cut_text(value, 1_024)
        elif isinstance(value, str):
            value = cut_text(value, 1_024)
        elif not (value is None or isinstance(value, (bool, int, float))):
            value = cut_text(json.dumps(value, default=str), 1_024)
        if type(key) is not str or len(key) > 128:
            key = str(key)[:128]
        merged[key] = value
    return merged


def _fit(items: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    used = 0
    out = []
    for item in items:
        used += len(json.dumps(item, default=str)) + 1
        if used > budget:
            break
        out.append(item)
    return out


class TraceEncoder:
    """One view's feed of one trace: compact rows, only what changed, paged to fit a message.

    Each :meth:`next` returns a patch (or None when nothing changed)::

        {"trace": id, "reset": bool, "t0": unix seconds, "strings": [new strings],
         "rows": {"i": [...] or "i0": first, "p": [...], "n": [...], "k": [...], "a": [...],
                  "st": [...], "s": [...], "d": [...]},
         "links": [[from i, to i, kind string index, ms], ...] or absent, "more": bool,
         "summary": {...}, "now": hub time}

    ``i`` is a span's arrival index (its id for the view; ``i0`` alone when the rows are
    consecutive, the first one's), ``p`` its parent's index (-1: a root
    or a parent not seen yet), ``n``/``k``/``a``/``st`` indices into the string table (name,
    kind, agent, status; -1 for none), ``s`` the start in ms after ``t0`` (None when unknown),
    ``d`` the duration in ms (None while open). Strings are sent once per view: ``strings``
    appends to the table the view already has (a ``reset`` empties it). Rows beyond ``budget``
    serialised bytes wait for the next call (``more`` true).
    """

    def __init__(self, store: TraceStore, trace_id: str) -> None:
        self.store = store
        self.trace_id = trace_id
        self._strings: dict[str, int] = {}
        self._sent_ver = -1  # spans changed after this version are sent
        self._pending: list[Span] = []  # rows of a paged update still to send
        self._links_ver = -1
        self._t0: float | None = None
        self._reset = True

    @property
    def more(self) -> bool:
        """True while rows of a paged update are still to be sent."""
        return bool(self._pending)

    def _string(self, value: str | None, new: list[str]) -> int:
        if value is None:
            return -1
        k = self._strings.get(value)
        if k is None:
            k = self._strings[value] = len(self._strings)
            new.append(value)
        return k

    def next(self, budget: int = 60_000) -> dict[str, Any] | None:
        """The next patch for the view, or None when it is up to date."""
        t = self.store.trace(self.trace_id)
        if t is None:
            if self._reset or self._t0 is not None:
                self._reset = False
                self._t0 = None
                return {"trace": self.trace_id, "reset": True, "missing": True, "strings": [],
                        "rows": _columns([]), "more": False, "summary": None,
                        "now": self.store.clock(), "t0": None}  # fmt: skip
            return None
        reset = self._reset
        if reset:
            self._strings = {}
            self._t0 = t.start if t.start is not None else self.store.clock()
            self._sent_ver = -1
            self._links_ver = -1
        if not self._pending:
            if not reset and t.ver <= self._sent_ver:
                return None
            self._pending = [s for s in t.spans.values() if s.ver > self._sent_ver]
            self._sent_ver = t.ver
        t0 = self._t0
        assert t0 is not None
        new: list[str] = []
        rows: list[tuple[Any, ...]] = []
        used = 300 + sum(len(x) + 4 for x in new)
        for s in self._pending:
            parent = t.spans.get(s.parent_id) if s.parent_id else None
            row = (
                s.i,
                parent.i if parent is not None else -1,
                self._string(s.name, new),
                self._string(s.kind, new),
                self._string(s.agent, new),
                self._string(s.status, new),
                None if s.start is None else round((s.start - t0) * 1000),
                None
                if s.end is None
                else round((s.end - (s.start if s.start is not None else s.end)) * 1000),
            )
            # A value costs its digits, a comma and a space (the kernel's JSON is not compact);
            # the index column is usually sent as its first value alone (contiguous rows).
            used += sum(len(str(v)) + 2 for v in row[1:]) + 2
            if rows and used + sum(len(x.encode()) + 4 for x in new) > budget:
                break
            rows.append(row)
        while len(rows) > 1 and _json_size(new, rows) > budget:  # the estimate was short
            rows = rows[: len(rows) * 9 // 10]
        # Strings made for rows that did not fit are sent anyway (they are in the table now).
        self._pending = self._pending[len(rows) :]
        patch: dict[str, Any] = {
            "trace": t.trace_id,
            "reset": reset,
            "t0": t0,
            "strings": new,
            "rows": _columns(rows),
            "more": bool(self._pending),
            "summary": t.summary(),
            "now": self.store.clock(),
        }
        if t.links_ver != self._links_ver:
            kinds = [self._string(link[2], new) for link in t.links]
            patch["links"] = [
                [link[0], link[1], k, round((link[3] - t0) * 1000)]
                for link, k in zip(t.links, kinds, strict=True)
            ]
            self._links_ver = t.links_ver
        self._reset = False
        return patch


_COLUMNS = ("i", "p", "n", "k", "a", "st", "s", "d")


def _columns(rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    """Rows as one list per column (``_COLUMNS``): fewer bytes than a dict per row. When the
    indices are consecutive (a whole trace), ``i`` is replaced by ``i0``, the first."""
    if not rows:
        return {key: [] for key in _COLUMNS}
    cols: dict[str, Any] = {
        key: list(col) for key, col in zip(_COLUMNS, zip(*rows, strict=True), strict=True)
    }
    first = cols["i"][0]
    if cols["i"][-1] - first == len(rows) - 1 and cols["i"] == list(
        range(first, first + len(rows))
    ):
        del cols["i"]
        cols["i0"] = first
    return cols


def _json_size(strings: list[str], rows: list[tuple[Any, ...]]) -> int:
    body = {"strings": strings, "rows": _columns(rows)}
    return len(json.dumps(body, ensure_ascii=False).encode()) + 600  # + the other fields
