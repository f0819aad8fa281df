"""Spans: the one model of everything that takes time (DESIGN section 11), as events.

A span has a trace id, a span id, a parent id, a name, a kind, an agent, a start, an end (none
while open), a status, an error, a model, tokens, a cost and a bounded dict of attributes;
content (messages, answers, tool arguments and results) is optional and truncated. Spans travel
as events like everything else, so history, replay, Redis and time travel carry them for free.
This module is the contract every producer follows (our agent API, the simulator, Codeur's bus
bridge, OpenTelemetry); :class:`~codeur_widgets.core.traces.TraceStore` folds the events.

Event topics and fields
-----------------------
The envelope's ``trace_id`` and ``span_id`` identify the span, its ``agent`` is the agent the
span belongs to (for a span with no agent meaning, the nearest agent ancestor), and its ``ts`` is
the moment the event describes (start or end).

**Agent tasks** keep their own topics, so cards, counters and durations work as before:
``agent.task.started`` (``ts`` = start) and ``agent.task.completed`` / ``agent.task.failed``
(``ts`` = end) are the start and end of a span of kind ``task``. Their ``data`` keeps ``task``,
``task_id``, ``job_id``, ``duration``, ``error_type``, ``error``, ``cancelled`` and adds
``parent_id``. ``job_id`` is the trace id when given; a task with no job (and no enclosing span)
starts its own trace.

**Every other span** (kinds in :data:`SPAN_KINDS`):

``span.started`` (``ts`` = start)
    ``name`` (str, required), ``kind`` (required), ``parent_id``, ``job_id``, ``model`` (the
    requested model), ``input`` (content: a string or a list of ``{"role", "content"}``
    messages; tool arguments for a tool span), ``attributes`` (a flat dict of scalars).
``span.updated`` (``ts`` = when)
    any of ``first_token_at`` (unix seconds), ``attributes``, ``output``, ``model``: merged into
    the open span (e.g. the first streamed token of an LLM call).
``span.ended`` (``ts`` = end)
    ``status`` (one of :data:`SPAN_STATUSES`), ``error_type``, ``error``, ``model`` (the
    response model, preferred over the requested one), ``prompt_tokens``,
    ``completion_tokens``, ``cost_usd``, ``first_token_at``, ``output`` (content: the answer,
    or a tool's result), ``attributes``. A span whose start was never seen (OTLP delivers only
    ended spans) also carries ``start`` (unix seconds), ``name``, ``kind``, ``parent_id`` and
    ``job_id``, so one ``span.ended`` describes it completely.

**Usage is reported exactly once**: either on an LLM span's ``span.ended`` (``prompt_tokens``,
``completion_tokens``, ``cost_usd``) or by an ``agent.tokens`` event (task level), never both
for the same call. The agent registry adds both kinds to the agent's card, and the trace store
adds both to the trace. A producer that sees aggregated usage on an agent span as well as on its
LLM children (some frameworks do) keeps the children's and drops the aggregate.

**Content** (``input``, ``output``) is kept per :attr:`Hub.capture_content`: ``None`` (default)
keeps it for spans produced in this kernel (our agent API, the simulator, an in-kernel
OpenTelemetry processor) and drops it from spans read from the network (Redis, OTLP); ``True``
keeps all, ``False`` none. Each text kept is cut at :data:`CONTENT_LIMIT` characters with a
marker.

Ids are strings: span ids are 16 hex digits and trace ids 32 (OpenTelemetry's widths), made from
a per-process random prefix and a counter (unique across threads without a lock); ids from
elsewhere (job ids, OTLP's) are used as they come.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from .events import Event

__all__ = [
    "CONTENT_FIELDS",
    "CONTENT_LIMIT",
    "CONTENT_MESSAGES",
    "CONTENT_TOTAL",
    "SPAN_ENDED",
    "SPAN_KINDS",
    "SPAN_STARTED",
    "SPAN_STATUSES",
    "SPAN_TOPICS",
    "SPAN_UPDATED",
    "TASK_TOPICS",
    "SpanRef",
    "content",
    "current_span",
    "cut_text",
    "new_span_id",
    "new_trace_id",
    "strip_content",
]

SPAN_KINDS = ("job", "agent", "task", "llm", "tool", "retrieval", "embedding", "other")
"""What a span is: the job (the trace's root), an agent's invocation or task, an LLM call, a
tool call, a retrieval, an embedding, anything else (HTTP, database...)."""

SPAN_STATUSES = ("ok", "error", "cancelled")

SPAN_STARTED = "span.started"
SPAN_UPDATED = "span.updated"
SPAN_ENDED = "span.ended"
SPAN_TOPICS = (SPAN_STARTED, SPAN_UPDATED, SPAN_ENDED)
TASK_TOPICS = ("agent.task.started", "agent.task.completed", "agent.task.failed")

CONTENT_LIMIT = 8192
"""Characters of one captured text (a message, an answer, tool arguments) kept per span."""

CONTENT_MESSAGES = 64
"""Messages of one conversation kept per span: the newest ones (the earlier are counted)."""

CONTENT_TOTAL = 65_536
"""Characters of content (``input`` and ``output`` together) kept per span, all texts counted;
past it the remaining texts are replaced by a marker (so one event stays well under a Redis
entry's or a comm message's size)."""

CONTENT_FIELDS = ("input", "output")
"""The ``data`` fields of span events that hold content (kept per ``capture_content``)."""

CUT_MARKER = "…[cut {n} chars]"

_PREFIX = os.urandom(4).hex()
_span_counter = itertools.count(1)
_trace_counter = itertools.count(1)


def new_span_id() -> str:
    """A process-unique span id: 16 hex digits (a random prefix and a counter)."""
    return f"{_PREFIX}{next(_span_counter) & 0xFFFFFFFF:08x}"


def new_trace_id() -> str:
    """A process-unique trace id: 32 hex digits."""
    return f"{_PREFIX}{os.urandom(8).hex()}{next(_trace_counter) & 0xFFFFFFFF:08x}"


class SpanRef(NamedTuple):
    """The span code is running in: what a span started inside it takes as its parent."""

    trace_id: str
    span_id: str
    agent: str | None
    job_id: str | None


current_span: ContextVar[SpanRef | None] = ContextVar("codeur_widgets_current_span", default=None)
"""The innermost open span of this thread or asyncio task (tasks copy it when created), so
nested ``task()``, ``llm_call()`` and ``tool_call()`` contexts nest without being told."""


# -- content ------------------------------------------------------------------------------------
def cut_text(text: str, limit: int = CONTENT_LIMIT) -> str:
    """``text`` cut to at most ``limit`` characters, the marker included."""
    if len(text) <= limit:
        return text
    marker = CUT_MARKER.format(n=len(text) - limit)
    keep = max(0, limit - len(marker))
    return text[:keep] + CUT_MARKER.format(n=len(text) - keep)


class _Budget:
    __slots__ = ("left",)

    def __init__(self, left: int) -> None:
        self.left = left

    def text(self, value: str) -> str:
        if self.left <= 0:
            return CUT_MARKER.format(n=len(value))
        out = cut_text(value, min(CONTENT_LIMIT, max(self.left, 32)))
        self.left -= len(out)
        return out


def _plain(value: Any, budget: _Budget, depth: int) -> Any:
    """A JSON-safe copy of ``value`` with every text cut; never raises."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return budget.text(value)
    if isinstance(value, int):
        return value if -(2**63) <= value <= 2**63 else budget.text(str(value))
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if depth >= 8:
        return budget.text(_repr(value))
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for i, (key, item) in enumerate(value.items()):
            if i >= 256 or budget.left <= 0:
                out["…"] = f"{len(value) - i} more"
                break
            out[key if isinstance(key, str) else _repr(key)] = _plain(item, budget, depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        items = []
        for i, item in enumerate(value):
            if i >= 256 or budget.left <= 0:
                items.append(f"…[{len(value) - i} more]")
                break
            items.append(_plain(item, budget, depth + 1))
        return items
    to_dict = getattr(value, "model_dump", None) or getattr(value, "to_dict", None)
    if callable(to_dict):  # pydantic models, SDK objects
        try:
            return _plain(to_dict(), budget, depth + 1)
        except Exception:
            pass
    return budget.text(_repr(value))


def _repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def _message(msg: Any, budget: _Budget) -> Any:
    """One chat message as ``{"role", "content"}`` (plus what else it carries, cut)."""
    if isinstance(msg, Mapping) or hasattr(msg, "role"):
        get = msg.get if isinstance(msg, Mapping) else (lambda k: getattr(msg, k, None))
        out: dict[str, Any] = {"role": str(get("role") or "")[:64]}
        body = get("content")
        out["content"] = budget.text(body) if isinstance(body, str) else _plain(body, budget, 1)
        for extra in ("name", "tool_calls", "tool_call_id"):
            value = get(extra)
            if value is not None:
                out[extra] = _plain(value, budget, 1)
        return out
    return _plain(msg, budget, 1)


def content(value: Any, *, messages: bool = False, budget: int = CONTENT_TOTAL) -> Any:
    """``value`` made safe to travel as span content, never raising.

    Texts are cut at :data:`CONTENT_LIMIT` characters (marker included) and at ``budget``
    characters in all; objects that JSON cannot hold become their ``repr``. With ``messages``
    (an LLM call's input or output), a list is read as chat messages ``{"role", "content"}`` and
    only the newest :data:`CONTENT_MESSAGES` are kept, after a marker naming how many were left
    out.
    """
    left = _Budget(budget)
    if messages and isinstance(value, (list, tuple)):
        items = list(value)
        dropped = max(0, len(items) - CONTENT_MESSAGES)
        # The newest messages matter most: they get the budget first.
        kept = [_message(m, left) for m in reversed(items[dropped:])]
        kept.reverse()
        if dropped:
            kept.insert(0, {"role": "note", "content": f"…[{dropped} earlier messages not kept]"})
        return kept
    if messages and (isinstance(value, Mapping) or hasattr(value, "role")):
        return _message(value, left)
    return _plain(value, left, 0)


def strip_content(event: Event) -> Event:
    """``event`` without its content fields (``input``, ``output``), or itself when it has none.

    Used on events read from the network when ``capture_content`` is not True.
    """
    if event.topic not in SPAN_TOPICS:
        return event
    data = event.data
    if "input" not in data and "output" not in data:
        return event
    kept = {k: v for k, v in data.items() if k not in CONTENT_FIELDS}
    return type(event)(
        event.topic, event.agent, kept, event.ts, event.id, event.trace_id, event.span_id
    )
