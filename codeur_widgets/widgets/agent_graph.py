"""AgentGraphView: the animated graph of who talks to whom (cytoscape.js in one anywidget)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import traitlets

from ..core.flows import snapshot_flows
from ..core.graph import snapshot_edge_ids, snapshot_edges
from ._base import Frame, HubWidget
from ._bundle import Bundle

__all__ = ["AgentGraphView", "cytoscape_json", "index_flows", "node_states"]

SPLIT_BYTES = 60_000
"""Serialised bytes a frame may carry. The topology can be up to ~60 KB, so when a frame's parts
would pass this, the later ones wait for the next frame (flows move with every message, so the
next frame comes soon) and no message exceeds 64 KB."""


class AgentGraphView(HubWidget):
    """Agents as nodes (coloured by role, outlined by status) and their messages as edges (thicker
    and animated with flow intensity, labelled with messages/s, the busiest one highlighted).

    The topology (``graph`` store, edges as compact rows) is one trait that is re-sent only when
    it changes; each frame carries only the small ``flows`` state (parallel arrays indexed like
    the topology's edge rows, see :func:`index_flows`) and the agents' statuses (``nodes``), and
    the browser decays intensities between frames. 200 agents and 1,000 busy edges take ~35 KB
    of topology once, then ~15 KB of flows per frame.
    Nodes keep the positions the hub gives them, so new agents appear without moving the others.
    Clicking a node sets ``selected`` (its id; ``""`` when the background is clicked).

    ``AgentGraphView(hub)``; ``AgentGraphView()`` watches :func:`codeur_widgets.default_hub`.
    """

    _esm = Bundle("agent_graph")
    _stores = ("graph", "flows", "agents")

    topology = traitlets.Dict(
        help="the hub's `graph` snapshot (nodes with x/y, types, edges as index rows)"
    ).tag(sync=True)
    flows = traitlets.Dict(
        help="the hub's `flows` snapshot with `edges` as indices into the topology's edges"
    ).tag(sync=True)
    nodes = traitlets.Dict(help="agent name -> {status, stale}, from the `agents` snapshot").tag(
        sync=True
    )
    selected = traitlets.Unicode("", help="id of the selected node, '' for none").tag(sync=True)
    height = traitlets.Int(360, help="height of the drawing in pixels").tag(sync=True)

    _index: dict[str, int] | None = None  # edge id -> row in the topology last sent

    def _state(
        self, frame: Frame, traits: Mapping[str, Any], *, initial: bool = False
    ) -> dict[str, Any]:
        topology = frame["graph"]
        changed = initial or topology != self.topology  # rare: an unchanged one is never re-sent
        if changed or self._index is None:
            ids = snapshot_edge_ids(topology)
            self._index = {edge_id: i for i, edge_id in enumerate(ids) if edge_id is not None}
        parts = {
            "flows": index_flows(frame["flows"], self._index),
            "nodes": node_states(frame["agents"], topology),
        }
        if initial:
            return {"topology": topology, **parts}
        if changed:
            parts = {"topology": topology, **parts}
        return _fit(parts, SPLIT_BYTES)

    def to_ipycytoscape_json(self) -> dict[str, list[dict[str, Any]]]:
        """The current graph as Cytoscape JSON for ``ipycytoscape``.

        ``CytoscapeWidget().graph.add_graph_from_json(view.to_ipycytoscape_json(), directed=True)``
        """
        return cytoscape_json(self.topology, self.flows, self.nodes)

    def flow_table(self) -> dict[str, dict[str, Any]]:
        """The flows last sent, by edge id: ``{"a->b": {"intensity", "rate", "last_minute"}}``
        (``flows`` holds them as parallel arrays indexed like the topology's edge rows)."""
        return snapshot_flows(self.flows, snapshot_edge_ids(self.topology))


def index_flows(flows: Mapping[str, Any], index: Mapping[str, int]) -> dict[str, Any]:
    """A ``flows`` snapshot with its ``edges`` ids replaced by their rows in the topology
    (``index``: edge id -> row), as the view sends it: ``edges``, ``intensity`` and
    ``last_minute`` stay parallel arrays, ~15 bytes an edge. Active edges the topology does not
    list (it is capped, or not updated yet) are not drawn: they are counted in ``omitted``.
    """
    rows: list[int] = []
    levels: list[float] = []
    counts: list[int] = []
    ids = flows.get("edges") or []
    intensity = flows.get("intensity") or []
    last_minute = flows.get("last_minute") or []
    for i, edge_id in enumerate(ids):
        row = index.get(edge_id)
        if row is None or i >= len(intensity) or i >= len(last_minute):
            continue
        rows.append(row)
        levels.append(intensity[i])
        counts.append(last_minute[i])
    return {
        **flows,
        "edges": rows,
        "intensity": levels,
        "last_minute": counts,
        "omitted": int(flows.get("omitted") or 0) + len(ids) - len(rows),
    }


def node_states(
    agents: Mapping[str, Any], graph: Mapping[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """``{name: {"status", "stale"}}`` from an ``agents`` snapshot: all the graph needs of it
    (only for the nodes of ``graph``, when given: the others are not drawn). A paused agent also
    has ``"paused": True``."""
    shown = None if graph is None else {str(n.get("id")) for n in graph.get("nodes") or []}
    out: dict[str, dict[str, Any]] = {}
    for a in agents.get("agents") or []:
        if "name" not in a or (shown is not None and str(a["name"]) not in shown):
            continue
        state = {"status": a.get("status"), "stale": bool(a.get("stale"))}
        if a.get("paused"):
            state["paused"] = True  # only when true: the usual frame stays as small as before
        out[str(a["name"])] = state
    return out


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
    ``intensity``, ``rate`` and ``last_minute`` at the snapshot's time. ``flows`` may be a
    store's snapshot (edge ids) or the view's (indices into ``graph``'s edges).
    """
    edges = snapshot_edges(graph)
    flow_edges = snapshot_flows(flows or {}, snapshot_edge_ids(graph))
    flow_nodes: Mapping[str, Any] = {**((flows or {}).get("nodes") or {}), **(nodes or {})}
    out_nodes: list[dict[str, Any]] = []
    for n in graph.get("nodes") or []:
        node_id = str(n["id"])
        role = str(n.get("role") or "")
        state = flow_nodes.get(node_id) or {}
        status = "stale" if state.get("stale") and state.get("status") != "offline" else ""
        status = status or ("paused" if state.get("paused") else "")
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
    for e in edges:
        edge_id = e["id"]
        flow = flow_edges.get(edge_id) or {}
        out_edges.append(
            {
                "data": {
                    "id": edge_id,
                    "source": e["source"],
                    "target": e["target"],
                    "type": e["type"],
                    "weight": e["weight"],
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
