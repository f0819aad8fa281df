"""AgentGraph: the ``graph`` store, the topology of who talks to whom, with stable positions.

The topology is a :class:`networkx.DiGraph` (:attr:`AgentGraph.graph`, also :attr:`AgentGraph.nx`)
whose nodes carry ``label``, ``role``, ``x``, ``y`` and whose edges carry ``type`` and ``weight``.
It starts from a configured topology (Codeur's by default, which, unlike the original plan, has the
``user`` node that the pipeline's first message comes from: DESIGN section 10, defect 5) and grows
when events name agents or edges it lacks (``agent.registered``, ``agent.message``).

Positions are computed once and never change: the default topology has fixed layered positions, a
custom one is laid out once in layers (topological generations of its strongly connected
components), and a node added later gets the nearest free slot next to the node it talks to, so
nothing on screen ever moves. :attr:`~AgentGraph.version` moves only when the topology changes;
a message on a known edge costs two dictionary look-ups.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import networkx as nx
from networkx import DiGraph

from .clock import Clock, wall_clock
from .events import Event, InvalidEvent, check_agent
from .store import Store

__all__ = [
    "CODEUR_EDGES",
    "CODEUR_NODES",
    "SNAPSHOT_BUDGET",
    "AgentGraph",
    "edge_id",
    "snapshot_edge_ids",
    "snapshot_edges",
]

CODEUR_NODES: tuple[tuple[str, str, str, float, float], ...] = (
    # id, label, role, x, y: the pipeline left to right, the shared services in a row below.
    ("user", "User", "external", 0.0, 150.0),
    ("request_planner", "Request planner", "orchestrator", 200.0, 150.0),
    ("code_planner", "Code planner", "planner", 400.0, 150.0),
    ("coding_agent", "Coding agent", "executor", 600.0, 150.0),
    ("rag_service", "RAG service", "service", 400.0, 330.0),
    ("git_operations", "Git operations", "service", 600.0, 330.0),
)
"""Codeur's agents with fixed positions (pixels; cytoscape's y axis points down)."""

CODEUR_EDGES: tuple[tuple[str, str, str, float], ...] = (
    # source, target, type, weight
    ("user", "request_planner", "requests", 1.0),
    ("request_planner", "code_planner", "delegates", 1.0),
    ("request_planner", "rag_service", "queries", 0.5),
    ("code_planner", "coding_agent", "assigns", 1.0),
    ("code_planner", "rag_service", "queries", 0.5),
    ("coding_agent", "git_operations", "uses", 0.8),
    ("coding_agent", "rag_service", "queries", 0.5),
    ("rag_service", "git_operations", "indexes", 0.3),
)
"""Codeur's default edges: who delegates to, queries or uses whom."""

SNAPSHOT_BUDGET = 60_000
"""Serialised bytes the nodes and edges of a snapshot may take (a comm message stays ≤ 64 KB)."""

# Bytes of an edge row besides its numbers: '[' ', ' ', ' ', ' ']' and the ', ' before the next.
_ROW_OVERHEAD = 10

LAYER_DX = 200.0
"""Horizontal distance between layers, and from a node to a new neighbour placed beside it."""
ROW_DY = 120.0
"""Vertical distance between nodes of one layer in a computed layout."""
SLOT_DX = 160.0
SLOT_DY = 110.0
"""The grid on which later nodes are placed: free slots are searched on it around an anchor."""
MIN_DX = 140.0
MIN_DY = 90.0
"""Two nodes closer than this on both axes overlap (their labels would collide)."""
PARK_PER_ROW = 8
"""Nodes seen with no known neighbour are parked in rows of this many under the topology."""

MAX_ROLE = 64
MAX_TYPE = 64
DEFAULT_EDGE_TYPE = "message"


def edge_id(source: str, target: str) -> str:
    """The id of the edge ``source → target`` in snapshots: ``"source->target"``."""
    return f"{source}->{target}"


def _decode_row(row: object, nodes: list[str], types: list[str]) -> dict[str, Any] | None:
    if isinstance(row, Mapping):
        if row.get("source") is None or row.get("target") is None:
            return None
        source, target = str(row["source"]), str(row["target"])
        return {
            "id": str(row.get("id") or edge_id(source, target)),
            "source": source,
            "target": target,
            "type": str(row.get("type") or ""),
            "weight": float(row.get("weight") or 1.0),
        }
    if not isinstance(row, (list, tuple)) or len(row) != 4:
        return None
    si, ti, ki, weight = row
    n = len(nodes)
    if not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n for i in (si, ti)):
        return None
    if isinstance(weight, bool) or not isinstance(weight, (int, float)):
        return None
    source, target = nodes[si], nodes[ti]
    kind = types[ki] if isinstance(ki, int) and 0 <= ki < len(types) else ""
    return {
        "id": edge_id(source, target),
        "source": source,
        "target": target,
        "type": kind,
        "weight": float(weight),
    }


def _decode_rows(snapshot: Mapping[str, Any]) -> list[dict[str, Any] | None]:
    nodes = [str(n.get("id")) for n in snapshot.get("nodes") or []]
    types = [str(t) for t in snapshot.get("types") or []]
    return [_decode_row(row, nodes, types) for row in snapshot.get("edges") or []]


def snapshot_edges(snapshot: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The edges of a ``graph`` snapshot as dicts ``{"id", "source", "target", "type", "weight"}``.

    A snapshot lists edges as compact rows ``[source index, target index, type index, weight]``
    into its ``nodes`` and ``types``; this expands them (rows that do not decode are skipped).
    Edges given as dicts (the older shape) are passed through.
    """
    return [edge for edge in _decode_rows(snapshot) if edge is not None]


def snapshot_edge_ids(snapshot: Mapping[str, Any]) -> list[str | None]:
    """The id (``"source->target"``) of each edge row of a ``graph`` snapshot, ``None`` for a row
    that does not decode: row ``i``'s id is ``ids[i]`` (what a view's flows index into)."""
    return [edge["id"] if edge is not None else None for edge in _decode_rows(snapshot)]


def _name(value: object) -> str | None:
    """An agent name if ``value`` is one (non-empty printable string, ≤ 128 chars), else None."""
    try:
        return check_agent(value) if isinstance(value, str) else None
    except InvalidEvent:
        return None


def _short_text(value: object, limit: int) -> str | None:
    """A printable string of at most ``limit`` characters, or None."""
    if isinstance(value, str) and 0 < len(value) <= limit and value.isprintable():
        return value
    return None


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"topology: {what} must be a finite number, got {value!r}")
    return float(value)


def _size(item: Mapping[str, Any]) -> int:
    # Default separators and ASCII escapes: never smaller than what the comm layer sends.
    return len(json.dumps(item))


class _Grid:
    """A spatial hash of node positions answering "is this spot free?" in O(1)."""

    def __init__(self) -> None:
        self._cells: dict[tuple[int, int], list[tuple[float, float]]] = {}
        # anchor -> index of the first candidate slot that may still be free around it: slots
        # only ever fill, so the search resumes there (a star of 5,000 leaves stays linear).
        self._resume: dict[tuple[float, float], int] = {}

    @staticmethod
    def _cell(x: float, y: float) -> tuple[int, int]:
        return math.floor(x / SLOT_DX), math.floor(y / SLOT_DY)

    def add(self, x: float, y: float) -> None:
        self._cells.setdefault(self._cell(x, y), []).append((x, y))

    def free(self, x: float, y: float) -> bool:
        cx, cy = self._cell(x, y)
        for i in (cx - 1, cx, cx + 1):
            for j in (cy - 1, cy, cy + 1):
                for px, py in self._cells.get((i, j), ()):
                    if abs(px - x) < MIN_DX and abs(py - y) < MIN_DY:
                        return False
        return True

    def nearest_free(self, x: float, y: float) -> tuple[float, float]:
        """The free grid slot nearest to ``(x, y)`` (deterministic), marked as taken."""
        key = (round(x, 1), round(y, 1))
        start = self._resume.get(key, 0)
        for index, (dx, dy) in enumerate(_spiral(start), start):
            px, py = round(x + dx * SLOT_DX, 1), round(y + dy * SLOT_DY, 1)
            if self.free(px, py):
                self._resume[key] = index + 1
                self.add(px, py)
                return px, py
        raise AssertionError("unreachable: the spiral is infinite")


_SPIRAL: list[tuple[int, int]] = []
_SPIRAL_RINGS = [0]  # how many rings _SPIRAL holds (a list: mutated in place, no global)


def _spiral(start: int) -> Iterator[tuple[int, int]]:
    """Grid offsets ring after ring around (0, 0), each ring ordered by distance (then right
    before left, up before down); computed lazily and shared by every search."""
    index = start
    while True:
        while index >= len(_SPIRAL):
            ring = _SPIRAL_RINGS[0]
            cells = [
                (dx, dy)
                for dx in range(-ring, ring + 1)
                for dy in range(-ring, ring + 1)
                if max(abs(dx), abs(dy)) == ring
            ]
            cells.sort(key=lambda c: (c[0] * c[0] + c[1] * c[1], -c[0], c[1]))
            _SPIRAL.extend(cells)
            _SPIRAL_RINGS[0] = ring + 1
        yield _SPIRAL[index]
        index += 1


class AgentGraph(Store):
    """The ``graph`` store: agents and their edges, with positions that never move.

    Args:
        topology: ``"codeur"`` (default; Codeur's six agents including ``user``), ``"empty"``,
            a :class:`networkx.DiGraph`, or ``{"nodes": [...], "edges": [...]}``. Nodes are ids or
            dicts ``{"id", "label", "role", "x", "y"}`` (``type`` is accepted for ``role``,
            ``pos``/``position`` for coordinates, cytoscape's ``{"data": {...}, "position"}``
            too); edges are ``(source, target)`` pairs or dicts ``{"source", "target", "type",
            "weight"}``. Nodes without coordinates are laid out once, in layers.
        clock: unix-seconds clock.
        max_nodes, max_edges: caps on nodes and edges added from events (the configured topology
            does not count); beyond them additions are dropped and counted in
            :attr:`dropped_nodes` / :attr:`dropped_edges`.

    Raises ``ValueError`` for a topology it cannot read. Nodes seen in ``agent.registered`` or as
    an ``agent.message`` endpoint are added with a free position next to their neighbour; edges
    seen in messages are added with ``type`` = the message kind. A node added from a message has
    role ``""`` until its agent registers with a role.
    """

    name = "graph"
    topics = ("agent.registered", "agent.message")

    def __init__(
        self,
        topology: str | nx.DiGraph | Mapping[str, Any] = "codeur",
        clock: Clock = wall_clock,
        *,
        max_nodes: int = 5_000,
        max_edges: int = 20_000,
    ) -> None:
        super().__init__(clock)
        for label, cap in (("max_nodes", max_nodes), ("max_edges", max_edges)):
            if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
                raise ValueError(f"{label} must be an int >= 0, got {cap!r}")
        self.max_nodes = max_nodes
        self.max_edges = max_edges
        self.graph: nx.DiGraph = nx.DiGraph()
        self._grid = _Grid()
        self.added_nodes = 0
        self.added_edges = 0
        self.dropped_nodes = 0
        self.dropped_edges = 0
        self.rejected = 0
        # Serialised snapshot entries per node, with their sizes, and per edge its type, weight and
        # the size of the weight's text, built when an element is added or changed; snapshot()
        # only walks them until the budget is spent.
        self._node_entries: dict[str, tuple[dict[str, Any], int]] = {}
        self._edge_entries: dict[tuple[str, str], tuple[str, float, int]] = {}
        self._node_bytes = 0
        self._edge_bytes = 0  # the rows without their indices: an estimate for the node budget
        self._snapshot: dict[str, Any] | None = None
        self._snapshot_version = -1
        self._load(topology)
        xs = [float(d["x"]) for _, d in self.graph.nodes(data=True)] or [0.0]
        ys = [float(d["y"]) for _, d in self.graph.nodes(data=True)]
        # Nodes with no known neighbour are parked in rows under the configured topology.
        self._park_origin = (min(xs), (max(ys) + 2 * SLOT_DY) if ys else 0.0)
        self._parked = 0

    @property
    def nx(self) -> DiGraph:
        """The topology as a :class:`networkx.DiGraph` (the same object as :attr:`graph`)."""
        return self.graph

    # -- configured topology -------------------------------------------------------------------
    def _load(self, topology: str | DiGraph | Mapping[str, Any]) -> None:
        if isinstance(topology, str):
            if topology == "codeur":
                for node_id, label, role, x, y in CODEUR_NODES:
                    self._put_node(node_id, label, role, x, y)
                for source, target, kind, weight in CODEUR_EDGES:
                    self._put_edge(source, target, kind, weight)
                return
            if topology == "empty":
                return
            raise ValueError(
                f"unknown topology {topology!r}: use 'codeur', 'empty', a DiGraph or a dict"
            )
        if isinstance(topology, nx.Graph):
            g = topology if topology.is_directed() else topology.to_directed()
            nodes: list[Any] = [{"id": n, **attrs} for n, attrs in g.nodes(data=True)]
            edges: list[Any] = [{"source": u, "target": v, **a} for u, v, a in g.edges(data=True)]
        elif isinstance(topology, Mapping):
            unknown = set(topology) - {"nodes", "edges"}
            if unknown:
                raise ValueError(f"topology dict: unknown keys {sorted(unknown)}")
            nodes = list(_items(topology.get("nodes"), "nodes"))
            edges = list(_items(topology.get("edges"), "edges"))
        else:
            raise ValueError(
                f"topology must be 'codeur', 'empty', a networkx.DiGraph or a dict, "
                f"got {type(topology).__name__}"
            )
        self._load_custom(nodes, edges)

    def _load_custom(self, nodes: list[Any], edges: list[Any]) -> None:
        parsed: dict[str, dict[str, Any]] = {}
        for raw in nodes:
            node = _parse_node(raw)
            if node["id"] in parsed:
                raise ValueError(f"topology: node {node['id']!r} is listed twice")
            parsed[node["id"]] = node
        parsed_edges = [_parse_edge(raw) for raw in edges]
        for edge in parsed_edges:  # endpoints only named by an edge are nodes too
            for end in (edge["source"], edge["target"]):
                parsed.setdefault(end, {"id": end, "label": end, "role": "", "x": None, "y": None})

        # Layers for the nodes without coordinates: topological generations of the graph of
        # strongly connected components (so cycles are fine), in the order the nodes were given.
        shape = nx.DiGraph()
        shape.add_nodes_from(parsed)
        shape.add_edges_from((e["source"], e["target"]) for e in parsed_edges)
        layer_of: dict[str, int] = {}
        dag = nx.condensation(shape)
        for depth, generation in enumerate(nx.topological_generations(dag)):
            for component in generation:
                for member in dag.nodes[component]["members"]:
                    layer_of[member] = depth
        rows: dict[int, list[str]] = {}
        for node_id, node in parsed.items():
            if node["x"] is None:
                rows.setdefault(layer_of[node_id], []).append(node_id)
        wanted: dict[str, tuple[float, float]] = {}
        for depth, members in rows.items():
            for i, node_id in enumerate(members):
                wanted[node_id] = (depth * LAYER_DX, 150.0 + (i - (len(members) - 1) / 2) * ROW_DY)

        # Given coordinates first, so computed ones avoid them; nodes keep the order given.
        for node in parsed.values():
            if node["x"] is not None:
                self._grid.add(node["x"], node["y"])
        for node in parsed.values():
            if node["x"] is None:
                x, y = wanted[node["id"]]
                if self._grid.free(x, y):
                    self._grid.add(x, y)
                else:  # a given position is in the way: the nearest free slot instead
                    x, y = self._grid.nearest_free(x, y)
                node["x"], node["y"] = x, y
            self._put_node(
                node["id"], node["label"], node["role"], node["x"], node["y"], grid=False
            )
        for edge in parsed_edges:
            self._put_edge(edge["source"], edge["target"], edge["type"], edge["weight"])

    # -- mutation ------------------------------------------------------------------------------
    def _put_node(
        self, node_id: str, label: str, role: str, x: float, y: float, *, grid: bool = True
    ) -> None:
        x, y = float(x), float(y)
        self.graph.add_node(node_id, label=label, role=role, x=x, y=y)
        if grid:
            self._grid.add(x, y)
        self._index_node(node_id)

    def _index_node(self, node_id: str) -> None:
        attrs = self.graph.nodes[node_id]
        entry = {
            "id": node_id,
            "label": attrs["label"],
            "role": attrs["role"],
            "x": attrs["x"],
            "y": attrs["y"],
        }
        old = self._node_entries.get(node_id)
        if old is not None:
            self._node_bytes -= old[1]
        size = _size(entry) + 2
        self._node_entries[node_id] = (entry, size)
        self._node_bytes += size

    def _put_edge(self, source: str, target: str, kind: str, weight: float) -> None:
        weight = float(weight)
        self.graph.add_edge(source, target, type=kind, weight=weight)
        size = len(json.dumps(weight))
        old = self._edge_entries.get((source, target))
        if old is not None:
            self._edge_bytes -= _ROW_OVERHEAD + old[2]
        self._edge_entries[(source, target)] = (kind, weight, size)
        self._edge_bytes += _ROW_OVERHEAD + size

    def _auto_node(self, node_id: str, near: str | None, after: bool) -> bool:
        """Add ``node_id`` beside ``near`` (to its right if ``after``), or parked; False if full."""
        if self.added_nodes >= self.max_nodes:
            self.dropped_nodes += 1
            return False
        if near is not None:
            attrs = self.graph.nodes[near]
            x, y = self._grid.nearest_free(
                attrs["x"] + (LAYER_DX if after else -LAYER_DX), attrs["y"]
            )
        else:
            x, y = self._park()
        self.graph.add_node(node_id, label=node_id, role="", x=x, y=y)
        self._index_node(node_id)
        self.added_nodes += 1
        return True

    def _park(self) -> tuple[float, float]:
        ox, oy = self._park_origin
        while True:  # slots only fill up, so the counter only moves forward
            k = self._parked
            self._parked += 1
            x = round(ox + (k % PARK_PER_ROW) * SLOT_DX, 1)
            y = round(oy + (k // PARK_PER_ROW) * SLOT_DY, 1)
            if self._grid.free(x, y):
                self._grid.add(x, y)
                return x, y

    def add_agent(self, name: str, role: str | None = None) -> bool:
        """Make sure agent ``name`` is a node (parked if new); fill its role if it has none.

        Returns True when the topology changed. Used for ``agent.registered``.
        """
        changed = False
        if name not in self.graph:
            if not self._auto_node(name, None, True):
                return False
            changed = True
        if role and not self.graph.nodes[name]["role"]:
            self.graph.nodes[name]["role"] = role
            self._index_node(name)
            changed = True
        if changed:
            self.touch()
        return changed

    def add_flow(self, source: str, target: str, kind: str | None = None) -> bool:
        """Make sure the edge ``source → target`` exists (adding missing nodes next to each other).

        Returns True when the topology changed. Used for ``agent.message``; O(1) when known.
        """
        g = self.graph
        if g.has_edge(source, target):
            return False
        changed = False
        if source not in g:
            if not self._auto_node(source, target if target in g else None, False):
                self.dropped_edges += 1
                return False
            changed = True
        if target not in g:
            if not self._auto_node(target, source, True):
                self.dropped_edges += 1
                if changed:
                    self.touch()
                return changed
            changed = True
        if self.added_edges >= self.max_edges:
            self.dropped_edges += 1
        else:
            self._put_edge(source, target, kind or DEFAULT_EDGE_TYPE, 1.0)
            self.added_edges += 1
            changed = True
        if changed:
            self.touch()
        return changed

    # -- ingest --------------------------------------------------------------------------------
    def apply(self, event: Event) -> None:
        """Add agents and edges that the topology lacks; O(1) for known ones."""
        data = event.data if isinstance(event.data, dict) else {}
        if event.topic == "agent.message":
            source = _name(event.agent if event.agent is not None else data.get("source"))
            target = _name(data.get("target"))
            if source is None or target is None:
                self.rejected += 1
                return
            if self.graph.has_edge(source, target):  # the common case: nothing to do
                return
            self.add_flow(source, target, _short_text(data.get("kind"), MAX_TYPE))
        elif event.topic == "agent.registered":
            name = _name(event.agent)
            if name is None:
                self.rejected += 1
                return
            self.add_agent(name, _short_text(data.get("role"), MAX_ROLE))

    # -- reading -------------------------------------------------------------------------------
    def position(self, node_id: str) -> tuple[float, float]:
        """``(x, y)`` of a node; raises ``KeyError`` for an unknown one."""
        attrs = self.graph.nodes[node_id]
        return attrs["x"], attrs["y"]

    def snapshot(self) -> dict[str, Any]:
        """The ``graph`` snapshot (see docs/internals.md), at most ~60 KB serialised.

        ``{"nodes": [{"id", "label", "role", "x", "y"}], "types": [edge type, ...], "edges":
        [[source index, target index, type index, weight], ...], "omitted": {"nodes", "edges"}}``:
        edges are compact rows into ``nodes`` and ``types`` (~15 bytes each; their ids are
        ``"source->target"``, see :func:`snapshot_edges`). Nodes are listed in the order they were
        added, then edges between listed nodes, until :data:`SNAPSHOT_BUDGET` is spent; nodes get
        at least 60% of it when edges do not fit. What is left out is counted in ``omitted``. The
        snapshot has no time in it, so it is equal from frame to frame until the topology changes
        (and is then rebuilt once).
        """
        if self._snapshot is None or self._snapshot_version != self.version:
            self._snapshot = self._build_snapshot()
            self._snapshot_version = self.version
        snap = self._snapshot
        return {
            "nodes": list(snap["nodes"]),
            "types": list(snap["types"]),
            "edges": list(snap["edges"]),
            "omitted": dict(snap["omitted"]),
        }

    def _build_snapshot(self) -> dict[str, Any]:
        budget = SNAPSHOT_BUDGET - 100  # the envelope's keys and the omitted counts
        # Edge rows as they would be with every node listed (indices of that many digits).
        digits = len(str(max(len(self._node_entries) - 1, 0)))
        edge_bytes = self._edge_bytes + len(self._edge_entries) * (2 * digits + 1)
        node_budget = max(int(budget * 0.6), budget - edge_bytes)
        nodes: list[dict[str, Any]] = []
        index: dict[str, int] = {}
        spent = 0
        for node_id, (entry, size) in self._node_entries.items():
            if spent + size > node_budget:
                break
            index[node_id] = len(nodes)
            nodes.append(entry)
            spent += size
        types: list[str] = []
        type_index: dict[str, int] = {}
        edges: list[list[Any]] = []
        for (source, target), (kind, weight, weight_size) in self._edge_entries.items():
            si = index.get(source)
            ti = index.get(target)
            if si is None or ti is None:
                continue
            ki = type_index.get(kind)
            new_type = ki is None
            if ki is None:
                ki = len(types)
            size = _ROW_OVERHEAD + len(str(si)) + len(str(ti)) + len(str(ki)) + weight_size
            if new_type:
                size += len(json.dumps(kind)) + 2
            if spent + size > budget:
                break
            if new_type:
                types.append(kind)
                type_index[kind] = ki
            edges.append([si, ti, ki, weight])
            spent += size
        return {
            "nodes": nodes,
            "types": types,
            "edges": edges,
            "omitted": {
                "nodes": len(self._node_entries) - len(nodes),
                "edges": len(self._edge_entries) - len(edges),
            },
        }

    def to_cytoscape(self) -> dict[str, list[dict[str, Any]]]:
        """The whole topology as cytoscape.js elements JSON (no budget).

        ``{"nodes": [{"data": {"id", "label", "role"}, "position": {"x", "y"}}], "edges":
        [{"data": {"id", "source", "target", "type", "weight"}}]}``: what cytoscape.js and
        ``ipycytoscape``'s ``Graph.add_graph_from_json(..., directed=True)`` load.
        """
        nodes = [
            {
                "data": {"id": node_id, "label": attrs["label"], "role": attrs["role"]},
                "position": {"x": attrs["x"], "y": attrs["y"]},
            }
            for node_id, attrs in self.graph.nodes(data=True)
        ]
        edges = [
            {
                "data": {
                    "id": edge_id(source, target),
                    "source": source,
                    "target": target,
                    "type": attrs["type"],
                    "weight": attrs["weight"],
                }
            }
            for source, target, attrs in self.graph.edges(data=True)
        ]
        return {"nodes": nodes, "edges": edges}

    def counters(self) -> dict[str, int]:
        """Nodes/edges added from events, dropped past the caps, and messages rejected."""
        return {
            "added_nodes": self.added_nodes,
            "added_edges": self.added_edges,
            "dropped_nodes": self.dropped_nodes,
            "dropped_edges": self.dropped_edges,
            "rejected": self.rejected,
        }


# -- topology parsing -----------------------------------------------------------------------------
def _items(value: object, what: str) -> Iterable[Any]:
    if value is None:
        return ()
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise ValueError(f"topology: {what} must be a list, got {type(value).__name__}")
    return value


def _topology_name(value: object, what: str) -> str:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"topology: {what} must be a name, got {value!r}")
    name = _name(str(value) if isinstance(value, int) else value)
    if name is None:
        raise ValueError(
            f"topology: {what} must be a non-empty printable string of at most 128 characters, "
            f"got {value!r}"
        )
    return name


def _parse_node(raw: object) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        node_id = _topology_name(raw, "a node id")
        return {"id": node_id, "label": node_id, "role": "", "x": None, "y": None}
    attrs: dict[str, Any] = dict(raw)
    position = attrs.pop("position", None)
    if isinstance(attrs.get("data"), Mapping):  # cytoscape's element form
        attrs = {**attrs.pop("data"), **attrs}
    node_id = _topology_name(attrs.get("id"), "a node's id")
    label = attrs.get("label", node_id)
    if not isinstance(label, str):
        raise ValueError(f"topology: node {node_id!r}: label must be a string")
    role = attrs.get("role", attrs.get("type", ""))
    if role is None:
        role = ""
    if not isinstance(role, str) or len(role) > MAX_ROLE:
        raise ValueError(f"topology: node {node_id!r}: role must be a short string")
    x, y = attrs.get("x"), attrs.get("y")
    pos = attrs.get("pos")
    if isinstance(position, Mapping):
        x, y = position.get("x"), position.get("y")
    elif pos is not None:
        if not isinstance(pos, (list, tuple)) or len(pos) != 2:
            raise ValueError(f"topology: node {node_id!r}: pos must be (x, y)")
        x, y = pos
    if (x is None) != (y is None):
        raise ValueError(f"topology: node {node_id!r}: give both x and y, or neither")
    if x is not None:
        x = _number(x, f"node {node_id!r} x")
        y = _number(y, f"node {node_id!r} y")
    return {"id": node_id, "label": label or node_id, "role": role, "x": x, "y": y}


def _parse_edge(raw: object) -> dict[str, Any]:
    if isinstance(raw, Mapping):
        attrs: dict[str, Any] = dict(raw)
        if isinstance(attrs.get("data"), Mapping):
            attrs = {**attrs.pop("data"), **attrs}
    elif isinstance(raw, (list, tuple)) and len(raw) in (2, 3):
        attrs = {"source": raw[0], "target": raw[1]}
        if len(raw) == 3:
            if not isinstance(raw[2], Mapping):
                raise ValueError(f"topology: edge {raw!r}: the third item must be a dict")
            attrs.update(raw[2])
    else:
        raise ValueError(f"topology: an edge must be (source, target) or a dict, got {raw!r}")
    source = _topology_name(attrs.get("source"), "an edge's source")
    target = _topology_name(attrs.get("target"), "an edge's target")
    kind = attrs.get("type", attrs.get("kind", DEFAULT_EDGE_TYPE))
    if not isinstance(kind, str) or not kind or len(kind) > MAX_TYPE:
        raise ValueError(f"topology: edge {source}->{target}: type must be a short string")
    weight = _number(attrs.get("weight", 1.0), f"edge {source}->{target} weight")
    return {"source": source, "target": target, "type": kind, "weight": weight}
