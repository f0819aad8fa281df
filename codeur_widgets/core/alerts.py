"""Alerts and budgets: rules that watch the stores while nobody watches the cell, and act.

A :class:`Rule` is plain data: a metric the stores already know (:data:`METRICS`), a scope
(``"hub"``, ``"agent:coding_agent"``, ``"agent:*"`` for every agent, ``"model:gpt-4o"``,
``"job:*"``, ``"source:*"``), a threshold (``above=`` or ``below=``), a window for the windowed
metrics, a ``for_`` duration the condition must hold before the alert fires, and actions::

    hub.alerts.add(Rule("coder budget", metric="cost_usd", scope="agent:coding_agent",
                        above=5.0, window=3600, actions=["pause"]))

or a small function for anything else (``metric=lambda hub: ...``, returning a number, None, or
``{key: number}`` for several instances).

**Evaluation** happens on the hub's housekeeping tick (about once a second; :meth:`Alerts.tick`,
or :meth:`Alerts.evaluate` called directly), from cheap store reads, never per event: the cost of
the rules does not grow with the event rate. Windowed metrics read time-bucketed sums of the
running counters the stores keep anyway, differenced once per tick: usage (``core/usage.py``: the
registry's per agent and per model, the trace store's per job), error and task counts (the
registry's), failed jobs, drops and rejections.

**States**: an instance (one rule, one scope key) is *pending* while its condition holds, *fires*
once it held for ``for_`` seconds (``alert.fired``), and *resolves* (``alert.resolved``) once the
value is back past the ``clear`` level (10 % inside the threshold by default: hysteresis) for
``clear_for`` seconds (default ``for_``). ``alert.acknowledged`` marks a firing alert as seen.
This object is also the ``alerts`` store: it folds those three events into the table of firing
and recently resolved alerts, so history keeps them, a hub rebuilt from history shows what was
firing then, and a hub reopened on a history file takes over (or resolves) what was firing.

**Actions** run when an alert fires, on the hub's loop: ``"show"`` (always), ``"log"`` (a
WARNING on the ``codeur_widgets.alerts`` logger), ``"pause"``, ``"cancel"``, ``"resume"``,
``"restart"`` (an admin command to the scope's agent, or to the one named after a colon:
``"pause:coding_agent"``), ``"stop_simulator"`` — all through :class:`~.admin.Admin` with the
origin ``"alerts"``, so they are audited like a click — or any callable ``fn(alert)``.
``webhook="https://…"`` POSTs a JSON body for each firing and resolution from a worker thread
(``core/webhooks.py``).

Nothing a rule does can stop the others: a metric function that raises three times in a row, or
does not answer within ``call_timeout`` seconds (it runs in a worker thread), is disabled and
shown as broken; a failing action is counted and shown on its rule.
"""

from __future__ import annotations

import difflib
import inspect
import json
import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, cast

from .admin import AGENT_COMMANDS, Admin, SimulatorControl
from .events import Event, InvalidEvent, check_agent
from .store import Store
from .usage import MAX_WINDOW, WindowedSums
from .webhooks import WebhookSender, check_webhook, mask_webhook

if TYPE_CHECKING:
    from .hub import Hub

__all__ = [
    "ACTIONS",
    "METRICS",
    "SEVERITIES",
    "AlertError",
    "Alerts",
    "MetricSpec",
    "Rule",
    "RuleError",
    "default_rules",
    "rule_from_dict",
]

log = logging.getLogger("codeur_widgets.alerts")

SEVERITIES = ("info", "warning", "critical")
"""Alert severities, mildest first; the header is coloured by the worst unacknowledged one."""

ACTIONS = ("show", "log", *AGENT_COMMANDS, "stop_simulator")
"""Named actions; the agent commands also take a target: ``"pause:coding_agent"``."""

SCOPE_KINDS = ("hub", "agent", "model", "job", "source")

HYSTERESIS = 0.1
"""Default distance of the clear level inside the threshold, as a fraction of the threshold."""
STRIKES = 3
"""Consecutive failures of a rule's function after which the rule is disabled as broken."""
CALL_TIMEOUT = 2.0
"""Seconds a rule's function may take (in its worker thread) before the rule is broken."""
CALL_WAIT = 0.05
"""Seconds a tick waits, at most, for the functions it just started (late answers count next
tick), so a slow function never holds the hub's loop longer than this."""
MAX_INSTANCES = 1_000
"""Scope keys evaluated per wildcard rule (``agent:*`` over a flood of names stays bounded)."""
MAX_FIRING = 1_000
RESOLVED_KEPT = 50
SNAPSHOT_BUDGET = {"firing": 28_000, "resolved": 8_000, "rules": 24_000}
"""Serialised bytes of each list in the snapshot (the store protocol allows 64 KB in all); what
does not fit is counted in ``omitted`` (firing alerts are listed worst first, rules that need
attention, broken, firing or pending, first)."""
MAX_NAME = 100


class RuleError(ValueError):
    """A rule that cannot be added; the message says which field is wrong and why."""


class AlertError(ValueError):
    """An alert operation that cannot be done (e.g. acknowledging an alert that is not firing)."""


# -- metrics ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricSpec:
    """One metric a rule can watch.

    ``window`` is ``"required"`` (a sliding window in seconds, ``default_window`` when omitted),
    ``"optional"`` (None means everything since the hub started) or ``"none"``.
    """

    name: str
    scopes: tuple[str, ...]
    window: str
    default_window: float | None
    unit: str
    help: str
    boolean: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "scopes": list(self.scopes),
            "window": self.window,
            "default_window": self.default_window,
            "unit": self.unit,
            "help": self.help,
        }


METRICS: dict[str, MetricSpec] = {
    m.name: m
    for m in (
        MetricSpec(
            "cost_usd", ("hub", "agent", "model", "job"), "optional", None, "USD",
            "LLM cost over the window (None: since the start); a job's is its whole total",
        ),
        MetricSpec(
            "tokens", ("hub", "agent", "model"), "optional", None, "tokens",
            "prompt + completion tokens over the window",
        ),
        MetricSpec(
            "tokens_per_minute", ("hub", "agent", "model"), "required", 60.0, "tokens/min",
            "prompt + completion tokens per minute, averaged over the window",
        ),
        MetricSpec(
            "task_p95_s", ("agent",), "none", None, "s",
            "p95 of the agent's task durations (its last 1000 tasks)",
        ),
        MetricSpec(
            "errors", ("hub", "agent"), "required", 60.0, "errors",
            "errors reported (failed tasks and agent.error) within the window",
        ),
        MetricSpec(
            "error_rate", ("hub", "agent"), "required", 300.0, "ratio",
            "failed / finished tasks within the window (None until a task finished)",
        ),
        MetricSpec(
            "heartbeat_age", ("agent",), "none", None, "s",
            "seconds since the agent's last sign of life (None once it left cleanly)",
        ),
        MetricSpec("queue_length", ("hub",), "none", None, "jobs", "jobs waiting in the queue"),
        MetricSpec(
            "queue_wait_p95", ("hub",), "none", None, "s",
            "p95 of the queue wait of the last 1000 jobs started",
        ),
        MetricSpec(
            "jobs_failed", ("hub",), "required", 3600.0, "jobs", "jobs failed within the window"
        ),
        MetricSpec(
            "loop_lag_ms", ("hub",), "none", None, "ms",
            "how late the hub's one-second timer woke up (a busy kernel)",
        ),
        MetricSpec(
            "dropped", ("hub",), "required", 60.0, "events",
            "events dropped within the window (thread buffer full, or history queue full)",
        ),
        MetricSpec(
            "rejected", ("hub",), "required", 60.0, "events",
            "invalid input rejected within the window (from transports)",
        ),
        MetricSpec(
            "history_degraded", ("hub",), "none", None, "", "1 while history writes fail",
            boolean=True,
        ),
        MetricSpec(
            "source_disconnected", ("hub", "source"), "none", None, "sources",
            "sources not connected (per source: 1 while disconnected)",
            boolean=True,
        ),
    )
}  # fmt: skip
"""Every metric a rule can name, by name."""


# -- rules --------------------------------------------------------------------------------------

MetricFunction = Callable[..., Any]
Action = str | Callable[[dict[str, Any]], Any]


def _finite(field: str, value: object, *, allow_none: bool = True) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RuleError(f"{field} must be a finite number, got {value!r}")
    return float(value)


def _parse_scope(scope: object) -> tuple[str, str | None]:
    if not isinstance(scope, str) or not scope:
        raise RuleError(
            f"scope must be a string such as 'hub' or 'agent:coding_agent', got {scope!r}"
        )
    if scope == "hub":
        return "hub", None
    kind, sep, target = scope.partition(":")
    if not sep or kind not in SCOPE_KINDS or kind == "hub":
        raise RuleError(
            f"scope {scope!r} is not understood: use 'hub', or 'agent:<name>', 'model:<name>', "
            "'job:<id>', 'source:<name>' ('*' for each one)"
        )
    if not target or len(target) > 128 or not target.isprintable():
        raise RuleError(f"scope {scope!r} needs a printable name (at most 128 characters) or '*'")
    return kind, target


def _callable_arity(fn: Callable[..., Any], what: str) -> int:
    """0 or 1: how many positional arguments ``fn`` is called with (the hub, or the alert):
    one when it has a required positional parameter (or ``*args``), else none."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return 1  # a builtin without a signature: give it the argument
    params = [
        p
        for p in sig.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    required = [p for p in params if p.default is p.empty and p.kind != p.VAR_POSITIONAL]
    if len(required) > 1:
        raise RuleError(f"{what} must take at most one argument, {fn!r} requires {len(required)}")
    return 1 if required or any(p.kind == p.VAR_POSITIONAL for p in params) else 0


def _fn_name(fn: Callable[..., Any]) -> str:
    return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn))[:80]


@dataclass(frozen=True, eq=False)
class Rule:
    """One alert rule. Plain data, checked when created: a bad field raises :class:`RuleError`.

    Args:
        name: unique among the hub's rules; the alert's name in the panel and in events.
        metric: one of :data:`METRICS`, or a function ``fn(hub)`` (or ``fn()``) returning a
            number, None (no data), or ``{key: number}`` (one alert instance per key). Functions
            run in a worker thread once per tick: read the hub, do not change it.
        scope: ``"hub"`` (default), ``"<kind>:<name>"`` or ``"<kind>:*"`` (one instance per
            agent, model, job or source) for kinds ``agent``, ``model``, ``job``, ``source``.
        above, below: the threshold, one of the two: fires while the value is > ``above`` (or
            < ``below``). Metrics that are 0/1 default to ``above=0``.
        window: seconds of the sliding window for windowed metrics (at most one day); their
            default when omitted; None for ``cost_usd``/``tokens`` means since the start.
        for_: seconds the condition must hold before the alert fires (0: at the first tick).
        actions: names from :data:`ACTIONS` (``"pause"``, ``"pause:coding_agent"``, ``"log"``,
            ``"stop_simulator"``...) or callables ``fn(alert)``, run when the alert fires.
        webhook: an http(s) URL that gets a JSON POST for each firing and resolution.
        severity: ``"info"``, ``"warning"`` (default) or ``"critical"``.
        clear: the level the value must come back past to resolve (default: 10 % inside the
            threshold, the threshold itself when it is 0).
        clear_for: seconds the value must stay clear before the alert resolves (default
            ``for_``).
        description: free text shown with the rule.
    """

    name: str
    metric: str | MetricFunction
    scope: str = "hub"
    above: float | None = None
    below: float | None = None
    window: float | None = None
    for_: float = 0.0
    actions: Sequence[Action] = ()
    webhook: str | None = None
    severity: str = "warning"
    clear: float | None = None
    clear_for: float | None = None
    description: str = ""
    _arity: int = field(default=1, init=False, repr=False)

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        name = self.name
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
            raise RuleError(f"name must be a non-empty string of at most {MAX_NAME} characters")
        if not name.isprintable():
            raise RuleError("name must be printable text")
        put("name", name.strip())
        kind, _ = _parse_scope(self.scope)

        spec: MetricSpec | None = None
        if callable(self.metric):
            put("_arity", _callable_arity(self.metric, "a metric function"))
        elif isinstance(self.metric, str) and self.metric in METRICS:
            spec = METRICS[self.metric]
        else:
            known = ", ".join(METRICS)
            close = difflib.get_close_matches(str(self.metric), METRICS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise RuleError(f"unknown metric {self.metric!r}{hint}; known metrics: {known}")
        if spec is not None and kind not in spec.scopes:
            raise RuleError(
                f"metric {spec.name!r} has no scope {kind!r}; it takes: {', '.join(spec.scopes)}"
            )

        above = _finite("above", self.above)
        below = _finite("below", self.below)
        if above is not None and below is not None:
            raise RuleError("give a threshold with above= or below=, not both")
        if above is None and below is None:
            if spec is not None and spec.boolean:
                above = 0.0
            else:
                raise RuleError(f"rule {name!r} needs a threshold: above=... or below=...")
        put("above", above)
        put("below", below)

        window = _finite("window", self.window)
        if window is not None and not window > 0:
            raise RuleError(f"window must be > 0 seconds, got {window:g}")
        if window is not None and window > MAX_WINDOW:
            raise RuleError(f"window must be at most {MAX_WINDOW:g} seconds (a day)")
        if spec is not None:
            if spec.window == "none" and window is not None:
                raise RuleError(f"metric {spec.name!r} has no window; leave window=None")
            if spec.window == "required" and window is None:
                window = spec.default_window
        put("window", window)

        for_ = _finite("for_", self.for_, allow_none=False)
        assert for_ is not None
        if for_ < 0:
            raise RuleError(f"for_ must be >= 0 seconds, got {for_:g}")
        put("for_", for_)
        clear_for = _finite("clear_for", self.clear_for)
        if clear_for is not None and clear_for < 0:
            raise RuleError(f"clear_for must be >= 0 seconds, got {clear_for:g}")
        put("clear_for", for_ if clear_for is None else clear_for)

        clear = _finite("clear", self.clear)
        threshold = above if above is not None else below
        assert threshold is not None
        if clear is None:
            margin = abs(threshold) * HYSTERESIS
            clear = threshold - margin if above is not None else threshold + margin
        elif above is not None and clear > above:
            raise RuleError(f"clear ({clear:g}) must be <= above ({above:g})")
        elif below is not None and clear < below:
            raise RuleError(f"clear ({clear:g}) must be >= below ({below:g})")
        put("clear", clear)

        if self.severity not in SEVERITIES:
            raise RuleError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")
        if isinstance(self.actions, (str, bytes)) or callable(self.actions):
            put("actions", (self.actions,))
        actions = tuple(self.actions)
        for action in actions:
            if callable(action):
                _callable_arity(action, "an action")
                continue
            if not isinstance(action, str):
                raise RuleError(f"an action must be a name or a callable, got {action!r}")
            command, sep, who = action.partition(":")
            if command not in ACTIONS or (sep and command not in AGENT_COMMANDS):
                raise RuleError(
                    f"unknown action {action!r}; use one of {ACTIONS}, "
                    "'<command>:<agent>' for an agent command, or a callable"
                )
            if command in AGENT_COMMANDS:
                if sep:
                    try:
                        check_agent(who)
                    except InvalidEvent as exc:
                        raise RuleError(f"action {action!r}: {exc.reason}") from None
                elif kind != "agent":
                    raise RuleError(
                        f"action {action!r} needs an agent: give the rule an agent scope, "
                        f"or name one ('{command}:coding_agent')"
                    )
        put("actions", actions)
        if self.webhook is not None:
            try:
                put("webhook", check_webhook(self.webhook))
            except ValueError as exc:
                raise RuleError(str(exc)) from None
        if not isinstance(self.description, str):
            raise RuleError("description must be a string")

    def __repr__(self) -> str:
        # Written out, not the dataclass's: the webhook URL may carry credentials.
        parts = [f"{self.name!r}", f"metric={self.metric_name!r}", f"scope={self.scope!r}"]
        parts.append(f"{self.op}={self.threshold!r}")
        if self.window is not None:
            parts.append(f"window={self.window!r}")
        if self.for_:
            parts.append(f"for_={self.for_!r}")
        if self.actions:
            parts.append(f"actions={self.action_names()!r}")
        if self.webhook is not None:
            parts.append(f"webhook={mask_webhook(self.webhook)!r}")
        parts.append(f"severity={self.severity!r}")
        return f"Rule({', '.join(parts)})"

    # -- reading -------------------------------------------------------------------------------
    @property
    def op(self) -> str:
        """``"above"`` or ``"below"``."""
        return "above" if self.above is not None else "below"

    @property
    def threshold(self) -> float:
        value = self.above if self.above is not None else self.below
        assert value is not None
        return value

    @property
    def metric_name(self) -> str:
        """The metric's name, or the function's for a callable metric."""
        return self.metric if isinstance(self.metric, str) else _fn_name(self.metric)

    @property
    def scope_kind(self) -> str:
        return _parse_scope(self.scope)[0]

    @property
    def scope_target(self) -> str | None:
        return _parse_scope(self.scope)[1]

    def condition(self) -> str:
        """``"cost_usd > 5 over 1 h for 10 s"``: the rule's condition in words."""
        sign = ">" if self.above is not None else "<"
        text = f"{self.metric_name} {sign} {fmt_value(self.threshold)}"
        if self.window is not None:
            text += f" over {fmt_seconds(self.window)}"
        if self.for_:
            text += f" for {fmt_seconds(self.for_)}"
        return text

    def action_names(self) -> list[str]:
        return [a if isinstance(a, str) else _fn_name(a) for a in self.actions]


def fmt_seconds(seconds: float) -> str:
    """3600 -> "1 h", 300 -> "5 min", 90 -> "90 s"."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def fmt_value(value: float | None) -> str:
    """A short number: 5, 0.0123, 1.23e+06; "n/a" for None."""
    if value is None:
        return "n/a"
    if value == int(value) and abs(value) < 1e9:
        return str(int(value))
    return f"{value:.4g}"


def rule_from_dict(form: Mapping[str, Any]) -> Rule:
    """A threshold :class:`Rule` from the fields of the panel's form (what the page sends).

    Fields: ``name``, ``metric``, ``scope`` (default ``"hub"``), ``op`` (``"above"`` or
    ``"below"``), ``threshold``, ``window`` and ``for`` (seconds; None or "" for the default),
    ``severity``, ``action`` (one of ``show``, ``log``, ``pause``, ``cancel``,
    ``stop_simulator``). Raises :class:`RuleError` naming what is wrong.
    """
    if not isinstance(form, Mapping):
        raise RuleError("a rule must be an object of fields")

    def text(key: str, default: str = "") -> str:
        value = form.get(key, default)
        if value is None:
            return default
        if not isinstance(value, str):
            raise RuleError(f"{key} must be text, got {type(value).__name__}")
        return value.strip()

    def number(key: str) -> float | None:
        value = form.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise RuleError(f"{key} must be a number, got {value!r}") from None
        return _finite(key, value)

    op = text("op", "above")
    if op not in ("above", "below"):
        raise RuleError(f"op must be 'above' or 'below', got {op!r}")
    threshold = number("threshold")
    if threshold is None:
        raise RuleError("threshold is required")
    action = text("action", "show") or "show"
    if action not in ("show", "log", "pause", "cancel", "stop_simulator"):
        raise RuleError(f"unknown action {action!r}")
    metric = text("metric")
    if not metric:
        raise RuleError("metric is required")
    for_ = number("for")
    return Rule(
        text("name"),
        metric=metric,
        scope=text("scope", "hub") or "hub",
        above=threshold if op == "above" else None,
        below=threshold if op == "below" else None,
        window=number("window"),
        for_=0.0 if for_ is None else for_,
        severity=text("severity", "warning") or "warning",
        actions=() if action == "show" else (action,),
    )


def default_rules(stale_after: float = 30.0) -> list[Rule]:
    """The rules a hub starts with (``Hub(default_alerts=False)`` for none); see docs/alerts.md.

    Each watches something that silently ruins an unattended run and costs nothing while fine:
    an agent gone silent, a burst of errors, a kernel too busy to keep up, lost events, history
    no longer written, a source cut off. They only show (header, panel, log tail, history);
    add actions with your own rules.
    """
    return [
        Rule(
            "stale agent", metric="heartbeat_age", scope="agent:*", above=stale_after,
            description="no sign of life for longer than the hub's heartbeat timeout",
        ),
        Rule(
            "error burst", metric="errors", scope="agent:*", above=5, window=60,
            description="more than 5 errors from one agent within a minute",
        ),
        Rule(
            "loop lag", metric="loop_lag_ms", above=250, for_=5,
            description="the kernel's event loop is too busy to keep the dashboard live",
        ),
        Rule(
            "events dropped", metric="dropped", above=0, window=60, severity="critical",
            description="events were lost: a buffer overflowed",
        ),
        Rule(
            "history degraded", metric="history_degraded", for_=10, severity="critical",
            description="the history file cannot be written; events queue in memory",
        ),
        Rule(
            "source disconnected", metric="source_disconnected", scope="source:*", for_=5,
            severity="critical", description="an event source lost its connection",
        ),
    ]  # fmt: skip


# -- the engine's private state -----------------------------------------------------------------


class _Instance:
    """One scope key of one rule: pending, firing or neither."""

    __slots__ = ("clear_since", "fired_at", "firing", "key", "last_seen", "pending_since", "value")

    def __init__(self, key: str) -> None:
        self.key = key
        self.pending_since: float | None = None
        self.clear_since: float | None = None
        self.firing = False
        self.fired_at: float | None = None
        self.last_seen: float | None = None
        self.value: float | None = None


class _Call:
    """One run of a metric function in a worker thread."""

    __slots__ = ("done", "error", "result", "submitted")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self.submitted = time.monotonic()


class _CallRunner:
    """Daemon threads that run rules' metric functions. A hung call is abandoned with its
    thread, and another thread takes its place (at most :data:`MAX_ABANDONED` times); threads
    left idle for :data:`IDLE_EXIT` seconds end (a later call starts them again)."""

    MAX_ABANDONED = 16
    IDLE_EXIT = 30.0

    def __init__(self, workers: int = 2) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...], _Call] | None]
        self._jobs = queue.SimpleQueue()
        self._workers = workers
        self._alive = 0  # threads started and not ended (hung ones included)
        self._lock = threading.Lock()
        self.abandoned = 0

    def submit(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> _Call:
        call = _Call()
        with self._lock:  # with _work's exit: a job is never left without a thread
            self._jobs.put((fn, args, call))
            while self._alive < self._workers + min(self.abandoned, self.MAX_ABANDONED):
                self._alive += 1
                threading.Thread(
                    target=self._work, name="codeur_widgets.alerts", daemon=True
                ).start()
        return call

    def abandon(self) -> None:
        self.abandoned += 1

    def close(self) -> None:
        with self._lock:
            for _ in range(self._alive):
                self._jobs.put(None)

    def _work(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=self.IDLE_EXIT)
            except queue.Empty:
                with self._lock:
                    if self._jobs.empty():
                        self._alive -= 1
                        return
                continue
            if job is None:
                with self._lock:
                    self._alive -= 1
                return
            fn, args, call = job
            try:
                call.result = fn(*args)
            except BaseException as exc:  # a rule's function must never end the worker
                call.error = exc
            finally:
                call.done.set()


class _RuleState:
    """A rule and what the engine knows about it."""

    __slots__ = (
        "action_errors",
        "broken",
        "call",
        "default",
        "enabled",
        "errors",
        "instances",
        "last_action_error",
        "last_error",
        "rule",
        "scanned",
        "shown",
        "strikes",
    )

    def __init__(self, rule: Rule, default: bool) -> None:
        self.rule = rule
        self.default = default
        self.enabled = True
        self.broken: str | None = None
        self.instances: dict[str, _Instance] = {}
        self.errors = 0
        self.strikes = 0
        self.last_error: str | None = None
        self.action_errors = 0
        self.last_action_error: str | None = None
        self.call: _Call | None = None
        self.shown: tuple[Any, ...] = ()
        self.scanned = False  # a rule over every job scans them once, then follows changes

    def state(self) -> str:
        if self.broken is not None:
            return "broken"
        if not self.enabled:
            return "disabled"
        if any(i.firing for i in self.instances.values()):
            return "firing"
        if any(i.pending_since is not None for i in self.instances.values()):
            return "pending"
        return "ok"

    def describe(self, *, brief: bool = False) -> dict[str, Any]:
        """The rule and its state; ``brief`` leaves out what the panel does not show."""
        rule = self.rule
        out = {
            "name": rule.name,
            "metric": rule.metric_name,
            "scope": rule.scope,
            "op": rule.op,
            "threshold": rule.threshold,
            "clear": rule.clear,
            "window": rule.window,
            "for": rule.for_,
            "severity": rule.severity,
            "actions": rule.action_names(),
            "webhook": None if rule.webhook is None else mask_webhook(rule.webhook),
            "condition": rule.condition(),
            "description": rule.description,
            "default": self.default,
            "enabled": self.enabled,
            "state": self.state(),
            "firing": sum(1 for i in self.instances.values() if i.firing),
            "broken": self.broken,
            "errors": self.errors,
            "last_error": self.last_error,
            "action_errors": self.action_errors,
            "last_action_error": self.last_action_error,
        }
        if brief:
            for key in ("clear", "condition", "errors", "last_error"):
                del out[key]
            out["description"] = rule.description[:160]
        return out


class _Tick:
    """What one evaluation reads, each value computed at most once."""

    __slots__ = ("cache", "jobs", "now", "sources")

    def __init__(self, now: float, jobs: dict[str, tuple[float, float, float]]) -> None:
        self.now = now
        self.cache: dict[tuple[Any, ...], float | None] = {}
        self.sources: list[tuple[str, bool]] | None = None
        self.jobs = jobs
        """The costliest jobs with new usage since the last tick (``UsageWindows.changed_jobs``)."""


_SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}
_FIRED_FIELDS = (
    "rule", "scope", "rule_scope", "metric", "value", "op", "threshold", "clear", "window", "for",
    "severity", "since", "fired_at", "message", "description",
)  # fmt: skip


class Alerts(Store):
    """The hub's alert rules, their evaluation, their actions, and the ``alerts`` store.

    ``hub.alerts.add(Rule(...))``, ``remove(name)``, ``enable(name)``, ``disable(name)``,
    ``rules()``, ``active()`` (firing alerts), ``resolved()``, ``acknowledge(alert_id)``;
    ``attach_simulator(sim)`` for the ``"stop_simulator"`` action. Created by the hub (with
    :func:`default_rules` unless ``Hub(default_alerts=False)``).

    Args:
        hub: the hub whose stores the rules read and whose bus carries the alert events.
        defaults: add :func:`default_rules`.
        call_timeout: seconds a rule's function may run before the rule is broken.
    """

    name: ClassVar[str] = "alerts"
    topics: ClassVar[tuple[str, ...]] = ("alert.*",)

    def __init__(self, hub: Hub, *, defaults: bool = True, call_timeout: float = CALL_TIMEOUT):
        super().__init__(hub.clock)
        self.hub = hub
        self.admin = Admin(hub, origin="alerts")
        self.webhooks = WebhookSender()
        self.call_timeout = float(call_timeout)
        self._rules: dict[str, _RuleState] = {}
        self._runner = _CallRunner()
        # Folded from alert.* events (the store's half).
        self._firing: dict[str, dict[str, Any]] = {}
        self._resolved: deque[dict[str, Any]] = deque(maxlen=RESOLVED_KEPT)
        self.ignored = 0
        # Counters the registry, the queue and the hub keep as totals, differenced once per tick
        # into windowed sums: per agent (errors, failed tasks, finished tasks), all agents, and
        # the hub's (failed jobs, dropped events, rejected input).
        self._agent_counts: dict[str, WindowedSums] = {}
        self._all_counts = WindowedSums(3)
        self._hub_counts = WindowedSums(3)
        self._seen_agents: dict[str, tuple[int, int, int]] = {}
        self._seen_hub: tuple[int, int, int] | None = None
        self.evaluations = 0
        self.eval_last_ms = 0.0
        self.eval_max_ms = 0.0
        self._eval_total_ms = 0.0
        if defaults:
            for rule in default_rules(hub.agents.stale_after):
                self.add(rule, _default=True)

    # -- rules ---------------------------------------------------------------------------------
    def add(self, rule: Rule, *, replace: bool = False, _default: bool = False) -> Rule:
        """Add ``rule`` (checked when it was created); a name already used raises
        :class:`RuleError` unless ``replace`` (the old rule's alerts then resolve)."""
        if not isinstance(rule, Rule):
            raise RuleError(f"add() takes a Rule, got {type(rule).__name__}")
        if rule.name in self._rules:
            if not replace:
                raise RuleError(f"a rule named {rule.name!r} exists; remove it or replace=True")
            self.remove(rule.name)
        self._rules[rule.name] = _RuleState(rule, _default)
        self.touch()
        return rule

    def remove(self, name: str) -> Rule:
        """Remove the rule ``name``; its firing alerts resolve (reason ``"rule removed"``)."""
        st = self._state(name)
        self._end(st, "rule removed")
        del self._rules[name]
        self.touch()
        return st.rule

    def enable(self, name: str) -> None:
        """Evaluate ``name`` again (also clears a broken rule's state)."""
        st = self._state(name)
        st.enabled = True
        st.broken = None
        st.strikes = 0
        self.touch()

    def disable(self, name: str) -> None:
        """Stop evaluating ``name``; its firing alerts resolve (reason ``"rule disabled"``)."""
        st = self._state(name)
        st.enabled = False
        self._end(st, "rule disabled")
        self.touch()

    def rules(self) -> list[Rule]:
        """The rules, in the order they were added."""
        return [st.rule for st in self._rules.values()]

    def describe(self, name: str) -> dict[str, Any]:
        """One rule as the panel shows it: condition, state, broken reason, action errors."""
        return self._state(name).describe()

    def __contains__(self, name: object) -> bool:
        return name in self._rules

    def __len__(self) -> int:
        return len(self._rules)

    def _state(self, name: str) -> _RuleState:
        st = self._rules.get(name)
        if st is None:
            known = ", ".join(self._rules) or "none"
            raise RuleError(f"no rule named {name!r}; rules: {known}")
        return st

    def attach_simulator(self, simulator: SimulatorControl | None) -> None:
        """The simulator that the ``"stop_simulator"`` action stops."""
        self.admin.simulator = simulator

    # -- alerts --------------------------------------------------------------------------------
    def active(self) -> list[dict[str, Any]]:
        """The firing alerts, worst severity first, then newest: each ``{id, rule, scope,
        metric, value (that crossed), current, op, threshold, window, severity, since (the
        condition started), fired_at, last_seen, acked, message}``."""
        entries = [dict(e) for e in self._firing.values()]
        entries.sort(
            key=lambda e: (-_SEVERITY_RANK.get(str(e.get("severity")), 1), -_ts(e, "fired_at"))
        )
        return entries

    def resolved(self) -> list[dict[str, Any]]:
        """Recently resolved alerts, newest first (``resolved_at``, ``reason`` added)."""
        return [dict(e) for e in self._resolved]

    def acknowledge(self, alert_id: str, by: str = "user") -> Event:
        """Mark the firing alert ``alert_id`` as seen (``alert.acknowledged``); it stays listed
        until it resolves, and no longer colours the header."""
        entry = self._firing.get(alert_id) if isinstance(alert_id, str) else None
        if entry is None:
            raise AlertError(f"no firing alert {alert_id!r}")
        data = {
            "alert": alert_id,
            "rule": entry.get("rule"),
            "scope": entry.get("scope"),
            "by": str(by)[:64],
            "level": "INFO",
            "message": f"{alert_id} acknowledged by {str(by)[:64]}",
        }
        return self.hub.publish("alert.acknowledged", _agent_of(entry.get("scope")), data=data)

    # -- the store: folding alert.* events -----------------------------------------------------
    def apply(self, event: Event) -> None:
        """Fold ``alert.fired``, ``alert.resolved`` and ``alert.acknowledged`` in (O(1))."""
        data = event.data
        alert_id = data.get("alert") if isinstance(data, dict) else None
        if not isinstance(alert_id, str):
            self.ignored += 1
            return
        topic = event.topic
        if topic == "alert.fired":
            if alert_id not in self._firing and len(self._firing) >= MAX_FIRING:
                self.ignored += 1
                return
            entry: dict[str, Any] | None = {k: data.get(k) for k in _FIRED_FIELDS}
            assert entry is not None
            entry.update(
                id=alert_id,
                event_id=event.id,
                current=data.get("value"),
                last_seen=data.get("fired_at", event.ts),
                acked=False,
                acked_by=None,
            )
            self._firing[alert_id] = entry
        elif topic == "alert.resolved":
            entry = self._firing.pop(alert_id, None)
            if entry is None:
                self.ignored += 1
                return
            entry.update(
                resolved_at=data.get("resolved_at", event.ts),
                reason=data.get("reason"),
                current=data.get("value", entry.get("current")),
            )
            self._resolved.appendleft(entry)
        elif topic == "alert.acknowledged":
            entry = self._firing.get(alert_id)
            if entry is None:
                self.ignored += 1
                return
            entry.update(acked=True, acked_by=data.get("by"), acked_at=event.ts)
        else:
            self.ignored += 1
            return
        self.touch()

    def summary(self) -> dict[str, Any]:
        """``{firing, unacked, severity}``: the header's count and colour (the worst
        severity among unacknowledged alerts, None when there is none)."""
        unacked = [e for e in self._firing.values() if not e.get("acked")]
        worst = max((_SEVERITY_RANK.get(str(e.get("severity")), 1) for e in unacked), default=None)
        return {
            "firing": len(self._firing),
            "unacked": len(unacked),
            "severity": None if worst is None else SEVERITIES[worst],
        }

    def snapshot(self) -> dict[str, Any]:
        """The ``alerts`` snapshot (see docs/internals.md): firing, resolved, summary, rules."""
        firing = self.active()
        order = {"broken": 0, "firing": 1, "pending": 2}
        states = sorted(self._rules.values(), key=lambda st: order.get(st.state(), 3))
        rules = [st.describe(brief=True) for st in states]
        listed = {
            "firing": _within(firing, SNAPSHOT_BUDGET["firing"]),
            "resolved": _within(self.resolved(), SNAPSHOT_BUDGET["resolved"]),
            "rules": _within(rules, SNAPSHOT_BUDGET["rules"]),
        }
        return {
            "now": self.clock(),
            "summary": self.summary(),
            **listed,
            "omitted": {
                "firing": len(firing) - len(listed["firing"]),
                "rules": len(rules) - len(listed["rules"]),
            },
        }

    def health(self) -> dict[str, Any]:
        """For ``hub.health()``: rules, firing, broken rules, evaluation time, webhooks."""
        states = list(self._rules.values())
        n = self.evaluations
        return {
            "rules": len(states),
            "enabled": sum(1 for st in states if st.enabled and st.broken is None),
            "firing": len(self._firing),
            "broken": [st.rule.name for st in states if st.broken is not None],
            "action_errors": sum(st.action_errors for st in states),
            "evaluations": n,
            "eval_ms": {
                "last": round(self.eval_last_ms, 3),
                "max": round(self.eval_max_ms, 3),
                "mean": round(self._eval_total_ms / n, 3) if n else 0.0,
            },
            "calls_abandoned": self._runner.abandoned,
            "webhooks": self.webhooks.health(),
        }

    # -- evaluation ----------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """The hub's housekeeping tick: evaluate while the hub runs (a hub rebuilt from history
        is never started, so it shows the past's alerts without making new ones)."""
        if self.hub.running:
            self.evaluate(now)

    def baseline(self) -> None:
        """Take the registry's, queue's and hub's counters as they are now as the zero of the
        windowed error, task and drop counts (the hub calls it once its history is restored,
        so a previous run's errors do not count as new)."""
        self._sample(self.clock(), record=False)
        self.hub.usage.baseline()

    def evaluate(self, now: float | None = None) -> int:
        """Evaluate every enabled rule once at ``now`` (default: the clock); returns how many
        alerts are firing. The hub calls it about once a second; tests call it directly."""
        t0 = time.perf_counter()
        if now is None:
            now = self.clock()
        self._sample(now, record=True)
        self.hub.usage.sample(now)
        self._adopt(now)
        tick = _Tick(now, self.hub.usage.changed_jobs())
        calls: list[_RuleState] = []
        for st in list(self._rules.values()):
            if not st.enabled or st.broken is not None:
                continue
            rule = st.rule
            if callable(rule.metric):
                if self._call(st, rule.metric):
                    calls.append(st)
                continue
            try:
                values = self._values(st, tick)
            except Exception as exc:
                self._failed(st, exc, now)
                continue
            st.strikes = 0
            self._step(st, values, now)
        if calls:
            deadline = time.monotonic() + CALL_WAIT
            for st in calls:
                if st.call is not None:
                    st.call.done.wait(max(0.0, deadline - time.monotonic()))
        for st in list(self._rules.values()):
            if st.call is not None and st.call.done.is_set():
                self._answered(st, now)
        for st in self._rules.values():
            shown = (st.state(), st.broken, st.action_errors)
            if shown != st.shown:
                st.shown = shown
                self.touch()
        elapsed = (time.perf_counter() - t0) * 1000.0
        self.evaluations += 1
        self.eval_last_ms = elapsed
        self.eval_max_ms = max(self.eval_max_ms, elapsed)
        self._eval_total_ms += elapsed
        return len(self._firing)

    def _sample(self, now: float, *, record: bool) -> None:
        """Difference the stores' running totals into the windowed counts (O(agents))."""
        seen = self._seen_agents
        totals = [0, 0, 0]
        states = self.hub.agents.states()
        for s in states:
            current = (s.errors, s.tasks_failed, s.tasks_completed + s.tasks_failed)
            before = seen.get(s.name)
            if before == current:
                continue
            seen[s.name] = current
            if before is None:
                before = (0, 0, 0) if record else current
            delta = tuple(c - b if c >= b else c for c, b in zip(current, before, strict=True))
            if record and any(delta):
                series = self._agent_counts.get(s.name)
                if series is None:
                    series = self._agent_counts[s.name] = WindowedSums(3)
                series.add(now, delta)
                for n in range(3):
                    totals[n] += delta[n]
        if len(seen) > 2 * len(states) + 100:  # forgotten agents: keep the table bounded
            alive = {s.name for s in states}
            for name in [n for n in seen if n not in alive]:
                del seen[name]
                self._agent_counts.pop(name, None)
        if any(totals):
            self._all_counts.add(now, (totals[0], totals[1], totals[2]))
        hub = self.hub
        history = hub.history
        dropped = hub._inbox.dropped + (history.dropped if history is not None else 0)
        current_hub = (hub.queue.failed, dropped, hub.bus.rejected)
        before_hub = self._seen_hub
        self._seen_hub = current_hub
        if record and before_hub is not None and before_hub != current_hub:
            delta = tuple(
                c - b if c >= b else c for c, b in zip(current_hub, before_hub, strict=True)
            )
            if any(delta):
                self._hub_counts.add(now, delta)

    def _adopt(self, now: float) -> None:
        """Firing alerts the engine did not fire (restored from history, or replayed): taken
        over by their rule, or resolved when no enabled rule of that name exists."""
        for alert_id, entry in list(self._firing.items()):
            st = self._rules.get(entry.get("rule") or "")
            key = entry.get("scope")
            if not isinstance(key, str):
                continue
            if st is None or not st.enabled or st.broken is not None:
                self._publish_resolved(entry, alert_id, key, now, "no such rule in this kernel")
                continue
            inst = st.instances.get(key)
            if inst is None or not inst.firing:
                inst = st.instances.setdefault(key, _Instance(key))
                inst.firing = True
                inst.fired_at = _ts(entry, "fired_at") or now
                inst.pending_since = None

    # -- values of built-in metrics ------------------------------------------------------------
    def _values(self, st: _RuleState, tick: _Tick) -> dict[str, float | None]:
        rule = st.rule
        kind, target = _parse_scope(rule.scope)
        metric = rule.metric
        assert isinstance(metric, str)
        if target != "*":
            return {rule.scope: self._value(metric, kind, target, rule.window, tick)}
        if kind == "job":
            return self._job_values(st, tick)
        if kind == "agent":
            names: Iterable[str] = self.hub.agents.names()
        elif kind == "model":
            names = list(self.hub.usage.models)
        else:
            names = [name for name, _ in self._sources(tick)]
        out: dict[str, float | None] = {}
        for name in names:
            if len(out) >= MAX_INSTANCES:
                break
            out[f"{kind}:{name}"] = self._value(metric, kind, name, rule.window, tick)
        return out

    def _job_values(self, st: _RuleState, tick: _Tick) -> dict[str, float | None]:
        """Cost of every job with usage within the window, read without scanning the jobs:
        a job's cost only grows, so only jobs with new usage can newly cross (the costliest of
        them, :meth:`UsageWindows.changed_jobs`), and the jobs already pending or firing are
        followed until they resolve. A new rule scans the remembered jobs once."""
        usage = self.hub.usage
        window = st.rule.window
        since = -math.inf if window is None else tick.now - window
        if not st.scanned:
            st.scanned = True
            recent = usage.recent_jobs(tick.now, window)
            costliest = sorted(recent.items(), key=lambda kv: -kv[1][0])[:MAX_INSTANCES]
            found = {job: sums[0] for job, sums in costliest}
        else:
            found = {job: info[0] for job, info in tick.jobs.items() if info[2] > since}
        for key in st.instances:
            info = usage.job(key[len("job:") :])
            if info is not None and info[2] > since:
                found[key[len("job:") :]] = info[0]
        return {f"job:{job}": cost for job, cost in found.items()}

    def _value(
        self, metric: str, kind: str, key: str | None, window: float | None, tick: _Tick
    ) -> float | None:
        memo = (metric, kind, key, window)
        if memo in tick.cache:
            return tick.cache[memo]
        value = self._compute(metric, kind, key, window, tick)
        tick.cache[memo] = value
        return value

    def _compute(
        self, metric: str, kind: str, key: str | None, window: float | None, tick: _Tick
    ) -> float | None:
        hub, now = self.hub, tick.now
        if metric in ("cost_usd", "tokens", "tokens_per_minute"):
            sums = hub.usage.sums(kind, key, now, window)
            if sums is None:
                # A known agent that has not spent yet has spent 0; unknown keys have no data.
                return 0.0 if kind == "agent" and key in hub.agents else None
            if metric == "cost_usd":
                return sums[0]
            if metric == "tokens":
                return sums[1]
            assert window is not None
            return sums[1] * 60.0 / window
        if metric in ("errors", "error_rate"):
            if kind == "agent":
                if key not in hub.agents:
                    return None
                series = self._agent_counts.get(key or "")
                errors, failed, finished = series.sums(now, window) if series else (0.0, 0.0, 0.0)
            else:
                errors, failed, finished = self._all_counts.sums(now, window)
            if metric == "errors":
                return round(errors, 9)
            return failed / finished if finished > 0 else None
        if metric == "task_p95_s":
            state = hub.agents.state(key or "")
            return None if state is None else state.durations.quantile(0.95)
        if metric == "heartbeat_age":
            state = hub.agents.state(key or "")
            if state is None or (state.status == "offline" and state.stale_since is None):
                return None  # unknown, or it left cleanly (close(), mark offline)
            return max(0.0, now - state.last_seen)
        if metric == "queue_length":
            return float(hub.queue.queued)
        if metric == "queue_wait_p95":
            return hub.queue.wait.quantile(0.95)
        if metric in ("jobs_failed", "dropped", "rejected"):
            pos = ("jobs_failed", "dropped", "rejected").index(metric)
            return round(self._hub_counts.sums(now, window)[pos], 9)
        if metric == "loop_lag_ms":
            return hub._loop_lag * 1000.0
        if metric == "history_degraded":
            return None if hub.history is None else float(hub.history.degraded)
        if metric == "source_disconnected":
            sources = self._sources(tick)
            if kind == "source":
                return next((0.0 if up else 1.0 for name, up in sources if name == key), None)
            return float(sum(1 for _, up in sources if not up))
        raise RuleError(f"unknown metric {metric!r}")

    def _sources(self, tick: _Tick) -> list[tuple[str, bool]]:
        if tick.sources is None:
            found = []
            for i, source in enumerate(self.hub.sources):
                health = source.health()
                name = health.get("stream") or health.get("url") or f"source{i}"
                found.append((str(name), bool(health.get("connected", True))))
            tick.sources = found
        return tick.sources

    # -- metric functions (worker threads) -----------------------------------------------------
    def _call(self, st: _RuleState, fn: MetricFunction) -> bool:
        """Start ``fn`` unless a call is still running; a call past ``call_timeout`` breaks the
        rule. True when a call was started now."""
        call = st.call
        if call is not None:
            if not call.done.is_set() and time.monotonic() - call.submitted > self.call_timeout:
                st.call = None
                self._runner.abandon()
                self._break(st, f"no answer within {self.call_timeout:g} s (hung?)")
            return False
        args = (self.hub,) if st.rule._arity else ()
        st.call = self._runner.submit(fn, args)
        return True

    def _answered(self, st: _RuleState, now: float) -> None:
        call, st.call = st.call, None
        assert call is not None
        if st.broken is not None or not st.enabled:
            return
        if call.error is not None:
            self._failed(st, call.error, now)
            return
        try:
            values = self._normalise(st.rule, call.result)
        except RuleError as exc:
            self._failed(st, exc, now)
            return
        st.strikes = 0
        self._step(st, values, now)

    @staticmethod
    def _normalise(rule: Rule, result: Any) -> dict[str, float | None]:
        def number(value: Any) -> float | None:
            if value is None:
                return None
            if isinstance(value, (bool, int, float)) and math.isfinite(float(value)):
                return float(value)
            raise RuleError(f"returned {value!r}: expected a number, None or a dict of them")

        if isinstance(result, Mapping):
            kind, target = _parse_scope(rule.scope)
            prefix = f"{kind}:" if target == "*" else f"{rule.scope}/"
            out: dict[str, float | None] = {}
            for key, value in list(result.items())[:MAX_INSTANCES]:
                out[prefix + str(key)[:128]] = number(value)
            return out
        return {rule.scope: number(result)}

    def _failed(self, st: _RuleState, exc: BaseException, now: float) -> None:
        st.errors += 1
        st.strikes += 1
        st.last_error = f"{type(exc).__name__}: {exc}"[:300]
        if st.strikes >= STRIKES:
            self._break(st, f"raised {STRIKES} times in a row; last: {st.last_error}")

    def _break(self, st: _RuleState, reason: str) -> None:
        st.broken = reason
        log.warning("alert rule %r disabled as broken: %s", st.rule.name, reason)
        self._end(st, "rule broken")
        self.touch()

    # -- the state machine ---------------------------------------------------------------------
    def _step(self, st: _RuleState, values: Mapping[str, float | None], now: float) -> None:
        rule = st.rule
        above = rule.above is not None
        threshold, clear = rule.threshold, rule.clear
        assert clear is not None
        instances = st.instances
        for key in [k for k in instances if k not in values]:
            inst = instances[key]
            if inst.firing:
                self._advance(st, inst, None, now, above, threshold, clear)
            else:
                del instances[key]  # its agent, job or source is gone
        for key, value in values.items():
            found = instances.get(key)
            if found is None:
                if value is None or not (value > threshold if above else value < threshold):
                    continue  # nothing to remember about a key that is fine
                found = instances[key] = _Instance(key)
            self._advance(st, found, value, now, above, threshold, clear)

    def _advance(
        self,
        st: _RuleState,
        inst: _Instance,
        value: float | None,
        now: float,
        above: bool,
        threshold: float,
        clear: float,
    ) -> None:
        rule = st.rule
        breach = value is not None and (value > threshold if above else value < threshold)
        inst.value = value
        if not inst.firing:
            if not breach:
                st.instances.pop(inst.key, None)  # pending ends: the condition must hold throughout
                return
            if inst.pending_since is None:
                inst.pending_since = now
            if now - inst.pending_since >= rule.for_:
                self._fire(st, inst, value, now)
            return
        if breach:
            inst.last_seen = now
        cleared = value is None or (value <= clear if above else value >= clear)
        if cleared:
            if inst.clear_since is None:
                inst.clear_since = now
            assert rule.clear_for is not None
            if now - inst.clear_since >= rule.clear_for:
                self._resolve(st, inst, now, "cleared")
                return
        else:
            inst.clear_since = None
        entry = self._firing.get(_alert_id(rule, inst.key))
        if entry is not None:
            shown = None if value is None else round(value, 6)
            if entry.get("current") != shown or (breach and entry.get("last_seen") != now):
                entry["current"] = shown
                if breach:
                    entry["last_seen"] = now
                self.touch()

    def _fire(self, st: _RuleState, inst: _Instance, value: float | None, now: float) -> None:
        rule = st.rule
        alert_id = _alert_id(rule, inst.key)
        inst.firing = True
        inst.fired_at = inst.last_seen = now
        inst.clear_since = None
        since = inst.pending_since if inst.pending_since is not None else now
        inst.pending_since = None
        level = {"info": "INFO", "warning": "WARNING", "critical": "ERROR"}[rule.severity]
        message = f"{rule.name}: {_condition_now(rule, value)} ({inst.key})"
        data = {
            "alert": alert_id,
            "rule": rule.name,
            "scope": inst.key,
            "rule_scope": rule.scope,
            "metric": rule.metric_name,
            "value": None if value is None else round(value, 6),
            "op": rule.op,
            "threshold": rule.threshold,
            "clear": rule.clear,
            "window": rule.window,
            "for": rule.for_,
            "severity": rule.severity,
            "since": since,
            "fired_at": now,
            "message": message,
            "description": rule.description,
            "level": level,
        }
        agent = _agent_of(inst.key)
        event = self.hub.publish("alert.fired", agent, data=data, ts=now)
        alert = self._firing.get(alert_id) or {"id": alert_id, **data}
        for action in rule.actions:
            self._act(st, action, alert, agent)
        if rule.webhook is not None:
            self.webhooks.submit(rule.webhook, {"event": "alert.fired", "id": event.id, **data})

    def _act(
        self, st: _RuleState, action: Action, alert: dict[str, Any], agent: str | None
    ) -> None:
        try:
            if callable(action):
                started = time.monotonic()
                if _callable_arity(action, "an action"):
                    action(dict(alert))
                else:
                    cast("Callable[[], Any]", action)()
                took = time.monotonic() - started
                if took > 1.0:
                    log.warning(
                        "alert action %s took %.1f s on the hub's loop", _fn_name(action), took
                    )
            elif action == "show":
                pass
            elif action == "log":
                log.warning("alert fired: %s", alert.get("message"))
            elif action == "stop_simulator":
                self.admin.stop_simulator()
            else:
                command, _, target = action.partition(":")
                who = target or agent
                if who is None:
                    raise AlertError(f"{alert.get('scope')} names no agent to {command}")
                self.admin.send(who, command, alert=alert["id"])
        except Exception as exc:
            st.action_errors += 1
            name = action if isinstance(action, str) else _fn_name(action)
            st.last_action_error = f"{name}: {type(exc).__name__}: {exc}"[:300]
            log.warning("alert action %s of rule %r failed: %r", name, st.rule.name, exc)
            self.touch()

    def _resolve(self, st: _RuleState, inst: _Instance, now: float, reason: str) -> None:
        inst.firing = False
        inst.pending_since = inst.clear_since = None
        alert_id = _alert_id(st.rule, inst.key)
        entry = self._firing.get(alert_id) or {"rule": st.rule.name, "severity": st.rule.severity}
        data = self._publish_resolved(entry, alert_id, inst.key, now, reason, inst.value)
        st.instances.pop(inst.key, None)
        if st.rule.webhook is not None and data is not None:
            self.webhooks.submit(st.rule.webhook, {"event": "alert.resolved", **data})

    def _publish_resolved(
        self,
        entry: Mapping[str, Any],
        alert_id: str,
        key: str,
        now: float,
        reason: str,
        value: float | None = None,
    ) -> dict[str, Any] | None:
        fired_at = _ts(entry, "fired_at") or now
        data = {
            "alert": alert_id,
            "rule": entry.get("rule"),
            "scope": key,
            "severity": entry.get("severity"),
            "value": None if value is None else round(value, 6),
            "fired_at": fired_at,
            "resolved_at": now,
            "duration": max(0.0, now - fired_at),
            "reason": reason,
            "level": "INFO",
            "message": f"{alert_id} resolved after {fmt_seconds(round(max(0.0, now - fired_at)))}"
            f" ({reason})",
        }
        if alert_id not in self._firing:
            return None
        self.hub.publish("alert.resolved", _agent_of(key), data=data, ts=now)
        return data

    def _end(self, st: _RuleState, reason: str) -> None:
        now = self.clock()
        for inst in list(st.instances.values()):
            if inst.firing:
                self._resolve(st, inst, now, reason)
        st.instances.clear()
        st.call = None

    def close(self) -> None:
        """Stop the worker threads (webhooks still queued are dropped)."""
        self.webhooks.close()
        self._runner.close()


def _within(items: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """The first ``items`` whose JSON fits in ``budget`` bytes."""
    out: list[dict[str, Any]] = []
    size = 0
    for item in items:
        size += len(json.dumps(item, default=str)) + 1
        if size > budget:
            break
        out.append(item)
    return out


def _alert_id(rule: Rule, key: str) -> str:
    return f"{rule.name}@{key}"


def _agent_of(scope: object) -> str | None:
    """The agent an alert's scope key names (``agent:<name>``), when it is a valid agent name."""
    if not isinstance(scope, str) or not scope.startswith("agent:"):
        return None
    name = scope[len("agent:") :]
    try:
        return check_agent(name)
    except InvalidEvent:
        return None


def _ts(entry: Mapping[str, Any], key: str) -> float:
    value = entry.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _condition_now(rule: Rule, value: float | None) -> str:
    sign = ">" if rule.above is not None else "<"
    text = f"{rule.metric_name} {fmt_value(value)} {sign} {fmt_value(rule.threshold)}"
    if rule.window is not None:
        text += f" over {fmt_seconds(rule.window)}"
    return text
