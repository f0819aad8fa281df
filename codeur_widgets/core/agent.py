"""AgentHandle: how agent code reports to a Hub (tasks, tokens, flows, heartbeats, errors).

Every call publishes through ``hub.publish_threadsafe``, so a handle works from the loop's thread,
from worker threads, and from sync or async code alike, and never waits on the event loop.
"""

from __future__ import annotations

import functools
import inspect
import itertools
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, overload

if TYPE_CHECKING:
    from .hub import Hub

__all__ = ["AgentHandle", "TaskContext"]

F = TypeVar("F", bound=Callable[..., Any])

_task_ids = itertools.count(1)


class TaskContext:
    """One task of an agent: ``with agent.task("...") as t:`` or ``async with``.

    Entering publishes ``agent.task.started``; leaving publishes ``agent.task.completed`` with the
    duration, or, when an exception escapes, ``agent.task.failed`` and ``agent.error`` with the
    exception's type and message (the exception is re-raised).
    """

    def __init__(
        self, agent: AgentHandle, description: str, job_id: str | None, data: dict
    ) -> None:
        self.agent = agent
        self.description = description
        self.job_id = job_id
        self.data = data
        self.task_id = f"{agent.name}#{next(_task_ids)}"
        self.started: float | None = None

    # -- reporting inside the task ----------------------------------------------------------
    def tokens(self, prompt: int = 0, completion: int = 0, cost_usd: float = 0.0) -> None:
        """Add LLM token usage (and cost) to the agent's totals."""
        self.agent.tokens(prompt=prompt, completion=completion, cost_usd=cost_usd)

    def metric(self, name: str, value: float) -> None:
        self.agent.metric(name, value)

    def log(self, message: str, level: str = "INFO") -> None:
        self.agent.log(message, level=level, job_id=self.job_id)

    # -- lifecycle ---------------------------------------------------------------------------
    def _start(self) -> TaskContext:
        hub = self.agent.hub
        self.started = hub.clock()
        data = {**self.data, "task": self.description, "task_id": self.task_id}
        if self.job_id is not None:
            data["job_id"] = self.job_id
        hub.publish_threadsafe("agent.task.started", self.agent.name, data=data, ts=self.started)
        return self

    def _finish(self, exc: BaseException | None) -> None:
        hub = self.agent.hub
        now = hub.clock()
        duration = max(0.0, now - (self.started or now))
        common = {"task_id": self.task_id, "duration": duration}
        if self.job_id is not None:
            common["job_id"] = self.job_id
        if exc is None:
            hub.publish_threadsafe("agent.task.completed", self.agent.name, data=common, ts=now)
            return
        if not isinstance(exc, Exception):
            # CancelledError, KeyboardInterrupt: the task was stopped, it did not fail.
            hub.publish_threadsafe(
                "agent.task.failed", self.agent.name, data={**common, "cancelled": True}, ts=now
            )
            return
        error = {"error_type": type(exc).__name__, "error": str(exc) or type(exc).__name__}
        hub.publish_threadsafe(
            "agent.task.failed", self.agent.name, data={**common, **error}, ts=now
        )
        hub.publish_threadsafe(
            "agent.error", self.agent.name, data={**error, "task": self.description}, ts=now
        )

    def __enter__(self) -> TaskContext:
        return self._start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._finish(exc)

    async def __aenter__(self) -> TaskContext:
        return self._start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._finish(exc)


class AgentHandle:
    """A registered agent. Create with ``hub.agent(name, model=..., role=...)``.

    The hub sends a heartbeat for every open handle every ``hub.heartbeat_interval`` seconds, so a
    live agent never goes stale; :meth:`close` marks it offline and stops the heartbeats.
    """

    def __init__(
        self,
        hub: Hub,
        name: str,
        *,
        model: str | None = None,
        role: str | None = None,
    ) -> None:
        self.hub = hub
        self.name = name
        self.model = model
        self.role = role
        self.closed = False
        self._command_handlers: list[Callable[[str, dict[str, Any]], Any]] = []
        data: dict[str, Any] = {}
        if model is not None:
            data["model"] = model
        if role is not None:
            data["role"] = role
        hub.publish_threadsafe("agent.registered", name, data=data)
        hub._register_handle(self)

    def __repr__(self) -> str:
        return f"<AgentHandle {self.name!r} role={self.role!r} model={self.model!r}>"

    # -- tasks ------------------------------------------------------------------------------------
    def task(self, description: str, job_id: str | None = None, **data: Any) -> TaskContext:
        """A task context manager, usable with ``with`` and ``async with``."""
        return TaskContext(self, description, job_id, data)

    @overload
    def instrument(self, func: F) -> F: ...

    @overload
    def instrument(self, func: str | None = None) -> Callable[[F], F]: ...

    def instrument(self, func: F | str | None = None) -> F | Callable[[F], F]:
        """Decorate a sync or async function so each call runs as a task of this agent.

        ``@agent.instrument`` names the task after the function; ``@agent.instrument("Plan")``
        gives it a description.
        """

        def decorate(fn: F, description: str | None) -> F:
            label = description or fn.__qualname__
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
        return lambda fn: decorate(fn, func)

    # -- reporting --------------------------------------------------------------------------------
    def tokens(self, prompt: int = 0, completion: int = 0, cost_usd: float = 0.0) -> None:
        """Add token usage and cost to this agent's totals."""
        self.hub.publish_threadsafe(
            "agent.tokens",
            self.name,
            data={"prompt": prompt, "completion": completion, "cost_usd": cost_usd},
        )

    def send(self, target: str, kind: str = "message", **data: Any) -> None:
        """Record a message from this agent to ``target`` (a flow on the graph)."""
        self.hub.publish_threadsafe(
            "agent.message", self.name, data={**data, "target": target, "kind": kind}
        )

    def status(self, status: str) -> None:
        """Set the status: initializing, idle, active, error or offline."""
        self.hub.publish_threadsafe("agent.status", self.name, data={"status": status})

    def heartbeat(self) -> None:
        self.hub.publish_threadsafe("agent.heartbeat", self.name)

    def metric(self, name: str, value: float) -> None:
        """Set a custom numeric gauge shown on the agent's card."""
        self.hub.publish_threadsafe("agent.metrics", self.name, data={name: value})

    def error(self, error: BaseException | str) -> None:
        """Report an error that did not end a task."""
        if isinstance(error, BaseException):
            data = {"error_type": type(error).__name__, "error": str(error)}
        else:
            data = {"error_type": "Error", "error": str(error)}
        self.hub.publish_threadsafe("agent.error", self.name, data=data)

    def log(self, message: str, level: str = "INFO", **data: Any) -> None:
        """Write a line to the log tail under this agent's name."""
        payload = {k: v for k, v in data.items() if v is not None}
        self.hub.publish_threadsafe(
            "log", self.name, data={**payload, "level": level, "message": message}
        )

    # -- commands ---------------------------------------------------------------------------------
    def on_command(self, handler: Callable[[str, dict[str, Any]], Any]) -> Callable[..., Any]:
        """Register ``handler(command, args)`` for ``admin.command`` events aimed at this agent."""
        if not self._command_handlers:
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

    # -- lifecycle --------------------------------------------------------------------------------
    def _beat(self) -> None:
        if not self.closed:
            self.heartbeat()

    def close(self) -> None:
        """Mark the agent offline and stop its heartbeats (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self.status("offline")
        self.hub._unregister_handle(self)
        sub = getattr(self, "_subscription", None)
        if sub is not None:
            sub.close()
