"""AgentRegistry: the live state of every agent, keyed by agent *name*.

Two agents of one role are two entries (DESIGN defect 8). Counters increment (defect 2): the
duration mean is a running mean over every task ever finished and p95 is over a sliding window.
Staleness is checked about once a second by :meth:`AgentRegistry.tick`, never per event.

Input is trusted to be a valid :class:`~codeur_widgets.core.events.Event` but not to have sensible
``data``: a field of the wrong type is ignored and counted in :attr:`AgentRegistry.ignored`, and
``apply`` never raises. Memory is bounded whatever arrives: at most ``max_agents`` agents,
:data:`MAX_RUNNING` open tasks and :data:`MAX_METRICS` gauges per agent, text cut at
:data:`MAX_TEXT` characters.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

from .clock import Clock, wall_clock
from .events import Event
from .events import finite_number as _number
from .events import whole_number as _count
from .stats import RunningMean, WindowQuantiles
from .store import Store

if TYPE_CHECKING:
    from .prices import Prices

__all__ = [
    "MAX_AGENTS",
    "STATUSES",
    "AgentRegistry",
    "AgentState",
    "normalize_status",
]

STATUSES = ("initializing", "idle", "active", "error", "offline")
"""The statuses an agent can have, in display order."""

MAX_AGENTS = 10_000
"""Default cap on agents: a flood of random names cannot exhaust memory."""
MAX_RUNNING = 256
"""Open tasks tracked per agent; beyond, the oldest is forgotten (and counted)."""
MAX_METRICS = 64
MAX_METRIC_NAME = 64
MAX_TEXT = 500
SNAPSHOT_BUDGET = 60_000
"""Serialised bytes of agent entries per snapshot (the store protocol allows 64 KB in all)."""
ERROR_MERGE_WINDOW = 1.0
"""Seconds within which an ``agent.error`` repeating a task failure is the same error."""
MAX_FORGOTTEN = 1_000
"""Forgotten agent names remembered (with when), so one that comes back says it was forgotten."""

NOTE_COMMANDS = ("pause", "resume", "cancel", "restart", "mark_offline", "forget")
"""Admin commands that leave a short-lived note on the agent's entry (``note``): visible feedback
on its card even while the agent goes on (a simulator's agent keeps its heartbeat)."""
MAX_MODELS = 1_000
"""Models whose usage is counted one by one (:attr:`AgentRegistry.model_usage`); beyond, usage
still counts in the totals."""
_USAGE_TOPICS = frozenset(("agent.tokens", "span.ended"))

# Other spellings seen in agent frameworks (Codeur's included), mapped to ours.
_STATUS_ALIASES = {
    "starting": "initializing",
    "init": "initializing",
    "ready": "idle",
    "waiting": "idle",
    "busy": "active",
    "working": "active",
    "running": "active",
    "failed": "error",
    "stopped": "offline",
    "disconnected": "offline",
}


def normalize_status(value: object) -> str | None:
    """Our status for ``value`` (any case, a few aliases), or None when it is not one."""
    if not isinstance(value, str):
        return None
    status = value.strip().lower()
    if status in STATUSES:
        return status
    return _STATUS_ALIASES.get(status)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


class AgentState:
    """Everything the dashboard shows about one agent (one entry of the snapshot)."""

    __slots__ = (
        "completion_tokens",
        "cost_unknown",
        "cost_usd",
        "durations",
        "error_tasks",
        "errors",
        "job_id",
        "last_error",
        "last_failure",
        "last_seen",
        "mean",
        "metrics",
        "model",
        "name",
        "note",
        "paused",
        "paused_at",
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
        # Open tasks by task id, oldest first (dicts keep insertion order): the card shows the
        # newest, and finishing one task never clears another (nested or concurrent tasks).
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
        self.cost_unknown = 0  # LLM calls with tokens whose price is unknown
        self.errors = 0
        self.last_error: dict[str, Any] | None = None
        # A failed task and the agent.error that reports it are one error. Ids of tasks whose
        # error was counted and whose other half may still come (bounded, oldest dropped); and
        # (task_id, type, message, ts) of the last failure, for an agent.error without an id,
        # matched by content instead.
        self.error_tasks: dict[str, None] = {}
        self.last_failure: tuple[str | None, str, str, float] | None = None
        self.metrics: dict[str, float] = {}
        # Admin "pause" until "resume" or "restart" (folded from admin.command events, so
        # history replays it); the card shows "paused" and freezes the task's elapsed time.
        self.paused = False
        self.paused_at: float | None = None
        # The last admin command's feedback, {"command", "ts"}; the browser shows it a while.
        self.note: dict[str, Any] | None = None

    def show_newest_task(self) -> None:
        """Point task/task_started/job_id at the most recently started open task (or none)."""
        if self.running:
            self.task, self.task_started, self.job_id = self.running[next(reversed(self.running))]
        else:
            self.task = self.task_started = self.job_id = None

    def to_dict(self) -> dict[str, Any]:
        """The agent's entry in the ``agents`` snapshot (see docs/internals.md)."""
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
            "cost_unknown": self.cost_unknown,
            "errors": self.errors,
            "last_error": dict(self.last_error) if self.last_error else None,
            "metrics": dict(self.metrics),
            "paused": self.paused,
            "paused_at": self.paused_at,
            "note": dict(self.note) if self.note else None,
        }


class AgentRegistry(Store):
    """Agents keyed by name, fed by ``agent.*`` events.

    Args:
        clock: unix-seconds clock (a ``FakeClock`` in tests).
        stale_after: seconds without any sign of life after which :meth:`tick` marks an agent
            offline and stale; its next sign of life restores the status it had.
        duration_window: task durations kept for the p95 (the mean covers every task).
        max_agents: agents kept; events naming further agents are counted in
            :attr:`refused_agents` and ignored.

    Spans (:mod:`codeur_widgets.core.spans`) feed the cards too: an LLM span's usage
    (``prompt_tokens``, ``completion_tokens``, ``cost_usd`` of its ``span.ended``; the cost from
    ``prices`` when not given, else counted in ``cost_unknown``) is added to its agent's totals,
    and a span of kind ``agent`` is one of the agent's tasks (working, done or failed).

    Counters for health: :attr:`ignored` (fields of the wrong type, events without an agent),
    :attr:`unknown_topics`, :attr:`refused_agents`, :attr:`evicted_tasks`; see :meth:`counters`.
    """

    name: ClassVar[str] = "agents"
    topics: ClassVar[tuple[str, ...]] = ("agent.*", "admin.command", "span.started", "span.ended")

    def __init__(
        self,
        clock: Clock = wall_clock,
        stale_after: float = 30.0,
        duration_window: int = 1000,
        *,
        max_agents: int = MAX_AGENTS,
        prices: Prices | None = None,
    ) -> None:
        super().__init__(clock)
        self.prices = prices
        if not stale_after > 0:
            raise ValueError("stale_after must be > 0")
        if duration_window < 1 or max_agents < 1:
            raise ValueError("duration_window and max_agents must be >= 1")
        self.stale_after = float(stale_after)
        self.duration_window = duration_window
        self.max_agents = max_agents
        self._agents: dict[str, AgentState] = {}
        self._forgotten: dict[str, float] = {}  # name -> when; oldest dropped past MAX_FORGOTTEN
        # Snapshot order (registration time, then name), rebuilt only when agents come or go.
        self._order: list[AgentState] | None = None
        self.ignored = 0
        self.unknown_topics = 0
        self.refused_agents = 0
        self.evicted_tasks = 0
        # Usage counted as the cards count it, in total and per model (the event's model, else
        # the agent's), agentless LLM spans included, and never reset: the alert rules' windowed
        # sums sample these once a tick (core/usage.py), so no other store reads usage per event.
        self.usage_cost = 0.0
        self.usage_tokens = 0
        self.model_usage: dict[str, list[float]] = {}  # model -> [cost_usd, tokens]
        self.untracked_models = 0
        self.resets = 0  # reset_counters() calls: what samplers of the agents' counters compare
        self._handlers = {
            "agent.registered": self._registered,
            "agent.heartbeat": self._alive,
            "agent.status": self._status,
            "agent.task.started": self._task_started,
            "agent.task.completed": self._task_completed,
            "agent.task.failed": self._task_failed,
            "agent.error": self._error,
            "agent.tokens": self._tokens,
            "agent.metrics": self._metrics,
            "agent.message": self._alive,
        }

    # -- reading -------------------------------------------------------------------------------
    def get(self, name: str) -> dict[str, Any] | None:
        """One agent's snapshot entry, or None if unknown."""
        state = self._agents.get(name)
        return state.to_dict() if state else None

    def names(self) -> list[str]:
        """Agent names in snapshot order."""
        return [s.name for s in self._ordered()]

    def __len__(self) -> int:
        return len(self._agents)

    def __contains__(self, name: object) -> bool:
        return name in self._agents

    def state(self, name: str) -> AgentState | None:
        """The live state of one agent (read it, do not change it), or None if unknown."""
        return self._agents.get(name)

    def states(self) -> list[AgentState]:
        """Every agent's live state, for cheap reads once a tick (the alert rules)."""
        return list(self._agents.values())

    def job_of(self, name: str) -> str | None:
        """The job of the agent's newest open task (None if none, or the agent is unknown)."""
        state = self._agents.get(name)
        return state.job_id if state is not None else None

    def stale_agents(self) -> list[str]:
        """Names of agents currently marked stale, in snapshot order."""
        return [s.name for s in self._ordered() if s.stale_since is not None]

    def counters(self) -> dict[str, int]:
        """Bookkeeping for health views: what was ignored, refused or evicted."""
        return {
            "agents": len(self._agents),
            "ignored": self.ignored,
            "unknown_topics": self.unknown_topics,
            "refused_agents": self.refused_agents,
            "evicted_tasks": self.evicted_tasks,
        }

    def _ordered(self) -> list[AgentState]:
        if self._order is None:
            self._order = sorted(self._agents.values(), key=lambda s: (s.registered_at, s.name))
        return self._order

    def snapshot(self) -> dict[str, Any]:
        """The ``agents`` snapshot of docs/internals.md.

        ``counts`` covers every agent. Entries are listed in registration order up to about
        60 KB serialised; the rest are counted in ``omitted`` (a stable prefix: a listed agent
        never disappears because others registered later).
        """
        counts = dict.fromkeys(STATUSES, 0)
        listed: list[dict[str, Any]] = []
        size = 0
        omitted = 0
        for s in self._ordered():
            counts[s.status] += 1
            if omitted:
                omitted += 1
                continue
            entry = s.to_dict()
            size += len(json.dumps(entry)) + 1
            if size > SNAPSHOT_BUDGET:
                omitted = 1
                continue
            listed.append(entry)
        return {
            "now": self.clock(),
            "stale_after": self.stale_after,
            "counts": counts,
            "agents": listed,
            "omitted": omitted,
        }

    # -- admin ---------------------------------------------------------------------------------
    def forget(self, name: str) -> bool:
        """Remove an agent; returns False if unknown. It comes back with its next event."""
        if self._agents.pop(name, None) is None:
            return False
        self._order = None
        self.touch()
        return True

    def reset_counters(self) -> None:
        """Zero task, duration, token, cost and error counters of every agent.

        Status, current tasks, heartbeats and metrics are kept: they describe the present.
        """
        for s in self._agents.values():
            s.tasks_completed = s.tasks_failed = s.errors = 0
            s.prompt_tokens = s.completion_tokens = 0
            s.cost_usd = 0.0
            s.cost_unknown = 0
            s.mean.reset()
            s.durations.reset()
            s.last_error = None
            s.error_tasks.clear()
            s.last_failure = None
        self.resets += 1
        self.touch()

    def _admin(self, event: Event) -> None:
        """Fold in the admin commands that change the registry (see ``core/admin.py``).

        They arrive as events so that history replays them: a rebuilt past state forgets the
        agents that were forgotten then, and shows the ones paused then as paused. Commands for
        one agent also leave a ``note`` on its entry (``{"command", "ts"}``), which its card shows
        for a few seconds: feedback that the command was received, even when the agent's own
        events (a heartbeat, a new task) undo its effect at once.
        """
        command = event.data.get("command") if isinstance(event.data, dict) else None
        if command == "reset_counters":
            self.reset_counters()
            return
        state = self._agents.get(event.agent) if event.agent else None
        if state is None:
            return
        if command in NOTE_COMMANDS:
            state.note = {"command": command, "ts": event.ts}
        if command == "forget":
            self.forget(state.name)
            forgotten = self._forgotten
            forgotten.pop(state.name, None)
            if len(forgotten) >= MAX_FORGOTTEN:
                del forgotten[next(iter(forgotten))]
            forgotten[state.name] = event.ts
            return
        if command == "mark_offline":
            state.status = "offline"
            state.stale_since = None
        elif command == "pause":
            if not state.paused:
                state.paused, state.paused_at = True, event.ts
        elif command in ("resume", "restart"):
            state.paused, state.paused_at = False, None
        elif command not in NOTE_COMMANDS:
            return
        self.touch()

    # -- ingest --------------------------------------------------------------------------------
    def apply(self, event: Event) -> None:
        """Fold one ``agent.*`` event in; O(1), never raises for odd data."""
        if event.topic == "admin.command":
            self._admin(event)  # not a sign of life of the agent it names
            return
        name = event.agent
        if name is None:
            if event.topic in _USAGE_TOPICS:
                self._agentless_usage(event)
            elif not event.topic.startswith("span."):  # a span need not belong to an agent
                self.ignored += 1
            return
        state = self._agents.get(name)
        if state is None:
            if event.topic == "agent.message":
                # A sender alone is not an agent: the graph's external "user" node sends
                # messages and must not become a card that goes stale.
                return
            if len(self._agents) >= self.max_agents:
                self.refused_agents += 1
                return
            state = self._agents[name] = AgentState(name, event.ts, self.duration_window)
            self._order = None
            forgotten_at = self._forgotten.pop(name, None)
            if forgotten_at is not None:
                # Back after an admin "forget": its new card says so for a moment.
                state.note = {"command": "forget", "ts": forgotten_at}
        # Any event from an agent is a sign of life.
        if event.ts > state.last_seen:
            state.last_seen = event.ts
        if state.stale_since is not None:
            state.stale_since = None
            state.status = state.status_before_stale
        handler = self._handlers.get(event.topic)
        if handler is not None:
            handler(state, event.data, event.ts)
        elif event.topic == "span.ended":
            self._span_ended(state, event)
        elif event.topic == "span.started":
            self._span_started(state, event)
        else:
            self.unknown_topics += 1
        self.touch()

    def _string(self, data: dict[str, Any], key: str) -> str | None:
        """A text field: str kept (cut), absent/None → None, anything else ignored and counted."""
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            return _cut(value)
        self.ignored += 1
        return None

    def _ident(self, data: dict[str, Any], key: str) -> str | None:
        """An id field (task_id, job_id): str or int (Codeur uses both), else ignored."""
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            return _cut(value) if value else None
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        self.ignored += 1
        return None

    def _alive(self, s: AgentState, data: dict[str, Any], ts: float) -> None:
        """Heartbeats and messages only prove life, which :meth:`apply` already recorded."""

    def _registered(self, s: AgentState, data: dict[str, Any], ts: float) -> None:
        role, model = self._string(data, "role"), self._string(data, "model")
        if role is not None:
            s.role = role
        if model is not None:
            s.model = model
        if not s.running and s.status in ("offline", "initializing"):
            s.status = "idle"

    def _status(self, s: AgentState, data: dict[str, Any], ts: float) -> None:
        status = normalize_status(data.get("status"))
        if status is None:
            self.ignored += 1
            return
        s.status = status

    def _task_started(self, s: AgentState, data: dict[str, Any], ts: float) -> None:
        task = self._string(data, "task")
        job_id = self._ident(data, "job_id")
        # Without an id the start time makes a key unique enough; a repeated id restarts.
        task_id = self._ident(data, "task_id") or f"@{ts!r}#{len(s.running)}"
        running = s.running
        running.pop(task_id, None)  # a restarted id moves to the newest position
        if len(running) >= MAX_RUNNING:
            # A remote agent that never reports completions must not grow memory without bound.
            del running[next(iter(running))]
            self.evicted_tasks += 1
        running[task_id] = (task, ts, job_id)
        s.task, s.task_started, s.job_id = task, ts, job_id
        s.status = "active"

    def _finish(
        self, s: AgentState, data: dict[str, Any], ts: float
    ) -> tuple[str | None, float | None]:
        """Close the task an event refers to; returns its id and its duration when known."""
        task_id = self._ident(data, "task_id")
        entry = s.running.pop(task_id, None) if task_id is not None else None
        if entry is None and task_id is None and s.running:
            # No id (a producer that does not track them): the newest open task finished.
            entry = s.running.pop(next(reversed(s.running)))
        s.show_newest_task()
        raw = data.get("duration")
        duration = _number(raw)
        if duration is None or duration < 0:
            if raw is not None:
                self.ignored += 1
            duration = max(0.0, ts - entry[1]) if entry is not None else None
        return task_id, duration

    def _task_completed(self, s: AgentState, data: dict[str, Any], ts: float) -> None:
        _, duration = self._finish(s, data, ts)
        s.tasks_completed += 1
        if duration is not None:
            s.mean.add(duration)
            s.durations.add(duration)
        if not s.running and s.status != "offline":
            s.status = "idle"

    def _task_failed(self, s: AgentState, data: dict[str, Any], ts: float) -> None:
        task_id, duration = self._finish(s, data, ts)
        if data.get("cancelled") is True:
            # Stopped (a cancelled job, Ctrl-C), not failed: no failure, no error status.
            if not s.running and s.status == "active":
                s.status = "idle"
            return
        s.tasks_failed += 1
        if duration is not None:
            s.mean.add(duration)
            s.durations.add(duration)
        error_type = self._string(data, "error_type") or "Error"
        message = self._string(data, "error") or "task failed"
        # A failed task is an error even when the producer sends no separate agent.error.
        s.last_failure = (task_id, error_type, message, ts)
        if task_id is None or self._first_report(s, task_id):
            s.errors += 1
        s.last_error = {"type": error_type, "message": message, "ts": ts}
        if s.status != "offline":
            s.status = "active" if s.running else "error"

    def _error(self, s: AgentState, data: dict[str, Any], ts: float) -> None:
        error_type = self._string(data, "error_type") or "Error"
        message = self._string(data, "error")
        if message is None:
            message = self._string(data, "message") or error_type
        task_id = self._ident(data, "task_id")
        if task_id is not None:
            counted = self._first_report(s, task_id)
        else:
            failure = s.last_failure
            # Without ids, the agent.error that repeats a failure just received is its echo.
            counted = not (
                failure is not None
                and (error_type, message) == failure[1:3]
                and abs(ts - failure[3]) <= ERROR_MERGE_WINDOW
            )
            if failure is not None and not counted:
                s.last_failure = None
                if failure[0] is not None:
                    s.error_tasks.pop(failure[0], None)
        if counted:
            s.errors += 1
        s.last_error = {"type": error_type, "message": message, "ts": ts}
        if not s.running and s.status != "offline":
            s.status = "error"

    @staticmethod
    def _first_report(s: AgentState, task_id: str) -> bool:
        """True for the first of a task's two error reports (failure, agent.error), in any order.

        Threads interleave events, so the two halves of different tasks may arrive as
        failed(1), failed(2), error(1), error(2): remembering only the last one is not enough.
        """
        pending = s.error_tasks
        if task_id in pending:
            del pending[task_id]
            return False
        if len(pending) >= MAX_RUNNING:
            del pending[next(iter(pending))]
        pending[task_id] = None
        return True

    def _tokens(self, s: AgentState, data: dict[str, Any], ts: float) -> None:
        prompt = _count(data.get("prompt", 0))
        completion = _count(data.get("completion", 0))
        cost = _number(data.get("cost_usd", 0.0))
        if prompt is None or completion is None or cost is None or cost < 0:
            self.ignored += 1  # all or nothing: half an update would skew the totals
            return
        s.prompt_tokens += prompt
        s.completion_tokens += completion
        s.cost_usd += cost
        self._count_usage(data.get("model") or s.model, cost, prompt + completion)

    def _count_usage(self, model: object, cost: float, tokens: int) -> None:
        """Add one call's usage to the totals and to its model's (see ``model_usage``)."""
        self.usage_cost += cost
        self.usage_tokens += tokens
        if type(model) is str and model:
            entry = self.model_usage.get(model)
            if entry is None:
                if len(self.model_usage) >= MAX_MODELS:
                    self.untracked_models += 1
                    return
                entry = self.model_usage[model] = [0.0, 0]
            entry[0] += cost
            entry[1] += tokens

    def _agentless_usage(self, event: Event) -> None:
        """Usage that names no agent (an LLM span outside any agent): no card shows it, the
        totals and its model's count it."""
        data = event.data
        if event.topic == "agent.tokens":
            self.ignored += 1  # as before: no card to add it to
            prompt = _count(data.get("prompt", 0))
            completion = _count(data.get("completion", 0))
            cost = _number(data.get("cost_usd", 0.0))
        else:
            prompt = _count(data.get("prompt_tokens", 0))
            completion = _count(data.get("completion_tokens", 0))
            cost = _number(data.get("cost_usd"))
            if prompt is None or completion is None:
                return
            if not (prompt or completion or "cost_usd" in data):
                return  # a span without usage
            if cost is None or cost < 0:
                model = data.get("model")
                cost = self.prices.cost(model, prompt, completion) if self.prices else None
                cost = cost or 0.0
        if prompt is None or completion is None or cost is None or cost < 0:
            return
        self._count_usage(data.get("model"), cost, prompt + completion)

    def _span_started(self, s: AgentState, event: Event) -> None:
        """A span of kind ``agent`` (an agent's invocation, e.g. from OpenTelemetry) is a task."""
        data = event.data
        if data.get("kind") != "agent" or event.span_id is None:
            return
        self._task_started(
            s,
            {"task": data.get("name"), "task_id": event.span_id, "job_id": data.get("job_id")},
            event.ts,
        )

    def _span_ended(self, s: AgentState, event: Event) -> None:
        """An LLM span's usage goes to the card (reported once: on the span, not also as
        ``agent.tokens``); an agent span ends its task."""
        data = event.data
        prompt = data.get("prompt_tokens", 0)
        completion = data.get("completion_tokens", 0)
        # Whole numbers >= 0 tested first, inline: this runs for every LLM span.
        if type(prompt) is not int or prompt < 0:
            prompt = _count(prompt)
        if type(completion) is not int or completion < 0:
            completion = _count(completion)
        if prompt is None or completion is None:
            self.ignored += 1
        elif prompt or completion or "cost_usd" in data:
            cost = _number(data.get("cost_usd"))
            if cost is None or cost < 0:
                model = data.get("model")
                cost = self.prices.cost(model, prompt, completion) if self.prices else None
            s.prompt_tokens += prompt
            s.completion_tokens += completion
            if cost is None:
                s.cost_unknown += 1
            else:
                s.cost_usd += cost
            self._count_usage(data.get("model") or s.model, cost or 0.0, prompt + completion)
        span_id = event.span_id
        if span_id is None:
            return
        ended: dict[str, Any] = {"task_id": span_id}
        if span_id in s.running:
            pass
        elif data.get("kind") == "agent":
            # Only its end was seen (OTLP delivers ended spans): a whole task at once.
            start = _number(data.get("start"))
            if start is not None and start <= event.ts:
                ended["duration"] = event.ts - start
        else:
            return
        status = data.get("status")
        if status == "error":
            failed = {**ended, "error_type": data.get("error_type"), "error": data.get("error")}
            self._task_failed(s, failed, event.ts)
        elif status == "cancelled":
            self._task_failed(s, {**ended, "cancelled": True}, event.ts)
        else:
            self._task_completed(s, ended, event.ts)

    def _metrics(self, s: AgentState, data: dict[str, Any], ts: float) -> None:
        metrics = s.metrics
        for key, value in data.items():
            number = _number(value)
            if (
                number is None
                or len(key) > MAX_METRIC_NAME
                or (key not in metrics and len(metrics) >= MAX_METRICS)
            ):
                self.ignored += 1
                continue
            metrics[key] = number

    # -- time ----------------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Mark agents silent for more than ``stale_after`` seconds stale and offline.

        An agent that said it is offline (``close()``) is not "stale": it left cleanly.
        """
        limit = now - self.stale_after
        changed = False
        for s in self._agents.values():
            if s.stale_since is None and s.last_seen < limit and s.status != "offline":
                s.stale_since = s.last_seen
                s.status_before_stale = s.status
                s.status = "offline"
                changed = True
        if changed:
            self.touch()
