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
from contextvars import ContextVar
from typing import NamedTuple

__all__ = [
    "CONTENT_LIMIT",
    "SPAN_ENDED",
    "SPAN_KINDS",
    "SPAN_STARTED",
    "SPAN_STATUSES",
    "SPAN_TOPICS",
    "SPAN_UPDATED",
    "TASK_TOPICS",
    "SpanRef",
    "current_span",
    "new_span_id",
    "new_trace_id",
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
