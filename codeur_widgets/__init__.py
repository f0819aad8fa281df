"""codeur-widgets: a Jupyter-native live dashboard for multi-agent LLM systems.

``from codeur_widgets import Hub, Dashboard, Simulator``. Importing the package (or its ``core``)
does not import ipywidgets: widget classes are loaded on first access, so agent processes that
only publish events stay light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> module that defines it; resolved lazily by __getattr__ (PEP 562).
_LAZY = {
    "Hub": "codeur_widgets.core.hub",
    "default_hub": "codeur_widgets.core.hub",
    "Event": "codeur_widgets.core.events",
    "InvalidEvent": "codeur_widgets.core.events",
    "FakeClock": "codeur_widgets.core.clock",
    "History": "codeur_widgets.core.history",
    "HistoryError": "codeur_widgets.core.history",
    "Simulator": "codeur_widgets.sim.simulator",
    "Dashboard": "codeur_widgets.widgets.dashboard",
    "DashboardControls": "codeur_widgets.widgets.dashboard_controls",
    "Admin": "codeur_widgets.core.admin",
    "AdminError": "codeur_widgets.core.admin",
    "AgentCards": "codeur_widgets.widgets.agent_cards",
    "SystemMetrics": "codeur_widgets.widgets.system_metrics",
    "QueueStats": "codeur_widgets.widgets.queue_stats",
    "AgentGraphView": "codeur_widgets.widgets.agent_graph",
    "LogTail": "codeur_widgets.widgets.log_tail",
    "TraceView": "codeur_widgets.widgets.trace_view",
    "Prices": "codeur_widgets.core.prices",
    "Rule": "codeur_widgets.core.alerts",
    "RuleError": "codeur_widgets.core.alerts",
    "AlertsPanel": "codeur_widgets.widgets.alerts_panel",
}

__all__ = [
    "Admin",
    "AdminError",
    "AgentCards",
    "AgentGraphView",
    "AlertsPanel",
    "Dashboard",
    "DashboardControls",
    "Event",
    "FakeClock",
    "History",
    "HistoryError",
    "Hub",
    "InvalidEvent",
    "LogTail",
    "Prices",
    "QueueStats",
    "Rule",
    "RuleError",
    "Simulator",
    "SystemMetrics",
    "TraceView",
    "__version__",
    "default_hub",
]

if TYPE_CHECKING:
    from .core.admin import Admin, AdminError
    from .core.alerts import Rule, RuleError
    from .core.clock import FakeClock
    from .core.events import Event, InvalidEvent
    from .core.history import History, HistoryError
    from .core.hub import Hub, default_hub
    from .core.prices import Prices
    from .sim.simulator import Simulator
    from .widgets.agent_cards import AgentCards
    from .widgets.agent_graph import AgentGraphView
    from .widgets.alerts_panel import AlertsPanel
    from .widgets.dashboard import Dashboard
    from .widgets.dashboard_controls import DashboardControls
    from .widgets.log_tail import LogTail
    from .widgets.queue_stats import QueueStats
    from .widgets.system_metrics import SystemMetrics
    from .widgets.trace_view import TraceView


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'codeur_widgets' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
