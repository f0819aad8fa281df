"""AgentHandle: how agent code reports to a Hub (tasks, tokens, flows, heartbeats, errors).

Every call publishes through ``hub.publish_threadsafe``, so a handle works from the loop's thread,
from worker threads, and from sync or async code alike, and never waits on the event loop. A handle
creates no asyncio task: heartbeats come from the hub's housekeeping loop calling :meth:`_beat`.

Mistakes in what the caller passes (a status that does not exist, ``tokens(prompt="many")``)
raise here, in the caller, instead of being silently ignored by the registry.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from .calls import LLMCall, SpanContext, SpanScope, ToolCall
from .registry import STATUSES, normalize_status
from .spans import current_span

if TYPE_CHECKING:
    from .bus import Subscription
    from .events import Event
    from .hub import Hub

__all__ = ["AgentHandle", "TaskContext"]

F = TypeVar("F", bound=Callable[..., Any])

# next() on itertools.count is atomic under the GIL: unique task ids across threads, no lock.
_task_ids = itertools.count(1)

# A heartbeat is skipped when the agent published something this recently (in units of its
# interval): any event is a sign of life, and the hub's timer fires a little early or late.
_BEAT_SLACK = 0.9


def _whole(field: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{field} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{field} must be >= 0, got {value}")
    return int(value)


def _check_tokens(prompt: object, completion: object, cost_usd: object) -> dict[str, Any]:
    """The ``agent.tokens`` data, or TypeError/ValueError for a caller's mistake."""
    if isinstance(cost_usd, bool) or not isinstance(cost_usd, (int, float)):
        raise TypeError(f"cost_usd must be a number, got {type(cost_usd).__name__}")
    if not math.isfinite(cost_usd) or cost_usd < 0:
        raise ValueError(f"cost_usd must be a finite number >= 0, got {cost_usd!r}")
    return {
        "prompt": _whole("prompt", prompt),
        "completion": _whole("completion", completion),
        "cost_usd": float(cost_usd),
    }


def _log_data(message: str, level: str, data: dict[str, Any]) -> dict[str, Any]:
    payload = {k: v for k, v in data.items() if v is not None}
    return {**payload, "level": level, "message": str(message)}


class TaskContext(SpanScope):
    """One task of an agent: ``with agent.task("...") as t:`` or ``async with``.

    A task is a span of kind ``task`` (see :mod:`codeur_widgets.core.spans`): its events carry
    the span's ``trace_id`` and ``span_id`` in the envelope and its parent's id in
    ``data["parent_id"]``. A task nests under the span the code runs in (another task, an LLM
    or tool call) and inherits its job; ``job_id`` is the trace id when given; a task with
    neither starts its own trace.

    Entering publishes ``agent.task.started`` (with ``task``, ``task_id``, ``job_id``); leaving
    publishes ``agent.task.completed`` with the duration, or, when an exception escapes,
    ``agent.task.failed`` and ``agent.error`` with the exception's type and message (the
    exception is re-raised). ``BaseException``s that are not errors (``asyncio.CancelledError``,
    ``KeyboardInterrupt``) end the task as ``agent.task.failed`` with ``cancelled: true``, which
    the registry does not count as a failure.

    Each context has its own ``task_id``, so nested and concurrent tasks of one agent are tracked
    separately. A context is meant to be entered once.
    """

    def __init__(
        self,
        agent: AgentHandle,
        description: str,
        job_id: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(agent, job_id)
        self.description = description
        self.data = data or {}
        self.task_id = f"{agent.name}#{next(_task_ids)}"

    def __repr__(self) -> str:
        return f"<TaskContext {self.task_id} {self.description!r}>"

    # -- reporting inside the task -------------------------------------------------------------
    def tokens(self, prompt: int = 0, completion: int = 0, cost_usd: float = 0.0) -> None:
        """Add LLM token usage (and cost in USD) to the agent's totals and this task's trace.

        Report usage here *or* through ``llm_call(...).tokens(...)``, never both for one call.
        """
        self.agent._publish(
            "agent.tokens",
            _check_tokens(prompt, completion, cost_usd),
            trace_id=self.trace_id,
            span_id=self.span_id,
        )

    def metric(self, name: str, value: float) -> None:
        """Set a custom numeric gauge on the agent's card."""
        self.agent.metric(name, value)

    def log(self, message: str, level: str = "INFO") -> None:
        """Write a log line under the agent's name, tagged with the task and job."""
        self.agent._publish(
            "log",
            _log_data(message, level, {"job_id": self.job_id, "task_id": self.task_id}),
            trace_id=self.trace_id,
            span_id=self.span_id,
        )

    # -- lifecycle -----------------------------------------------------------------------------
    def _start(self) -> TaskContext:
        trace_id, span_id, parent_id, job_id = self._open()
        self.started = self.agent.hub.clock()
        data = {**self.data, "task": self.description, "task_id": self.task_id}
        if job_id is not None:
            data["job_id"] = job_id
        if parent_id is not None:
            data["parent_id"] = parent_id
        self.agent._publish(
            "agent.task.started", data, ts=self.started, trace_id=trace_id, span_id=span_id
        )
        self._enter()
        return self

    def _finish(self, exc: BaseException | None) -> None:
        self._close()
        now = self.agent.hub.clock()
        self.duration = duration = max(0.0, now - (self.started if self.started else now))
        common: dict[str, Any] = {"task_id": self.task_id, "duration": duration}
        if self.job_id is not None:
            common["job_id"] = self.job_id
        ids = {"trace_id": self.trace_id, "span_id": self.span_id}
        publish = self.agent._publish
        if exc is None:
            publish("agent.task.completed", common, ts=now, **ids)
            return
        if not isinstance(exc, Exception):
            # CancelledError, KeyboardInterrupt, SystemExit: the task was stopped, not failed.
            publish("agent.task.failed", {**common, "cancelled": True}, ts=now, **ids)
            return
        error = {"error_type": type(exc).__name__, "error": str(exc) or type(exc).__name__}
        publish("agent.task.failed", {**common, **error}, ts=now, **ids)
        # The task_id lets the registry count this error once, together with the failure.
        publish(
            "agent.error",
            {**error, "task": self.description, "task_id": self.task_id},
            ts=now,
            **ids,
        )


class AgentHandle:
    """A registered agent. Create with ``hub.agent(name, model=..., role=...)``.

    Creating a handle publishes ``agent.registered``. While the handle is open the hub's
    housekeeping loop calls :meth:`_beat`, which sends ``agent.heartbeat`` unless the agent
    published something within the last ``heartbeat_interval`` seconds (any event is a sign of
    life), so a live agent never goes stale. :meth:`close` marks it offline and stops the beats.
    The hub holds handles weakly: a handle nobody references stops beating and goes stale.

    Args:
        hub: the hub to publish to.
        name: the agent's unique name (the registry's key; printable, at most 128 characters).
        model: the LLM model it uses, shown on its card.
        role: its role (orchestrator, planner, executor, service, ...).
        heartbeat_interval: seconds between heartbeats; ``None`` follows the hub's
            ``heartbeat_interval``. Heartbeats are driven by the hub's timer, so an interval shorter
            than the hub's behaves like the hub's.
    """

    def __init__(
        self,
        hub: Hub,
        name: str,
        *,
        model: str | None = None,
        role: str | None = None,
        heartbeat_interval: float | None = None,
    ) -> None:
        if heartbeat_interval is not None and not heartbeat_interval > 0:
            raise ValueError("heartbeat_interval must be > 0 (or None to follow the hub)")
        self.hub = hub
        self.name = name
        self.model = model
        self.role = role
        self.heartbeat_interval = heartbeat_interval
        self.closed = False
        self._last_sent = float("-inf")
        self._command_handlers: list[Callable[[str, dict[str, Any]], Any]] = []
        self._subscription: Subscription | None = None
        data: dict[str, Any] = {}
        if model is not None:
            data["model"] = model
        if role is not None:
            data["role"] = role
        self._publish("agent.registered", data)  # validates the name: raises InvalidEvent
        hub._register_handle(self)

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        return f"<AgentHandle {self.name!r} role={self.role!r} model={self.model!r}{state}>"

    def _publish(
        self,
        topic: str,
        data: dict[str, Any] | None = None,
        ts: float | None = None,
        trace_id: str | None = None,
        span_id: str | None = None,
    ) -> Event | None:
        event = self.hub.publish_threadsafe(
            topic, self.name, data=data, ts=ts, trace_id=trace_id, span_id=span_id
        )
        self._last_sent = time.monotonic()  # a float store: safe enough across threads
        return event

    def _publish_span(
        self, topic: str, data: dict[str, Any], trace_id: str, span_id: str
    ) -> Event | None:
        """Publish a span event (stamped now); its Event (``ts`` = the moment)."""
        return self._publish(topic, data, trace_id=trace_id, span_id=span_id)

    def _here(self) -> tuple[str | None, str | None]:
        """The (trace_id, span_id) of the span the calling code runs in, if any."""
        ref = current_span.get()
        return (None, None) if ref is None else (ref.trace_id, ref.span_id)

    # -- tasks ---------------------------------------------------------------------------------
    def task(self, description: str, job_id: str | None = None, **data: Any) -> TaskContext:
        """A task, usable as ``with`` and ``async with``; extra keywords go into the start event."""
        if not isinstance(description, str):
            raise TypeError(f"description must be a string, got {type(description).__name__}")
        return TaskContext(self, description, job_id, data)

    @overload
    def instrument(self, func: F) -> F: ...

    @overload
    def instrument(self, func: str | None = None) -> Callable[[F], F]: ...

    def instrument(self, func: F | str | None = None) -> F | Callable[[F], F]:
        """Decorate a sync or async function so that each call runs as a task of this agent.

        ``@agent.instrument`` names the task after the function's qualified name;
        ``@agent.instrument("Plan request")`` gives it a description. Exceptions are recorded and
        re-raised, as with :meth:`task`. Generator functions are refused: a task would end when
        the generator is created, not when it is consumed.
        """

        def decorate(fn: F, description: str | None) -> F:
            if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
                raise TypeError(
                    f"cannot instrument generator function {fn.__qualname__}: use "
                    "`with agent.task(...)` around the code that consumes it"
                )
            label = description or getattr(fn, "__qualname__", None) or repr(fn)
            if inspect.iscoroutinefunction(fn):

                @functools.wraps(fn)
                async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                    async with self.task(label):
                        return await fn(*args, **kwargs)

                return async_wrapper  # type: ignore[return-value]

            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                with self.task(label):
                    return fn(*args, **kwargs)

            return wrapper  # type: ignore[return-value]

        if callable(func):
            return decorate(func, None)
        if func is not None and not isinstance(func, str):
            raise TypeError("instrument takes a function or a description string")
        return lambda fn: decorate(fn, func)

    # -- spans inside a task -------------------------------------------------------------------
    def llm_call(
        self,
        model: str | None = None,
        messages: Any = None,
        *,
        name: str | None = None,
        attributes: dict[str, Any] | None = None,
        job_id: str | None = None,
    ) -> LLMCall:
        """An LLM call span (``with`` / ``async with``), named after the model unless ``name``.

        ``messages`` (a prompt string or chat messages) is kept as the span's input when the
        hub captures content. See :class:`~codeur_widgets.core.calls.LLMCall`.
        """
        label = name or (f"llm {model}" if model else "llm call")
        return LLMCall(
            self, label, model=model, input=messages, attributes=attributes, job_id=job_id
        )

    def tool_call(
        self,
        name: str,
        arguments: Any = None,
        *,
        attributes: dict[str, Any] | None = None,
        job_id: str | None = None,
    ) -> ToolCall:
        """A tool call span; ``arguments`` are its input content, ``t.result(value)`` its output.
        See :class:`~codeur_widgets.core.calls.ToolCall`."""
        return ToolCall(self, name, input=arguments, attributes=attributes, job_id=job_id)

    def retrieval(
        self,
        query: Any = None,
        *,
        name: str = "retrieval",
        attributes: dict[str, Any] | None = None,
        job_id: str | None = None,
    ) -> SpanContext:
        """A retrieval span (a RAG look-up); ``query`` is its input, ``s.output(docs)`` the
        documents found."""
        return SpanContext(
            self, name, "retrieval", input=query, attributes=attributes, job_id=job_id
        )

    def span(
        self,
        name: str,
        kind: str = "other",
        *,
        model: str | None = None,
        input: Any = None,
        attributes: dict[str, Any] | None = None,
        job_id: str | None = None,
    ) -> SpanContext:
        """Any other span of this agent's work (``kind`` one of ``core.spans.SPAN_KINDS``)."""
        return SpanContext(
            self, name, kind, model=model, input=input, attributes=attributes, job_id=job_id
        )

    # -- reporting -----------------------------------------------------------------------------
    def tokens(self, prompt: int = 0, completion: int = 0, cost_usd: float = 0.0) -> None:
        """Add token usage and cost (USD) to this agent's totals (and to the trace of the span
        the calling code runs in, if any)."""
        trace_id, span_id = self._here()
        self._publish(
            "agent.tokens",
            _check_tokens(prompt, completion, cost_usd),
            trace_id=trace_id,
            span_id=span_id,
        )

    def send(self, target: str, kind: str = "message", **data: Any) -> None:
        """Record a message from this agent to ``target``: one flow on the graph (and, inside
        a job, a link from the span it is sent from to the target's span in the trace)."""
        if not isinstance(target, str) or not target:
            raise TypeError("target must be a non-empty agent name")
        trace_id, span_id = self._here()
        self._publish(
            "agent.message",
            {**data, "target": target, "kind": kind},
            trace_id=trace_id,
            span_id=span_id,
        )

    def status(self, status: str) -> None:
        """Set the status: initializing, idle, active, error or offline."""
        normal = normalize_status(status)
        if normal is None:
            raise ValueError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
        self._publish("agent.status", {"status": normal})

    def heartbeat(self) -> None:
        """Send a sign of life now."""
        self._publish("agent.heartbeat")

    def metric(self, name: str, value: float) -> None:
        """Set a custom numeric gauge shown on the agent's card (the last value is kept)."""
        if not isinstance(name, str) or not name:
            raise TypeError("metric name must be a non-empty string")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"metric value must be a number, got {type(value).__name__}")
        self._publish("agent.metrics", {name: value})

    def error(self, error: BaseException | str) -> None:
        """Report an error that did not end a task (an exception or a message)."""
        if isinstance(error, BaseException):
            data = {"error_type": type(error).__name__, "error": str(error) or type(error).__name__}
        else:
            data = {"error_type": "Error", "error": str(error)}
        self._publish("agent.error", data)

    def log(self, message: str, level: str = "INFO", **data: Any) -> None:
        """Write a line to the log tail under this agent's name (extra keywords are kept).

        Inside a span the line carries its trace (and job), so the log tail can open it.
        """
        ref = current_span.get()
        if ref is None:
            self._publish("log", _log_data(message, level, data))
            return
        if ref.job_id is not None and data.get("job_id") is None:
            data["job_id"] = ref.job_id
        self._publish(
            "log", _log_data(message, level, data), trace_id=ref.trace_id, span_id=ref.span_id
        )

    # -- commands ------------------------------------------------------------------------------
    def on_command(self, handler: Callable[[str, dict[str, Any]], Any]) -> Callable[..., Any]:
        """Register ``handler(command, args)`` for ``admin.command`` events aimed at this agent.

        Handlers run on the hub's loop thread, synchronously: keep them short.
        """
        if self._subscription is None:
            self._subscription = self.hub.bus.subscribe("admin.command", self._on_admin_command)
        self._command_handlers.append(handler)
        return handler

    def _on_admin_command(self, event: Any) -> None:
        if event.agent != self.name:
            return
        command = event.data.get("command")
        args = event.data.get("args") or {}
        if isinstance(command, str) and isinstance(args, dict):
            for handler in list(self._command_handlers):
                handler(command, args)

    # -- lifecycle -----------------------------------------------------------------------------
    def _beat(self) -> None:
        """Called by the hub's housekeeping loop: heartbeat unless recently heard from."""
        if self.closed:
            return
        interval = self.heartbeat_interval
        if interval is None:
            interval = float(getattr(self.hub, "heartbeat_interval", 5.0))
        if time.monotonic() - self._last_sent >= interval * _BEAT_SLACK:
            self.heartbeat()

    def close(self) -> None:
        """Mark the agent offline and stop its heartbeats and commands (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self._publish("agent.status", {"status": "offline"})
        self.hub._unregister_handle(self)
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
