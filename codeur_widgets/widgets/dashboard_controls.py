"""DashboardControls: the time-range selector and the admin controls of the Dashboard.

The browser sends *requests* (a range, an action); this module validates them and carries them out
through :class:`~codeur_widgets.core.admin.Admin`, so every action is an audited event. The
outcome (or what was wrong) comes back in the ``status`` trait. Confirmation of destructive
actions happens in the browser before a request is sent.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import traitlets

from ..core.admin import AGENT_COMMANDS, SAMPLE_INTERVALS, SIMULATOR_SPEEDS, Admin, AdminError
from ._base import Frame, HubWidget
from ._bundle import Bundle

if TYPE_CHECKING:
    from ..core.hub import Hub
    from ..sim.simulator import Simulator

__all__ = ["LIVE_WINDOWS", "DashboardControls", "RangeError"]

LIVE_WINDOWS = (300, 900, 3600)
"""Live windows offered, in seconds (5 min, 15 min, 1 h)."""

LIVE = {"mode": "live", "window": 300}


class RangeError(ValueError):
    """A time range that cannot be shown; the message says why."""


def normalise_range(value: object, history: Any) -> dict[str, Any]:
    """A valid ``range`` trait value from a request, or :class:`RangeError` naming the problem.

    ``{"mode": "live", "window": 300|900|3600}`` or ``{"mode": "past", "since": t0,
    "until": t1}`` (unix seconds, ``t0 < t1``; needs history).
    """
    if not isinstance(value, Mapping):
        raise RangeError(f"range must be an object, got {type(value).__name__}")
    mode = value.get("mode")
    if mode == "live":
        window = value.get("window", 300)
        if window not in LIVE_WINDOWS:
            raise RangeError(f"live window must be one of {LIVE_WINDOWS} seconds, got {window!r}")
        return {"mode": "live", "window": int(window)}
    if mode != "past":
        raise RangeError(f"range mode must be 'live' or 'past', got {mode!r}")
    if history is None:
        raise RangeError("past ranges need history: create the hub with Hub(history='runs.sqlite')")
    since, until = value.get("since"), value.get("until")
    for name, t in (("since", since), ("until", until)):
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
            raise RangeError(f"range {name} must be a time (unix seconds), got {t!r}")
    assert isinstance(since, (int, float)) and isinstance(until, (int, float))
    if not since < until:
        raise RangeError("range start must be before its end")
    return {"mode": "past", "since": float(since), "until": float(until)}


class DashboardControls(HubWidget):
    """Time range (live 5 min / 15 min / 1 h, or a past range from history) and admin controls:
    pause the view, the sampling interval, the simulator, per-agent commands, reset counters and
    a JSON snapshot download.

    ``on_range(callback)`` and ``on_pause(callback)`` let the :class:`Dashboard` apply the range
    and the pause to its panels; used alone, the widget still carries out the admin actions.
    """

    _esm = Bundle("dashboard_controls")
    _stores = ("agents",)
    _max_hz = 1.0

    range = traitlets.Dict(
        dict(LIVE),
        help="{mode: live, window} or {mode: past, since, until}; `fixed` on a rebuilt hub",
    ).tag(sync=True)
    view_paused = traitlets.Bool(False, help="panels keep their last frame").tag(sync=True)
    sample_interval = traitlets.Float(1.0, help="seconds between system samples").tag(sync=True)
    agents = traitlets.List(traitlets.Unicode(), help="agent names").tag(sync=True)
    history = traitlets.Dict(help="{enabled, first, last, degraded, error}").tag(sync=True)
    simulator = traitlets.Dict(help="{attached, running, time_scale}").tag(sync=True)
    status = traitlets.Dict(help="{text, level}: the outcome of the last request").tag(sync=True)
    options = traitlets.Dict(help="choices offered (windows, intervals, speeds, commands)").tag(
        sync=True
    )

    def __init__(
        self, hub: Hub | None = None, *, simulator: Simulator | None = None, **kwargs: Any
    ) -> None:
        self._simulator = simulator
        self._history_first: float | None = None
        self._range_callbacks: list[Callable[[dict[str, Any]], None]] = []
        self._pause_callbacks: list[Callable[[bool], None]] = []
        super().__init__(hub, **kwargs)
        self.admin = Admin(self._hub, simulator)
        self.on_msg(self._on_request)

    # -- state -------------------------------------------------------------------------------
    def _state(
        self, frame: Frame, traits: Mapping[str, Any], *, initial: bool = False
    ) -> dict[str, Any]:
        state: dict[str, Any] = {
            "agents": [a["name"] for a in frame["agents"].get("agents", [])],
            "history": self._history_state(),
            "simulator": self._simulator_state(),
        }
        if initial:
            past = getattr(self._hub, "past", None)
            if past is not None and "range" not in traits:
                # A hub rebuilt from history: its one range, not "live · last 5 min".
                state["range"] = {
                    "mode": "past",
                    "since": past["since"],
                    "until": past["until"],
                    "fixed": True,
                }
            state["sample_interval"] = self._hub.sample_interval
            state["options"] = {
                "windows": list(LIVE_WINDOWS),
                "sample_intervals": list(SAMPLE_INTERVALS),
                "speeds": list(SIMULATOR_SPEEDS),
                "commands": list(AGENT_COMMANDS),
            }
        return state

    def _history_state(self) -> dict[str, Any]:
        history = getattr(self._hub, "history", None)
        if history is None:
            return {"enabled": False}
        health = history.health()
        if self._history_first is None:
            # Asked until the file holds an event, then kept: time_range() may wait for the
            # writer to commit, which must not happen on every tick.
            span = history.time_range()
            self._history_first = span[0] if span else None
        return {
            "enabled": True,
            "first": self._history_first,
            "last": self._hub.clock(),
            "degraded": bool(health.get("degraded")),
            "error": health.get("error"),
        }

    def _simulator_state(self) -> dict[str, Any]:
        sim = self._simulator
        if sim is None:
            return {"attached": False}
        return {"attached": True, "running": sim.running, "time_scale": sim.time_scale}

    def attach_simulator(self, simulator: Simulator | None) -> None:
        """Let the controls start, stop and speed up ``simulator``."""
        self._simulator = simulator
        self.admin.simulator = simulator
        self.refresh()

    def refresh(self) -> None:
        """Send the current agents, history and simulator state now."""
        frame = {"agents": self._hub.stores["agents"].snapshot()}
        with self.hold_sync():
            for name, value in self._state(frame, {}).items():
                setattr(self, name, value)

    # -- hooks for the Dashboard --------------------------------------------------------------
    def on_range(self, callback: Callable[[dict[str, Any]], None]) -> None:
        """Call ``callback(range)`` whenever a valid range is selected."""
        self._range_callbacks.append(callback)

    def on_pause(self, callback: Callable[[bool], None]) -> None:
        """Call ``callback(paused)`` when the view is paused or resumed."""
        self._pause_callbacks.append(callback)

    # -- requests from the browser ------------------------------------------------------------
    def _on_request(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict) or not isinstance(content.get("action"), str):
            self._say("ignored a malformed request from the page", "err")
            return
        try:
            text = self.request(
                content["action"], **{k: v for k, v in content.items() if k != "action"}
            )
        except Exception as exc:  # the page's boundary: say what went wrong, keep working
            self._say(str(exc) or type(exc).__name__, "err")
        else:
            self._say(text, "ok")
        self.refresh()

    def request(self, action: str, **args: Any) -> str:
        """Carry out one request from the page; returns what happened, raises what was wrong.

        Actions: ``range`` (``range=...``), ``pause_view``, ``resume_view``, ``sample_interval``
        (``value``), ``simulator_start``, ``simulator_stop``, ``simulator_speed`` (``value``),
        ``agent_command`` (``agent``, ``command``), ``mark_offline``, ``forget`` (``agent``),
        ``reset_counters``, ``snapshot`` (the JSON is sent back to the page for download).
        """
        admin = self.admin
        if action == "range":
            chosen = normalise_range(args.get("range"), getattr(self._hub, "history", None))
            for callback in self._range_callbacks:
                callback(chosen)  # may raise (e.g. history unreadable): the range is not taken
            self.range = chosen
            admin.record("view.range", **chosen)
            return _describe_range(chosen)
        if action in ("pause_view", "resume_view"):
            paused = action == "pause_view"
            for pause_callback in self._pause_callbacks:
                pause_callback(paused)
            self.view_paused = paused
            admin.record(action)
            return "view paused: ingest goes on" if paused else "view resumed"
        if action == "sample_interval":
            admin.set_sample_interval(args.get("value"))  # type: ignore[arg-type]
            self.sample_interval = self._hub.sample_interval
            return f"sampling every {self.sample_interval:g} s"
        if action == "simulator_start":
            admin.start_simulator()
            return "simulator started"
        if action == "simulator_stop":
            admin.stop_simulator()
            return "simulator stopped"
        if action == "simulator_speed":
            admin.set_simulator_speed(args.get("value"))  # type: ignore[arg-type]
            return f"simulator speed ×{args.get('value'):g}"
        agent = args.get("agent")
        if action == "agent_command":
            admin.send(agent, str(args.get("command")))  # type: ignore[arg-type]
            return f"sent {args.get('command')} to {agent}"
        if action == "mark_offline":
            admin.mark_offline(agent)  # type: ignore[arg-type]
            return f"{agent} marked offline"
        if action == "forget":
            admin.forget(agent)  # type: ignore[arg-type]
            return f"{agent} forgotten"
        if action == "reset_counters":
            admin.reset_counters()
            return "counters reset"
        if action == "snapshot":
            body = admin.snapshot_json()
            self.send({"type": "snapshot", "json": body})
            return f"snapshot downloaded ({len(body) // 1024 + 1} KB)"
        raise AdminError(f"unknown action {action!r}")

    def _say(self, text: str, level: str) -> None:
        self.status = {"text": text, "level": level}


def _describe_range(chosen: Mapping[str, Any]) -> str:
    if chosen["mode"] == "live":
        window = chosen["window"]
        return f"live: last {window // 60} min" if window < 3600 else "live: last hour"
    return "showing a past range from history"
