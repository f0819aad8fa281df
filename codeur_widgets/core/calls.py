"""Spans from agent code: ``llm_call``, ``tool_call``, ``retrieval`` and ``span`` contexts.

Made by :class:`~codeur_widgets.core.agent.AgentHandle`; each is a ``with`` / ``async with``
context that publishes ``span.started`` on entry and ``span.ended`` on exit (the contract of
:mod:`codeur_widgets.core.spans`), nests under the span the code is running in (a task, another
call) through :data:`~codeur_widgets.core.spans.current_span`, and records an escaping exception
as the span's error before re-raising it, as ``task()`` does::

    with a.llm_call(model="gpt-4o", messages=msgs) as c:
        for chunk in stream:
            c.first_token()          # once: time to first token, tokens/s
            ...
        c.output(answer)
        c.tokens(prompt=812, completion=240)      # cost from the price table if not given

    async with a.tool_call("git_commit", {"message": "fix"}) as t:
        t.result(await run_git(...))

Like every handle call they publish through ``publish_threadsafe``: any thread, sync or async
code, never waiting on the event loop. Content (messages, answers, tool arguments and results)
is sent unless the hub's ``capture_content`` is False, cut per :func:`~.spans.content`.
"""

from __future__ import annotations

import math
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from .spans import (
    SPAN_ENDED,
    SPAN_KINDS,
    SPAN_STARTED,
    SPAN_UPDATED,
    SpanRef,
    content,
    current_span,
    cut_text,
    new_span_id,
    new_trace_id,
)

if TYPE_CHECKING:
    from contextvars import Token

    from .agent import AgentHandle

__all__ = ["LLMCall", "SpanContext", "ToolCall", "check_attributes", "close_span", "open_span"]

MAX_ATTRIBUTES = 64
"""Attributes kept per span (the bounded dict of DESIGN section 11)."""
MAX_ATTRIBUTE_TEXT = 1_024
"""Characters of one attribute's text value."""


def check_attributes(attributes: object) -> dict[str, Any]:
    """A copy of ``attributes`` as span attributes, or TypeError/ValueError for a mistake.

    A flat dict of at most :data:`MAX_ATTRIBUTES` entries whose keys are strings and values are
    str, int, float (finite), bool or None; texts are cut at :data:`MAX_ATTRIBUTE_TEXT`.
    """
    if attributes is None:
        return {}
    if not isinstance(attributes, dict):
        raise TypeError(f"attributes must be a dict, got {type(attributes).__name__}")
    if len(attributes) > MAX_ATTRIBUTES:
        raise ValueError(f"at most {MAX_ATTRIBUTES} attributes per span, got {len(attributes)}")
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"attribute names must be non-empty strings, got {key!r}")
        if isinstance(value, str):
            value = cut_text(value, MAX_ATTRIBUTE_TEXT)
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(f"attribute {key!r} must be finite, got {value!r}")
        elif not (value is None or isinstance(value, (bool, int))):
            raise TypeError(
                f"attribute {key!r} must be str, int, float, bool or None, "
                f"got {type(value).__name__}"
            )
        out[key[:128]] = value
    return out


def _whole(field: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{field} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{field} must be >= 0, got {value}")
    return int(value)


def _usable_id(value: str) -> bool:
    # The envelope's id rules (events.py): a job id that breaks them cannot name a trace.
    return 0 < len(value) <= 256 and value.isprintable()


def open_span(job_id: str | None) -> tuple[str, str, str | None, str | None, SpanRef | None]:
    """Ids for a span starting now in this context: ``(trace_id, span_id, parent_id, job_id,
    parent)``.

    Inside a span of the same job (or when no job is given) the new span is its child in its
    trace; a job id that differs from the enclosing span's starts a root in that job's trace; no
    job and no enclosing span starts a new trace.
    """
    parent = current_span.get()
    span_id = new_span_id()
    if parent is not None and (job_id is None or job_id == parent.job_id):
        return parent.trace_id, span_id, parent.span_id, parent.job_id, parent
    if job_id is not None:
        return (job_id if _usable_id(job_id) else new_trace_id()), span_id, None, job_id, parent
    return new_trace_id(), span_id, None, None, parent


def close_span(token: Token[SpanRef | None] | None, parent: SpanRef | None) -> None:
    """Restore the enclosing span after a span ends."""
    if token is None:
        return
    try:
        current_span.reset(token)
    except ValueError:  # exited in another context than entered (a generator, a callback)
        current_span.set(parent)


_Scope = TypeVar("_Scope", bound="SpanScope")
_Span = TypeVar("_Span", bound="SpanContext")


class SpanScope:
    """What every span of an agent's work shares (tasks, LLM and tool calls, other spans): its
    place in the trace, made on entry by :func:`open_span`; the context variable that makes it
    the enclosing span while it runs; ``with`` and ``async with``. Subclasses publish their start
    in ``_start`` (after :meth:`_open`) and their end in ``_finish`` (after :meth:`_close`).
    """

    def __init__(self, agent: AgentHandle, job_id: str | None) -> None:
        self.agent = agent
        self.job_id = job_id
        self.trace_id: str | None = None
        self.span_id: str | None = None
        self.parent_id: str | None = None
        self.started: float | None = None
        self.duration: float | None = None
        """Seconds the span took (hub clock), set when it ends."""
        self._parent: SpanRef | None = None
        self._token: Token[SpanRef | None] | None = None

    def _open(self) -> tuple[str, str, str | None, str | None]:
        """Take this span's ids in the current context: ``(trace_id, span_id, parent_id,
        job_id)``. Call :meth:`_enter` once the start is published."""
        trace_id, span_id, parent_id, job_id, parent = open_span(self.job_id)
        self.trace_id, self.span_id, self.parent_id, self.job_id = (
            trace_id,
            span_id,
            parent_id,
            job_id,
        )
        self._parent = parent
        return trace_id, span_id, parent_id, job_id

    def _enter(self) -> None:
        """Make this span the one the calling code runs in."""
        assert self.trace_id is not None and self.span_id is not None
        self._token = current_span.set(
            SpanRef(self.trace_id, self.span_id, self.agent.name, self.job_id)
        )

    def _close(self) -> None:
        """Give the enclosing span back to the calling code."""
        close_span(self._token, self._parent)
        self._token = None

    def _start(self: _Scope) -> _Scope:
        raise NotImplementedError

    def _finish(self, exc: BaseException | None) -> None:
        raise NotImplementedError

    def __enter__(self: _Scope) -> _Scope:
        return self._start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._finish(exc)  # returns None: an exception propagates

    async def __aenter__(self: _Scope) -> _Scope:
        return self._start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._finish(exc)


class SpanContext(SpanScope):
    """A span of an agent's work: ``with agent.span("parse", kind="other") as s:``.

    Entering publishes ``span.started``, leaving ``span.ended`` with ``status`` ``ok``, or
    ``error`` with the exception's type and message when one escapes (it is re-raised), or
    ``cancelled`` for ``asyncio.CancelledError`` / ``KeyboardInterrupt``. Meant to be entered
    once. ``trace_id``, ``span_id`` and ``parent_id`` are set on entry, ``duration`` (seconds,
    hub clock) on exit.
    """

    kind = "other"
    _messages = False  # input/output are chat messages (LLM calls)

    def __init__(
        self,
        agent: AgentHandle,
        name: str,
        kind: str | None = None,
        *,
        model: str | None = None,
        input: Any = None,
        attributes: dict[str, Any] | None = None,
        job_id: str | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"a span's name must be a non-empty string, got {name!r}")
        kind = kind or type(self).kind
        if kind not in SPAN_KINDS:
            raise ValueError(f"unknown span kind {kind!r}; expected one of {', '.join(SPAN_KINDS)}")
        if model is not None and not isinstance(model, str):
            raise TypeError(f"model must be a string, got {type(model).__name__}")
        if job_id is not None and not isinstance(job_id, str):
            job_id = str(job_id)
        super().__init__(agent, job_id)
        self.name = name
        self.kind = kind
        self.model = model
        self._input = input
        self._attributes = check_attributes(attributes)
        self._late: dict[str, Any] = {}
        self._output: Any = None
        self._has_output = False
        self._end_model: str | None = None
        self._prompt: int | None = None
        self._completion: int | None = None
        self._cost: float | None = None
        self._first_token_at: float | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.kind} {self.name!r} {self.span_id}>"

    @property
    def _capture(self) -> bool:
        return getattr(self.agent.hub, "capture_content", None) is not False

    # -- reporting inside the span -------------------------------------------------------------
    def set(self, **attributes: Any) -> None:
        """Add attributes (str, int, float, bool or None values), sent when the span ends."""
        checked = check_attributes(attributes)
        if len(self._attributes) + len(self._late) + len(checked) > MAX_ATTRIBUTES:
            raise ValueError(f"at most {MAX_ATTRIBUTES} attributes per span")
        self._late.update(checked)

    def output(self, value: Any) -> None:
        """The span's result (an answer, a tool's return value): content, sent at the end."""
        self._output = value
        self._has_output = True

    # -- lifecycle -----------------------------------------------------------------------------
    def _start(self: _Span) -> _Span:
        agent = self.agent
        trace_id, span_id, parent_id, job_id = self._open()
        data: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if parent_id is not None:
            data["parent_id"] = parent_id
        if job_id is not None:
            data["job_id"] = job_id
        if self.model is not None:
            data["model"] = self.model
        if self._attributes:
            data["attributes"] = self._attributes
        if self._input is not None and self._capture:
            data["input"] = content(self._input, messages=self._messages)
        event = agent._publish_span(SPAN_STARTED, data, trace_id, span_id)
        self.started = event.ts if event is not None else agent.hub.clock()
        self._enter()
        return self

    def _finish(self, exc: BaseException | None) -> None:
        self._close()
        agent = self.agent
        data: dict[str, Any] = {}
        if exc is None:
            data["status"] = "ok"
        elif not isinstance(exc, Exception):
            data["status"] = "cancelled"  # CancelledError, KeyboardInterrupt: stopped, not failed
        else:
            data["status"] = "error"
            data["error_type"] = type(exc).__name__
            data["error"] = cut_text(str(exc) or type(exc).__name__, 2_000)
        model = self._end_model or self.model
        if model is not None:
            data["model"] = model  # the ended event alone is enough to price the call
        if self._prompt is not None:
            data["prompt_tokens"] = self._prompt
            data["completion_tokens"] = self._completion or 0
        if self._cost is not None:
            data["cost_usd"] = self._cost
        if self._first_token_at is not None:
            data["first_token_at"] = self._first_token_at
        if self._late:
            data["attributes"] = self._late
        if self._has_output and self._capture:
            data["output"] = content(self._output, messages=self._messages)
        assert self.trace_id is not None and self.span_id is not None
        event = agent._publish_span(SPAN_ENDED, data, self.trace_id, self.span_id)
        end = event.ts if event is not None else agent.hub.clock()
        self.duration = max(0.0, end - (self.started if self.started is not None else end))


class LLMCall(SpanContext):
    """An LLM call: ``with agent.llm_call(model="gpt-4o", messages=msgs) as c:``.

    Report inside it: :meth:`first_token` when the first streamed token arrives (time to first
    token and tokens/s are derived from it), :meth:`output` (the answer: a string, a message or
    a list of messages), :meth:`tokens` (usage, reported once per call; the cost comes from the
    hub's price table when not given) and :meth:`response_model`.
    """

    kind = "llm"
    _messages = True

    def first_token(self) -> float:
        """Mark the first token as arrived now (once; later calls are ignored); returns when.

        Published at once (``span.updated``), so an open call shows its time to first token.
        """
        if self._first_token_at is not None:
            return self._first_token_at
        now = self.agent.hub.clock()
        self._first_token_at = now
        if self.trace_id is not None and self.span_id is not None:
            self.agent._publish_span(
                SPAN_UPDATED, {"first_token_at": now}, self.trace_id, self.span_id
            )
        return now

    def tokens(self, prompt: int = 0, completion: int = 0, cost_usd: float | None = None) -> None:
        """The call's token usage (replaces an earlier report) and, optionally, its cost in USD.

        Usage is added to the agent's card and the trace once, when the call ends.
        """
        self._prompt = _whole("prompt", prompt)
        self._completion = _whole("completion", completion)
        if cost_usd is not None:
            if isinstance(cost_usd, bool) or not isinstance(cost_usd, (int, float)):
                raise TypeError(f"cost_usd must be a number, got {type(cost_usd).__name__}")
            if not math.isfinite(cost_usd) or cost_usd < 0:
                raise ValueError(f"cost_usd must be a finite number >= 0, got {cost_usd!r}")
            self._cost = float(cost_usd)

    def response_model(self, model: str) -> None:
        """The model that answered (e.g. a dated version of the one asked for)."""
        if not isinstance(model, str) or not model:
            raise TypeError("model must be a non-empty string")
        self._end_model = model


class ToolCall(SpanContext):
    """A tool call: ``with agent.tool_call("git_commit", {"message": "fix"}) as t:``;
    :meth:`result` records what the tool returned (content)."""

    kind = "tool"

    def result(self, value: Any) -> None:
        """The tool's result (content, sent when the span ends)."""
        self.output(value)
