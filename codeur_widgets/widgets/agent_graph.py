"""AgentGraphView: the animated graph of who talks to whom (cytoscape.js in one anywidget)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import traitlets

from ._base import Frame, HubWidget
from ._bundle import Bundle

__all__ = ["AgentGraphView", "cytoscape_json", "node_states"]

SPLIT_BYTES = 60_000
"""Serialised bytes a frame may carry. The topology and the flows can each be up to ~60 KB, so
when a frame's parts would pass this, the later ones wait for the next frame (flows move with
every message, so the next frame comes soon) and no message exceeds 64 KB."""


class AgentGraphView(HubWidget):
    """Agents as nodes (coloured by role, outlined by status) and their messages as edges (thicker
    and animated with flow intensity, labelled with messages/s, the busiest one highlighted).

    The topology (``graph`` store) is one trait that is re-sent only when it changes; each frame
    carries only the small ``flows`` state and the agents' statuses (``nodes``), and the browser
    decays intensities between frames.
    Nodes keep the positions the hub gives them, so new agents appear without moving the others.
    Clicking a node sets ``selected`` (its id; ``""`` when the background is clicked).

    ``AgentGraphView(hub)``; ``AgentGraphView()`` watches :func:`codeur_widgets.default_hub`.
    """

    _esm = Bundle("agent_graph")
    _stores = ("graph", "flows", "agents")

    topology = traitlets.Dict(help="the hub's `graph` snapshot (nodes with x/y, edges)").tag(
        sync=True
    )
    flows = traitlets.Dict(help="the hub's `flows` snapshot (per-edge intensity, stats)").tag(
        sync=True
    )
    nodes = traitlets.Dict(help="agent name -> {status, stale}, from the `agents` snapshot").tag(
        sync=True
    )
    selected = traitlets.Unicode("", help="id of the selected node, '' for none").tag(sync=True)
    height = traitlets.Int(360, help="height of the drawing in pixels").tag(sync=True)

    def _state(
        self, frame: Frame, traits: Mapping[str, Any], *, initial: bool = False
    ) -> dict[str, Any]:
        topology = frame["graph"]
        parts = {"flows": frame["flows"], "nodes": node_states(frame["agents"], topology)}
        if initial:
            return {"topology": topology, **parts}
        if topology != self.topology:  # rare: an unchanged topology is never re-sent
            parts = {"topology": topology, **parts}
        return _fit(parts, SPLIT_BYTES)

    def to_ipycytoscape_json(self) -> dict[str, list[dict[str, Any]]]:
        """The current graph as Cytoscape JSON for ``ipycytoscape``.

        ``CytoscapeWidget().graph.add_graph_from_json(view.to_ipycytoscape_json(), directed=True)``
        """
        return cytoscape_json(self.topology, self.flows, self.nodes)


def node_states(
    agents: Mapping[str, Any], graph: Mapping[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """``{name: {"status", "stale"}}`` from an ``agents`` snapshot: all the graph needs of it
    (only for the nodes of ``graph``, when given: the others are not drawn)."""
    shown = None if graph is None else {str(n.get("id")) for n in graph.get("nodes") or []}
    return {
        str(a["name"]): {"status": a.get("status"), "stale": bool(a.get("stale"))}
        for a in agents.get("agents") or []
        if "name" in a and (shown is None or str(a["name"]) in shown)
    }


def cytoscape_json(
    graph: Mapping[str, Any],
    flows: Mapping[str, Any] | None = None,
    nodes: Mapping[str, Any] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Convert a ``graph`` snapshot (optionally with a ``flows`` snapshot and node states from
    :func:`node_states`) to Cytoscape JSON.

    The result is ``{"nodes": [{"data": {...}, "position": {...}, "classes": ...}],
    "edges": [{"data": {"id", "source", "target", ...}, "classes": ...}]}``, the element format of
    cytoscape.js that ``ipycytoscape``'s ``Graph.add_graph_from_json`` loads. Node data carries
    ``label``, ``role`` and ``status``; edge data ``type``, ``weight`` and the flow's
    ``intensity``, ``rate`` and ``last_minute`` at the snapshot's time.
    """
    flow_edges: Mapping[str, Any] = (flows or {}).get("edges") or {}
    flow_nodes: Mapping[str, Any] = {**((flows or {}).get("nodes") or {}), **(nodes or {})}
    out_nodes: list[dict[str, Any]] = []
    for n in graph.get("nodes") or []:
        node_id = str(n["id"])
        role = str(n.get("role") or "")
        state = flow_nodes.get(node_id) or {}
        status = "stale" if state.get("stale") and state.get("status") != "offline" else ""
        status = status or str(state.get("status") or "")
        out_nodes.append(
            {
                "data": {
                    "id": node_id,
                    "label": str(n.get("label") or node_id),
                    "role": role,
                    "status": status,
                },
                "position": {"x": float(n.get("x") or 0.0), "y": float(n.get("y") or 0.0)},
                "classes": " ".join(
                    c for c in (_css_class("role", role), _css_class("status", status)) if c
                ),
            }
        )
    out_edges: list[dict[str, Any]] = []
    for e in graph.get("edges") or []:
        source, target = str(e["source"]), str(e["target"])
        edge_id = str(e.get("id") or f"{source}->{target}")
        flow = flow_edges.get(edge_id) or {}
        out_edges.append(
            {
                "data": {
                    "id": edge_id,
                    "source": source,
                    "target": target,
                    "type": str(e.get("type") or ""),
                    "weight": float(e.get("weight") or 1.0),
                    "intensity": float(flow.get("intensity") or 0.0),
                    "rate": float(flow.get("rate") or 0.0),
                    "last_minute": int(flow.get("last_minute") or 0),
                },
                # ipycytoscape draws arrows for edges with the "directed" class.
                "classes": "directed" + (" active" if flow else ""),
            }
        )
    return {"nodes": out_nodes, "edges": out_edges}


def _json_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, default=str).encode())


def _fit(parts: dict[str, Any], budget: int) -> dict[str, Any]:
    """The parts, in order, that fit ``budget`` serialised bytes (the first one always goes)."""
    out: dict[str, Any] = {}
    used = 0
    for name, value in parts.items():
        size = _json_size(value)
        if out and used + size > budget:
            continue
        out[name] = value
        used += size
    return out


def _css_class(prefix: str, value: str) -> str:
    """A class name safe for cytoscape selectors (role/status names are free text)."""
    cleaned = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in value)
    return f"{prefix}-{cleaned}" if cleaned else ""
