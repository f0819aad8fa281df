"""AgentCards: one card per agent, fed by the ``agents`` store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import traitlets

from ._base import Frame, HubWidget
from ._bundle import Bundle

__all__ = ["AgentCards"]


class AgentCards(HubWidget):
    """A card per agent: status, current task and its elapsed time, heartbeat age (stale agents
    marked), tasks done/failed, mean and p95 duration, tokens and cost, last error.

    Cards keep the registry's order (registration time, then name). ``status_filter`` (a status,
    ``"stale"`` or ``""`` for all) and ``role_filter`` are applied in the browser; ``selected`` is
    the highlighted agent's name (a Dashboard links it to the graph's selection).

    ``AgentCards(hub)``; ``AgentCards()`` watches :func:`codeur_widgets.default_hub`.
    """

    _esm = Bundle("agent_cards")
    _stores = ("agents",)

    data = traitlets.Dict(help="the hub's `agents` snapshot").tag(sync=True)
    status_filter = traitlets.Unicode("", help="status to show, 'stale', or '' for all").tag(
        sync=True
    )
    role_filter = traitlets.Unicode("", help="role to show, or '' for all").tag(sync=True)
    selected = traitlets.Unicode("", help="name of the highlighted agent").tag(sync=True)

    def _state(
        self, frame: Frame, traits: Mapping[str, Any], *, initial: bool = False
    ) -> dict[str, Any]:
        return {"data": frame["agents"]}
