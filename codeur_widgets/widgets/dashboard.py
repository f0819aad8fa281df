"""Dashboard: the health header and the panels in one responsive grid."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import ipywidgets
import traitlets

from ._base import Frame, HubWidget, bring_to_life, close_models, resolve_hub
from ._bundle import Bundle
from .agent_cards import AgentCards
from .agent_graph import AgentGraphView
from .alerts_panel import AlertsPanel
from .dashboard_controls import DashboardControls
from .log_tail import LogTail
from .queue_stats import QueueStats
from .system_metrics import SystemMetrics
from .trace_view import TraceView

if TYPE_CHECKING:
    from ..core.hub import Hub
    from ..sim.simulator import Simulator

__all__ = ["Dashboard", "DashboardHeader"]

HEALTH_KEYS = (
    "running",
    "events_per_second",
    "accepted",
    "rejected",
    "dropped",
    "buffered",
    "loop_lag_ms",
    "stale_agents",
    "handler_errors",
    "render_errors",
    "views",
    "render_interrupts",
    "task_restarts",
    "history",
    "collectors",
    "sources",
    "past",
)
"""The fields of ``hub.health()`` the header shows (the rest can be large or nested)."""


W = TypeVar("W")


def _keep(made: list[Any], widget: W) -> W:
    made.append(widget)
    return widget


class DashboardHeader(HubWidget):
    """Title, agent counts, the count of firing alerts (coloured by the worst unacknowledged
    severity) and the hub's live health line (events/s, dropped, rejected, loop lag, stale
    agents), refreshed at most once a second.

    It says *live*, *past …* for a hub rebuilt from history, or *stopped* with how to start the
    hub. ``cards``: the model id of an :class:`AgentCards` (a Dashboard sets its own): the counts
    are then read in the browser from that widget's frames, the very snapshot its cards render,
    so the header and the cards always agree; without it the header sends its own counts.
    """

    _esm = Bundle("dashboard")
    # hub.health() is not a store: follow the stores that move while the hub is live.
    _stores = ("agents", "queue", "flows", "system", "alerts")
    _max_hz = 1.0

    title = traitlets.Unicode("codeur-widgets").tag(sync=True)
    health = traitlets.Dict(help="a subset of hub.health()").tag(sync=True)
    counts = traitlets.Dict(help="agents per status (when no `cards` model is linked)").tag(
        sync=True
    )
    cards = traitlets.Unicode(
        "", help="model id of the AgentCards whose frames give the counts ('' for none)"
    ).tag(sync=True)
    alerts = traitlets.Dict(help="{firing, unacked, severity}: the alerts summary").tag(sync=True)

    def _state(
        self, frame: Frame, traits: Mapping[str, Any], *, initial: bool = False
    ) -> dict[str, Any]:
        health = self._hub.health()
        state: dict[str, Any] = {
            "health": {k: _brief(k, health.get(k)) for k in HEALTH_KEYS},
            "alerts": frame["alerts"].get("summary") or {},
        }
        if not self._trait(traits, "cards"):
            state["counts"] = frame["agents"].get("counts") or {}
        return state


def _brief(key: str, value: Any) -> Any:
    """The header's part of a health field: only what its line shows, so it stays small."""
    if key == "history" and isinstance(value, Mapping):
        return {k: value.get(k) for k in ("degraded", "error", "written", "dropped")}
    if key == "collectors" and isinstance(value, Mapping):
        # Only the collectors in trouble: "timed out (12 s)", the error type, or GPU degraded.
        return {name: problem for name, h in value.items() if (problem := _collector_problem(h))}
    if key == "sources" and isinstance(value, list):
        return [
            {k: s.get(k) for k in ("url", "stream", "state", "connected", "last_error")}
            for s in value
            if isinstance(s, Mapping)
        ]
    return value


def _collector_problem(health: Any) -> str | None:
    if not isinstance(health, Mapping):
        return None
    if health.get("stuck_s") is not None:
        return f"timed out ({float(health['stuck_s']):.0f} s)"
    if health.get("degraded"):
        return str(health.get("reason") or "degraded")
    if not health.get("ok", True):
        return str(health.get("last_error") or "failing")[:120]
    return None


class Dashboard(ipywidgets.GridBox):
    """The whole dashboard: a health header, agent cards, the agent graph, queue stats, alerts,
    system metrics, the log tail and the traces, in a CSS grid that wraps to one column on narrow
    outputs.

    ``Dashboard(hub)``; ``Dashboard()`` uses :func:`codeur_widgets.default_hub`;
    ``Dashboard.demo()`` also starts a simulator. Selecting a node in the graph highlights its card
    and the other way round, and shows that agent's traces; clicking a log line written inside a
    job opens its trace. ``close()`` detaches every panel from the hub.

    Creating or displaying a Dashboard on a hub that is not started starts the hub on the
    running asyncio loop (a notebook cell has one); where there is none (a plain script) the
    header says how to start it. A hub rebuilt from history (``hub.history.rebuild(...)``) is
    shown as that past range and never started.
    """

    def __init__(self, hub: Hub | None = None, *, title: str = "codeur-widgets", **kwargs: Any):
        self._hub = resolve_hub(hub)
        self._owned: list[Any] = []  # things close() must stop: a demo's simulator and hub
        self.simulator: Simulator | None = None
        made: list[Any] = []
        bring_to_life(self._hub)
        try:
            self.cards = _keep(made, AgentCards(self._hub))
            # One truth for the agent counts: the header reads them from the cards' frames.
            self.header = _keep(
                made, DashboardHeader(self._hub, title=title, cards=self.cards.model_id)
            )
            self.controls = _keep(made, DashboardControls(self._hub))
            self.graph = _keep(made, AgentGraphView(self._hub))
            self.queue = _keep(made, QueueStats(self._hub))
            self.system = _keep(made, SystemMetrics(self._hub))
            self.logs = _keep(made, LogTail(self._hub))
            self.traces = _keep(made, TraceView(self._hub))
            self.alerts = _keep(made, AlertsPanel(self._hub))
        except BaseException:
            for panel in made:  # e.g. one bundle missing: detach the panels already watching
                panel.close()
            raise
        for wide in (
            self.header,
            self.controls,
            self.cards,
            self.alerts,
            self.system,
            self.logs,
            self.traces,
        ):
            # Full width. Not `grid_column`: ipywidgets never applies it (ipywidgets#2334).
            wide.layout.grid_area = "auto / 1 / auto / -1"
        for panel in (self.graph, self.queue):
            panel.layout.min_width = "0"
        kwargs.setdefault(
            "layout",
            ipywidgets.Layout(
                width="100%",
                # Two columns from 1,128 px (the graph and the queue side by side, each half the
                # width), one below; never three (a column at least half the width), which the
                # two panels would leave a third empty on a wide page.
                grid_template_columns=(
                    "repeat(auto-fit, minmax(min(100%, max(560px, calc(50% - 4px))), 1fr))"
                ),
                grid_gap="8px",
            ),
        )
        super().__init__(list(self.panels), **kwargs)
        self.add_class("cw-dashboard")  # for the page's CSS and tests (a screenshot of it alone)
        self._links = [
            traitlets.link((self.graph, "selected"), (self.cards, "selected")),
            # Selecting an agent (card or graph node) shows its traces; a log line opens its own.
            traitlets.dlink((self.cards, "selected"), (self.traces, "agent")),
        ]
        self.logs.observe(self._open_trace, "open_trace")
        self._past: Hub | None = None  # the rebuilt hub a past range shows, None when live
        self.controls.on_range(self._show_range)
        self.controls.on_pause(self._pause_view)

    @property
    def hub(self) -> Hub:
        """The hub every panel watches."""
        return self._hub

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        # Displayed (again) on a hub stopped since it was created: start it as on creation.
        header = getattr(self, "header", None)
        if header is not None and header.comm is not None:
            bring_to_life(self._hub)
        return super()._repr_mimebundle_(**kwargs)

    @property
    def panels(self) -> tuple[Any, ...]:
        """The header, the controls and the seven panels, in display order."""
        return (
            self.header,
            self.controls,
            self.cards,
            self.graph,
            self.queue,
            self.alerts,
            self.system,
            self.logs,
            self.traces,
        )

    @property
    def views(self) -> tuple[Any, ...]:
        """The seven panels that follow the time range and the view pause."""
        return (
            self.cards,
            self.graph,
            self.queue,
            self.alerts,
            self.system,
            self.logs,
            self.traces,
        )

    @property
    def showing(self) -> Hub:
        """The hub the panels show: the live one, or a past state rebuilt from history."""
        return self._past or self._hub

    def show_live(self, window: int = 300) -> None:
        """Follow the live hub, plotting the last ``window`` seconds (300, 900 or 3600)."""
        self.controls.request("range", range={"mode": "live", "window": window})

    def show_range(self, since: float, until: float) -> None:
        """Show the state between ``since`` and ``until`` (unix seconds) rebuilt from history."""
        self.controls.request("range", range={"mode": "past", "since": since, "until": until})

    def _show_range(self, chosen: Mapping[str, Any]) -> None:
        if chosen["mode"] == "live":
            target, window = self._hub, int(chosen["window"])
        else:
            history = self._hub.history
            assert history is not None  # normalise_range checked it
            history.flush(timeout=5.0)  # the range may end a moment ago
            target = history.rebuild(since=chosen["since"], until=chosen["until"])
            window = int(max(60, min(3600, math.ceil(chosen["until"] - chosen["since"]))))
        self._past = None if target is self._hub else target
        for view in self.views:
            view.rebind(target)
        self.system.window = window

    def _open_trace(self, change: Any) -> None:
        trace = (change["new"] or {}).get("trace")
        if isinstance(trace, str) and trace:
            self.traces.selected = trace

    def _pause_view(self, paused: bool) -> None:
        for view in self.views:
            view.paused = paused

    def attach_simulator(self, simulator: Simulator | None) -> None:
        """Let the controls start, stop and change the speed of ``simulator``."""
        self.simulator = simulator
        self.controls.attach_simulator(simulator)
        self._hub.alerts.attach_simulator(simulator)  # the "stop_simulator" alert action

    @classmethod
    def demo(
        cls,
        seed: int = 1,
        jobs_per_minute: float = 30.0,
        *,
        concurrency: int = 2,
        time_scale: float = 10.0,
        history: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> Dashboard:
        """A dashboard on a new hub fed by a running :class:`~codeur_widgets.Simulator`.

        ``history="demo.sqlite"`` also stores the run, so past ranges can be shown. Call it from a
        notebook cell (it needs the kernel's running event loop). ``close()`` stops the simulator
        and the hub.
        """
        from ..core.hub import Hub
        from ..sim.simulator import Simulator

        hub = Hub(history=history)
        hub.start()
        sim = Simulator(hub, seed=seed, time_scale=time_scale)
        try:
            sim.start(jobs_per_minute=jobs_per_minute, concurrency=concurrency)
            dash = cls(hub, **kwargs)
        except BaseException:
            sim.stop()
            hub.stop()
            raise
        dash.attach_simulator(sim)
        dash._owned = [sim, hub]
        return dash

    def close(self) -> None:
        """Detach every panel from the hub and close them (and a demo's simulator and hub)."""
        for link in getattr(self, "_links", []):
            link.unlink()
        self._links = []
        if hasattr(self, "logs"):
            with contextlib.suppress(ValueError):  # closed before
                self.logs.unobserve(self._open_trace, "open_trace")
        for panel in getattr(self, "panels", ()):
            panel.close()
        owned, self._owned = getattr(self, "_owned", []), []
        for thing in owned:
            thing.stop()
        close_models(self, super().close)
