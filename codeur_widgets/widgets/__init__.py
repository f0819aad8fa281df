"""The view layer: thin anywidget/bqplot widgets fed by a Hub's render tick.

Each widget registers one ``hub.watch(...)`` and maps snapshots to traits (see
``docs/internals.md``); the browser code lives in ``js/`` and is built into ``static/``.
"""

from __future__ import annotations

from .agent_cards import AgentCards
from .agent_graph import AgentGraphView, cytoscape_json
from .dashboard import Dashboard, DashboardHeader
from .log_tail import LogTail
from .queue_stats import QueueStats
from .system_metrics import SystemMetrics
from .trace_view import TraceView

__all__ = [
    "AgentCards",
    "AgentGraphView",
    "Dashboard",
    "DashboardHeader",
    "LogTail",
    "QueueStats",
    "SystemMetrics",
    "TraceView",
    "cytoscape_json",
]
