"""AgentRegistry: the live state of every agent, keyed by agent *name*.

Two agents of one role are two entries (DESIGN defect 8). Counters increment (defect 2), the
duration mean is a running mean over every task and p95 is over a sliding window. Staleness is
checked once a second by :meth:`tick`, not per event.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .clock import Clock, wall_clock
from .events import Event
from .stats import RunningMean, WindowQuantiles
from .store import Store

__all__ = ["STATUSES", "AgentRegistry", "AgentState"]

STATUSES = ("initializing", "idle", "active", "error", "offline")
MAX_AGENTS = 10_000
MAX_METRICS = 64
MAX_TEXT = 500


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    f = float(value)
    return f if f == f and abs(f) != float("inf") else None


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


class AgentState:
    """Everything the dashboard shows about one agent."""

    __slots__ = (
        "completion_tokens",
        "cost_usd",
        "durations",
        "errors",
        "job_id",
        "last_error",
        "last_seen",
        "mean",
        "metrics",
        "model",
        "name",
        "prompt_tokens",
        "registered_at",
        "role",
        "running",
        "stale_since",
        "status",
        "status_before_stale",
        "task",
        "task_started",
        "tasks_completed",
        "tasks_failed",
    )

    def __init__(self, name: str, now: float, window: int) -> None:
        self.name = name
        self.role: str | None = None
        self.model: str | None = None
        self.status = "idle"
        self.status_before_stale = "idle"
        self.registered_at = now
        self.last_seen = now
        self.stale_since: float | None = None
        # Running tasks by task id, in start order; the card shows the newest.
        self.running: dict[str, tuple[str | None, float, str | None]] = {}
        self.task: str | None = None
        self.task_started: float | None = None
        self.job_id: str | None = None
        self.tasks_completed = 0
        self.tasks_failed = 0
        self.mean = RunningMean()
        self.durations = WindowQuantiles(window)
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cost_usd = 0.0
        self.errors = 0
        self.last_error: dict[str, Any] | None = None
        self.metrics: dict[str, float] = {}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "model": self.model,
            "status": self.status,
            "task": self.task,
            "task_started": self.task_started,
            "job_id": self.job_id,
            "registered_at": self.registered_at,
            "last_heartbeat": self.last_seen,
            "stale": self.stale_since is not None,
            "stale_since": self.stale_since,
            "tasks_completed": self.tasks_completed,
            "tasks_failed": self.tasks_failed,
            "duration_mean": self.mean.mean if self.mean.count else None,
            "duration_p95": self.durations.quantile(0.95),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": round(self.cost_usd, 6),
            "errors": self.errors,
            "last_error": self.last_error,
            "metrics": dict(self.metrics),
        }


class AgentRegistry(Store):
    """Agents keyed by name, fed by ``agent.*`` events."""

    name = "agents"
    topics: ClassVar[tuple[str, ...]] = ("agent.*",)

    def __init__(
        self, clock: Clock = wall_clock, stale_after: float = 30.0, duration_window: int = 1000
    ) -> None:
        super().__init__(clock)
        if stale_after <= 0:
            raise ValueError("stale_after must be > 0")
        self.stale_after = stale_after
        self.duration_window = duration_window
        self._agents: dict[str, AgentState] = {}
        self.ignored = 0
        self.unknown_topics = 0
        self.refused_agents = 0
        self._handlers = {
            "agent.registered": self._registered,
            "agent.heartbeat": self._heartbeat,
            "agent.status": self._status,
            "agent.task.started": self._task_started,
            "agent.task.completed": self._task_completed,
            "agent.task.failed": self._task_failed,
            "agent.error": self._error,
            "agent.tokens": self._tokens,
            "agent.metrics": self._metrics,
            "agent.message": self._heartbeat,
        }

    # -- reading -------------------------------------------------------------------------------
    def get(self, name: str) -> dict[str, Any] | None:
        state = self._agents.get(name)
        return state.to_dict() if state else None

    def names(self) -> list[str]:
        return list(self._agents)

    def stale_agents(self) -> list[str]:
        return [s.name for s in self._agents.values() if s.stale_since is not None]

    def snapshot(self) -> dict[str, Any]:
        agents = sorted(self._agents.values(), key=lambda s: (s.registered_at, s.name))
        counts = dict.fromkeys(STATUSES, 0)
        for s in agents:
            counts[s.status] = counts.get(s.status, 0) + 1
        return {
            "now": self.clock(),
            "stale_after": self.stale_after,
            "counts": counts,
            "agents": [s.to_dict() for s in agents],
        }

    # -- admin ---------------------------------------------------------------------------------
    def forget(self, name: str) -> bool:
        """Remove an agent (it comes back if it sends another event)."""
        if self._agents.pop(name, None) is None:
            return False
        self.touch()
        return True

    def reset_counters(self) -> None:
        """Zero task, token, cost and error counters of every agent (state is kept)."""
        for s in self._agents.values():
            s.tasks_completed = s.tasks_failed = s.errors = 0
            s.prompt_tokens = s.completion_tokens = 0
            s.cost_usd = 0.0
            s.mean.reset()
            s.durations.reset()
            s.last_error = None
        self.touch()

    # -- ingest --------------------------------------------------------------------------------
    def apply(self, event: Event) -> None:
        name = event.agent
        if name is None:
            self.ignored += 1
            return
        state = self._agents.get(name)
        if state is None:
            if event.topic == "agent.message":
                return  # a sender is not an agent by itself (the graph's external "user" node)
            if len(self._agents) >= MAX_AGENTS:
                self.refused_agents += 1
                return
            state = self._agents[name] = AgentState(name, event.ts, self.duration_window)
        # Any event from an agent is a sign of life.
        if event.ts > state.last_seen:
            state.last_seen = event.ts
        if state.stale_since is not None:
            state.stale_since = None
            state.status = state.status_before_stale
        handler = self._handlers.get(event.topic)
        if handler is None:
            self.unknown_topics += 1
        else:
            handler(state, event)
        self.touch()

    def _registered(self, s: AgentState, e: Event) -> None:
        role, model = e.data.get("role"), e.data.get("model")
        if role is not None:
            s.role = _text(role)
        if model is not None:
            s.model = _text(model)
        if not s.running and s.status in ("offline", "initializing"):
            s.status = "idle"

    def _heartbeat(self, s: AgentState, e: Event) -> None:
        return  # the sign of life was recorded by apply

    def _status(self, s: AgentState, e: Event) -> None:
        status = e.data.get("status")
        if status in STATUSES:
            s.status = str(status)
        else:
            self.ignored += 1

    def _task_started(self, s: AgentState, e: Event) -> None:
        task_id = _text(e.data.get("task_id")) or e.id
        task = _text(e.data.get("task"))
        job_id = _text(e.data.get("job_id"))
        s.running[task_id] = (task, e.ts, job_id)
        s.task, s.task_started, s.job_id = task, e.ts, job_id
        s.status = "active"

    def _finish(self, s: AgentState, e: Event) -> float | None:
        """Close the task an event refers to; returns its duration when known."""
        task_id = e.data.get("task_id")
        entry = s.running.pop(task_id, None) if isinstance(task_id, str) else None
        if entry is None and task_id is None and s.running:
            # No id: the newest running task finished.
            entry = s.running.pop(next(reversed(s.running)))
        duration = _number(e.data.get("duration"))
        if duration is None and entry is not None:
            duration = max(0.0, e.ts - entry[1])
        if s.running:
            newest = s.running[next(reversed(s.running))]
            s.task, s.task_started, s.job_id = newest
        else:
            s.task = s.task_started = s.job_id = None
        return duration if duration is not None and duration >= 0 else None

    def _task_completed(self, s: AgentState, e: Event) -> None:
        duration = self._finish(s, e)
        s.tasks_completed += 1
        if duration is not None:
            s.mean.add(duration)
            s.durations.add(duration)
        if not s.running and s.status in ("active", "error"):
            s.status = "idle"

    def _task_failed(self, s: AgentState, e: Event) -> None:
        duration = self._finish(s, e)
        if e.data.get("cancelled") is True:
            # Cancelled (the job was stopped), not failed: no failure, no error status.
            if not s.running and s.status == "active":
                s.status = "idle"
            return
        s.tasks_failed += 1
        if duration is not None:
            s.mean.add(duration)
            s.durations.add(duration)
        s.status = "active" if s.running else "error"
        error = e.data.get("error")
        if error is not None:
            s.last_error = {
                "type": _text(e.data.get("error_type")) or "Error",
                "message": _text(error),
                "ts": e.ts,
            }

    def _error(self, s: AgentState, e: Event) -> None:
        s.errors += 1
        s.last_error = {
            "type": _text(e.data.get("error_type")) or "Error",
            "message": _text(e.data.get("error", e.data.get("message"))),
            "ts": e.ts,
        }
        if not s.running:
            s.status = "error"

    def _tokens(self, s: AgentState, e: Event) -> None:
        prompt = e.data.get("prompt", 0)
        completion = e.data.get("completion", 0)
        cost = _number(e.data.get("cost_usd", 0.0))
        if not (isinstance(prompt, int) and isinstance(completion, int)) or cost is None:
            self.ignored += 1
            return
        if isinstance(prompt, bool) or isinstance(completion, bool) or min(prompt, completion) < 0:
            self.ignored += 1
            return
        s.prompt_tokens += prompt
        s.completion_tokens += completion
        s.cost_usd += cost

    def _metrics(self, s: AgentState, e: Event) -> None:
        for key, value in e.data.items():
            number = _number(value)
            if number is None or (key not in s.metrics and len(s.metrics) >= MAX_METRICS):
                self.ignored += 1
                continue
            s.metrics[key] = number

    # -- time ----------------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Mark agents silent for ``stale_after`` seconds offline (once a second)."""
        changed = False
        for s in self._agents.values():
            if s.stale_since is None and now - s.last_seen > self.stale_after:
                s.stale_since = s.last_seen
                s.status_before_stale = s.status
                s.status = "offline"
                changed = True
        if changed:
            self.touch()
