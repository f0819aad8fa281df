"""AgentGraph (the ``graph`` store), including the regression for DESIGN defect 5."""

from __future__ import annotations

import itertools
import json
from typing import Any

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codeur_widgets.core import graph as graph_module
from codeur_widgets.core.clock import FakeClock
from codeur_widgets.core.events import Event
from codeur_widgets.core.graph import (
    MIN_DX,
    MIN_DY,
    AgentGraph,
    snapshot_edge_ids,
    snapshot_edges,
)

T0 = 1_700_000_000.0
_ids = itertools.count()

CODEUR = {
    "user": "external",
    "request_planner": "orchestrator",
    "code_planner": "planner",
    "coding_agent": "executor",
    "rag_service": "service",
    "git_operations": "service",
}
CODEUR_EDGES = {
    ("user", "request_planner"),
    ("request_planner", "code_planner"),
    ("request_planner", "rag_service"),
    ("code_planner", "coding_agent"),
    ("code_planner", "rag_service"),
    ("coding_agent", "git_operations"),
    ("coding_agent", "rag_service"),
    ("rag_service", "git_operations"),
}


def msg(source: str | None, target: Any, kind: Any = "call", **data: Any) -> Event:
    return Event(
        "agent.message", source, {"target": target, "kind": kind, **data}, T0, f"g{next(_ids)}"
    )


def registered(name: str, role: Any = None) -> Event:
    data = {} if role is None else {"role": role}
    return Event("agent.registered", name, data, T0, f"g{next(_ids)}")


def positions(g: AgentGraph) -> dict[str, tuple[float, float]]:
    return {n: (a["x"], a["y"]) for n, a in g.graph.nodes(data=True)}


def assert_no_overlap(g: AgentGraph) -> None:
    points = list(positions(g).items())
    for (a, (ax, ay)), (b, (bx, by)) in itertools.combinations(points, 2):
        assert abs(ax - bx) >= MIN_DX or abs(ay - by) >= MIN_DY, f"{a} overlaps {b}"


# -- default topology -----------------------------------------------------------------------------
def test_default_topology_is_codeur_with_the_user_node() -> None:
    """Regression for DESIGN defect 5: the plan's simulator sends from ``user``, a node its graph
    did not contain. The default topology has it, and its edge to the request planner."""
    g = AgentGraph(clock=FakeClock(T0))
    assert {n: a["role"] for n, a in g.graph.nodes(data=True)} == CODEUR
    assert set(g.graph.edges) == CODEUR_EDGES
    assert g.graph.has_edge("user", "request_planner")
    assert g.graph.edges["user", "request_planner"]["type"] == "requests"
    assert g.nx is g.graph
    for _, attrs in g.graph.nodes(data=True):
        assert attrs["label"] and isinstance(attrs["label"], str)
    for _, _, attrs in g.graph.edges(data=True):
        assert attrs["type"] and 0 < attrs["weight"] <= 1.0
    types = {(u, v): a["type"] for u, v, a in g.graph.edges(data=True)}
    assert types[("request_planner", "code_planner")] == "delegates"
    assert types[("code_planner", "coding_agent")] == "assigns"
    assert types[("coding_agent", "git_operations")] == "uses"
    assert types[("rag_service", "git_operations")] == "indexes"
    assert types[("coding_agent", "rag_service")] == "queries"
    # A message from user to request_planner is an edge already known: no topology change.
    g.apply(msg("user", "request_planner", "request"))
    assert g.version == 0


def test_default_positions_are_fixed_and_do_not_overlap() -> None:
    a, b = AgentGraph(), AgentGraph()
    assert positions(a) == positions(b)
    assert positions(a)["user"][0] < positions(a)["request_planner"][0]
    assert_no_overlap(a)


def test_snapshot_shape() -> None:
    g = AgentGraph()
    snap = g.snapshot()
    json.dumps(snap, allow_nan=False)
    assert set(snap) == {"nodes", "types", "edges", "omitted"}
    assert snap["omitted"] == {"nodes": 0, "edges": 0}
    user = next(n for n in snap["nodes"] if n["id"] == "user")
    assert set(user) == {"id", "label", "role", "x", "y"}
    assert user["role"] == "external"
    # Edges are compact rows [source index, target index, type index, weight].
    ids = [n["id"] for n in snap["nodes"]]
    assert snap["edges"][0] == [ids.index("user"), ids.index("request_planner"), 0, 1.0]
    assert snap["types"][0] == "requests"
    assert len(snap["types"]) == len(set(snap["types"]))  # each type once
    assert {(ids[s], ids[t]) for s, t, _, _ in snap["edges"]} == CODEUR_EDGES
    edge = next(e for e in snapshot_edges(snap) if e["id"] == "user->request_planner")
    assert edge == {
        "id": "user->request_planner",
        "source": "user",
        "target": "request_planner",
        "type": "requests",
        "weight": 1.0,
    }
    assert {e["type"] for e in snapshot_edges(snap)} == set(snap["types"])
    # No time in it: equal from frame to frame until the topology changes.
    assert g.snapshot() == snap


def test_empty_topology() -> None:
    g = AgentGraph("empty")
    assert g.snapshot() == {
        "nodes": [],
        "types": [],
        "edges": [],
        "omitted": {"nodes": 0, "edges": 0},
    }
    g.apply(msg("a", "b", "ping"))
    assert set(g.graph.edges) == {("a", "b")}
    assert_no_overlap(g)


# -- growth ---------------------------------------------------------------------------------------
def test_messages_add_missing_nodes_and_edges_without_moving_others() -> None:
    g = AgentGraph()
    before = positions(g)
    g.apply(msg("coding_agent", "test_runner", "run_tests"))
    assert g.version == 1
    after = positions(g)
    assert {k: after[k] for k in before} == before
    assert g.graph.edges["coding_agent", "test_runner"]["type"] == "run_tests"
    assert g.graph.nodes["test_runner"]["role"] == ""
    # Placed beside (to the right of) the agent that talked to it.
    assert after["test_runner"][0] > after["coding_agent"][0]
    # The same message again changes nothing.
    g.apply(msg("coding_agent", "test_runner", "other_kind"))
    assert g.version == 1
    # A new edge between known nodes: one change, no new node.
    g.apply(msg("git_operations", "user", "notify"))
    assert g.version == 2
    assert len(g.graph) == 7
    assert_no_overlap(g)


def test_both_endpoints_new_and_a_new_source() -> None:
    g = AgentGraph()
    g.apply(msg("x", "y", "k"))
    g.apply(msg("reviewer", "coding_agent", "review"))
    pos = positions(g)
    assert pos["y"][0] > pos["x"][0]
    assert pos["reviewer"][0] < pos["coding_agent"][0]
    assert g.graph.has_edge("reviewer", "coding_agent")
    assert_no_overlap(g)


def test_registration_adds_a_node_and_fills_a_missing_role() -> None:
    g = AgentGraph()
    g.apply(registered("linter", "tool"))
    assert g.graph.nodes["linter"]["role"] == "tool"
    assert g.version == 1
    g.apply(msg("coding_agent", "formatter", "format"))
    assert g.graph.nodes["formatter"]["role"] == ""
    g.apply(registered("formatter", "tool"))
    assert g.graph.nodes["formatter"]["role"] == "tool"
    v = g.version
    # A configured role is not overwritten, and a registration of a known agent is a no-op.
    g.apply(registered("coding_agent", "something_else"))
    g.apply(registered("formatter", "other"))
    g.apply(registered("linter"))
    assert g.graph.nodes["coding_agent"]["role"] == "executor"
    assert g.graph.nodes["formatter"]["role"] == "tool"
    assert g.version == v
    assert [n["role"] for n in g.snapshot()["nodes"] if n["id"] == "formatter"] == ["tool"]


def test_many_new_nodes_never_overlap_and_never_move_others() -> None:
    g = AgentGraph()
    seen: dict[str, tuple[float, float]] = {}
    for i in range(150):
        g.apply(msg("coding_agent", f"tool_{i}", "call"))  # a star around one node
        g.apply(registered(f"solo_{i}", "service"))  # nodes with no neighbour
        if i % 3 == 0:
            g.apply(msg(f"tool_{i}", f"sub_{i}", "call"))
        now = positions(g)
        assert {k: now[k] for k in seen} == seen
        seen = now
    assert len(g.graph) == 6 + 150 + 150 + 50
    assert_no_overlap(g)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["msg", "reg"]),
            st.sampled_from([*CODEUR, "a", "b", "c", "d", "e"]),
            st.sampled_from([*CODEUR, "a", "b", "c", "d", "e", "f"]),
        ),
        max_size=40,
    )
)
def test_positions_are_stable_under_any_event_sequence(ops: list[tuple[str, str, str]]) -> None:
    g = AgentGraph()
    seen = positions(g)
    for op, a, b in ops:
        g.apply(msg(a, b) if op == "msg" else registered(a, "tool"))
        now = positions(g)
        assert {k: now[k] for k in seen} == seen
        seen = now
    assert_no_overlap(g)


def test_caps_on_auto_added_nodes_and_edges_are_counted() -> None:
    g = AgentGraph("empty", max_nodes=10, max_edges=5)
    for i in range(20):
        g.apply(msg(f"n{i}", f"n{i + 1}"))
    assert len(g.graph) == 10
    assert g.graph.number_of_edges() == 5
    counters = g.counters()
    assert counters["added_nodes"] == 10
    assert counters["dropped_nodes"] > 0 and counters["dropped_edges"] > 0
    v = g.version
    g.apply(msg("zz", "yy"))  # full: nothing changes
    assert g.version == v


def test_default_cap_is_5000_nodes() -> None:
    g = AgentGraph("empty")
    assert g.max_nodes == 5_000
    for i in range(5_100):
        g.apply(registered(f"agent-{i}"))
    assert len(g.graph) == 5_000
    assert g.dropped_nodes == 100


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (None, "b"),
        ("a", None),
        ("a", 3),
        ("a", ""),
        ("a", "x" * 200),
        ("a", "bad\nname"),
        ("a", ["b"]),
    ],
)
def test_bad_messages_are_counted(source: str | None, target: Any) -> None:
    g = AgentGraph("empty")
    g.apply(msg(source, target))
    assert g.rejected == 1
    assert len(g.graph) == 0
    assert g.version == 0


def test_source_from_data_when_the_event_has_no_agent() -> None:
    g = AgentGraph("empty")
    g.apply(Event("agent.message", None, {"source": "a", "target": "b"}, T0, "s"))
    assert g.graph.has_edge("a", "b")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["agent.message", "agent.registered"]),
    st.none() | st.sampled_from(["a", "user", "coding_agent"]),
    st.dictionaries(
        st.sampled_from(["target", "kind", "source", "role"]) | st.text(max_size=6),
        _json | st.sampled_from(["a", "b", "user", "request_planner"]),
        max_size=4,
    ),
)
def test_arbitrary_data_never_raises(topic: str, agent: str | None, data: dict[str, Any]) -> None:
    g = AgentGraph()
    g.apply(Event(topic, agent, data, T0, "x"))
    json.dumps(g.snapshot(), allow_nan=False)
    json.dumps(g.to_cytoscape(), allow_nan=False)


def test_a_known_edge_costs_no_serialisation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Part of the defect-4 regression: a message never serialises the graph."""
    g = AgentGraph()
    g.snapshot()

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("serialised on the message path")

    monkeypatch.setattr(graph_module, "_size", boom)
    monkeypatch.setattr(AgentGraph, "snapshot", boom)
    monkeypatch.setattr(AgentGraph, "to_cytoscape", boom)
    edges = sorted(CODEUR_EDGES)
    for i in range(10_000):
        g.apply(msg(*edges[i % len(edges)]))
    assert g.version == 0


# -- custom topologies ----------------------------------------------------------------------------
def test_custom_digraph_with_and_without_positions() -> None:
    dg = nx.DiGraph()
    dg.add_node("ingest", role="service", label="Ingest", x=0, y=0)
    dg.add_node("parse", type="worker")
    dg.add_edge("ingest", "parse", type="feeds", weight=0.5)
    dg.add_edge("parse", "store")
    dg.add_edge("store", "parse")  # a cycle
    snapshot_before = nx.node_link_data(dg, edges="links")
    g = AgentGraph(dg)
    assert nx.node_link_data(dg, edges="links") == snapshot_before  # not mutated
    assert g.graph is not dg
    pos = positions(g)
    assert pos["ingest"] == (0.0, 0.0)
    assert g.graph.nodes["ingest"]["label"] == "Ingest"
    assert g.graph.nodes["parse"]["role"] == "worker"
    assert g.graph.edges["ingest", "parse"] == {"type": "feeds", "weight": 0.5}
    assert g.graph.edges["parse", "store"] == {"type": "message", "weight": 1.0}
    assert pos["parse"][0] > pos["ingest"][0]  # a later layer
    assert_no_overlap(g)
    # Computed once, deterministically.
    assert positions(AgentGraph(dg)) == pos


def test_custom_layout_is_layered_for_a_pipeline() -> None:
    dg = nx.DiGraph([("a", "b"), ("b", "c"), ("a", "d"), ("d", "c")])
    g = AgentGraph(dg)
    pos = positions(g)
    assert pos["a"][0] < pos["b"][0] == pos["d"][0] < pos["c"][0]
    assert_no_overlap(g)


def test_custom_dict_topology_in_several_forms() -> None:
    g = AgentGraph(
        {
            "nodes": [
                "a",
                {"id": "b", "label": "Bee", "role": "planner", "x": 10, "y": 20},
                {
                    "data": {"id": "c", "label": "Sea", "role": "tool"},
                    "position": {"x": 400, "y": 20},
                },
                {"id": "d", "pos": (800, 20)},
            ],
            "edges": [
                ("a", "b"),
                {"source": "b", "target": "c", "type": "asks", "weight": 0.25},
                {"data": {"id": "c->d", "source": "c", "target": "d", "type": "uses"}},
                ["d", "e", {"kind": "writes"}],
            ],
        }
    )
    pos = positions(g)
    assert pos["b"] == (10.0, 20.0) and pos["c"] == (400.0, 20.0) and pos["d"] == (800.0, 20.0)
    assert g.graph.nodes["b"]["label"] == "Bee"
    assert g.graph.nodes["c"]["role"] == "tool"
    assert g.graph.edges["b", "c"] == {"type": "asks", "weight": 0.25}
    assert g.graph.edges["c", "d"]["type"] == "uses"
    assert g.graph.edges["d", "e"]["type"] == "writes"
    assert "e" in g.graph  # named only by an edge
    assert_no_overlap(g)


def test_round_trip_through_to_cytoscape_and_networkx() -> None:
    g = AgentGraph()
    g.apply(msg("coding_agent", "test_runner", "run_tests"))
    again = AgentGraph(g.to_cytoscape())
    assert positions(again) == positions(g)
    assert set(again.graph.edges) == set(g.graph.edges)
    from_nx = AgentGraph(g.graph)
    assert positions(from_nx) == positions(g)
    ours, theirs = from_nx.snapshot(), g.snapshot()
    assert ours["nodes"] == theirs["nodes"]
    key = lambda e: e["id"]  # noqa: E731 - edges come in networkx's adjacency order there
    assert sorted(snapshot_edges(ours), key=key) == sorted(snapshot_edges(theirs), key=key)


@pytest.mark.parametrize(
    "topology",
    [
        "nope",
        42,
        {"nodes": "abc"},
        {"nodes": [], "links": []},
        {"nodes": [{"label": "no id"}]},
        {"nodes": ["a", "a"]},
        {"nodes": [{"id": "a", "x": 1}]},
        {"nodes": [{"id": "a", "x": "left", "y": 2}]},
        {"nodes": [{"id": "a", "x": float("nan"), "y": 2}]},
        {"edges": [("a",)]},
        {"edges": [{"source": "a"}]},
        {"edges": [{"source": "a", "target": "b", "weight": "heavy"}]},
        {"edges": [{"source": "a", "target": "b", "type": 3}]},
    ],
)
def test_bad_topologies_raise_value_error(topology: Any) -> None:
    with pytest.raises(ValueError, match="topology"):
        AgentGraph(topology)


def test_undirected_graph_becomes_directed_both_ways() -> None:
    g = AgentGraph(nx.Graph([("a", "b")]))
    assert g.graph.has_edge("a", "b") and g.graph.has_edge("b", "a")


def test_integer_node_ids_become_strings() -> None:
    g = AgentGraph(nx.DiGraph([(1, 2)]))
    assert set(g.graph.edges) == {("1", "2")}


# -- cytoscape JSON and snapshot budget ----------------------------------------------------------
def test_to_cytoscape_shape() -> None:
    g = AgentGraph()
    data = g.to_cytoscape()
    json.dumps(data, allow_nan=False)
    assert set(data) == {"nodes", "edges"}
    ids = set()
    for node in data["nodes"]:
        assert set(node) == {"data", "position"}
        assert set(node["data"]) == {"id", "label", "role"}
        assert set(node["position"]) == {"x", "y"}
        ids.add(node["data"]["id"])
    assert "user" in ids
    for edge in data["edges"]:
        assert set(edge) == {"data"}
        assert set(edge["data"]) == {"id", "source", "target", "type", "weight"}
        assert edge["data"]["id"] == f"{edge['data']['source']}->{edge['data']['target']}"
        assert edge["data"]["source"] in ids and edge["data"]["target"] in ids


def test_200_agents_and_1000_edges_are_all_in_the_snapshot() -> None:
    """The benchmark's graph (each of 200 agents talks to the next five) is listed whole, in
    well under 64 KB: edges are ~15-byte rows, not ~110-byte objects."""
    g = AgentGraph("empty")
    names = [f"agent_{i:03d}" for i in range(200)]
    for n in names:
        g.apply(registered(n, ["worker", "planner", "service"][len(n) % 3]))
    pairs = [(names[i], names[(i + k) % 200]) for i in range(200) for k in range(1, 6)]
    for a, b in pairs:
        g.apply(msg(a, b, "call"))
    snap = g.snapshot()
    size = len(json.dumps(snap).encode())
    assert size <= 64 * 1024
    assert snap["omitted"] == {"nodes": 0, "edges": 0}
    assert len(snap["nodes"]) == 200 and len(snap["edges"]) == 1000
    assert snap["types"] == ["call"]
    assert [(e["source"], e["target"]) for e in snapshot_edges(snap)] == pairs
    edge_bytes = len(json.dumps(snap["edges"]).encode())
    assert edge_bytes / 1000 <= 20  # ~15 bytes an edge
    assert size < 40_000


def test_snapshot_edges_skips_bad_rows_and_reads_dict_edges() -> None:
    snap = {
        "nodes": [{"id": "a"}, {"id": "b"}],
        "types": ["t"],
        "edges": [[0, 1, 0, 0.5], [0, 7, 0, 1.0], "junk", [1, 0, 9, 2]],
    }
    assert snapshot_edges(snap) == [
        {"id": "a->b", "source": "a", "target": "b", "type": "t", "weight": 0.5},
        {"id": "b->a", "source": "b", "target": "a", "type": "", "weight": 2.0},
    ]
    old = {"nodes": [], "edges": [{"source": "a", "target": "b", "type": "x", "weight": 1.0}]}
    assert snapshot_edges(old)[0]["id"] == "a->b"
    # Row i keeps index i, so flows indexed by row stay aligned past a bad row.
    assert snapshot_edge_ids(snap) == ["a->b", None, None, "b->a"]
    assert snapshot_edge_ids({"nodes": [{"id": "a"}], "edges": [[0, 0, 0, True]]}) == [None]


@pytest.mark.parametrize("n_nodes", [80, 1001, 3000])
def test_snapshot_stays_under_64kb_with_many_edges(n_nodes: int) -> None:
    g = AgentGraph("empty")
    names = [f"agent_number_{i:04d}" for i in range(n_nodes)]
    count = 0
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if count == 2500:
                break
            g.apply(msg(a, b, f"a_fairly_long_message_kind_{count % 7}"))
            count += 1
    assert g.graph.number_of_edges() == 2500
    snap = g.snapshot()
    size = len(json.dumps(snap).encode())
    assert size <= 64 * 1024
    omitted = snap["omitted"]
    assert len(snap["nodes"]) + omitted["nodes"] == len(g.graph)
    assert len(snap["edges"]) + omitted["edges"] == 2500
    if n_nodes == 80:  # 80 nodes and 2,500 edges fit whole
        assert omitted == {"nodes": 0, "edges": 0}
    else:  # these do not: the cap is visible, and nodes keep most of the budget
        assert omitted["nodes"] > 0 and omitted["edges"] > 0
        assert len(snap["nodes"]) >= 300
    decoded = snapshot_edges(snap)
    assert len(decoded) == len(snap["edges"])  # every row points at listed nodes and types
    assert len(snap["types"]) == len({e["type"] for e in decoded})
    # Growing further keeps what is listed (a stable prefix: nothing on screen disappears).
    g.apply(registered("late_comer"))
    again = g.snapshot()
    assert again["nodes"][: len(snap["nodes"])] == snap["nodes"]
    assert again["edges"][: len(snap["edges"])] == snap["edges"]
    assert again["types"][: len(snap["types"])] == snap["types"]
    assert len(json.dumps(again).encode()) <= 64 * 1024


def test_exotic_types_and_weights_stay_under_64kb() -> None:
    """The byte count covers escaped type names and long float weights."""
    edges = [
        {"source": f"n{i % 300}", "target": f"m{i}", "type": 'é"' * 20 + str(i), "weight": 1 / 3}
        for i in range(3000)
    ]
    g = AgentGraph({"edges": edges})
    snap = g.snapshot()
    assert len(json.dumps(snap).encode()) <= 64 * 1024
    assert len(json.dumps(snap, ensure_ascii=False).encode()) <= 64 * 1024
    assert snap["omitted"]["edges"] > 0
    assert snapshot_edges(snap)[0]["weight"] == pytest.approx(1 / 3)


def test_snapshot_is_rebuilt_only_when_the_version_moves(monkeypatch: pytest.MonkeyPatch) -> None:
    g = AgentGraph()
    calls = []
    build = AgentGraph._build_snapshot

    def counting(self: AgentGraph) -> dict[str, Any]:
        calls.append(1)
        return build(self)

    monkeypatch.setattr(AgentGraph, "_build_snapshot", counting)
    for _ in range(10):
        g.snapshot()
    assert len(calls) == 1
    g.apply(registered("new"))
    g.snapshot()
    assert len(calls) == 2
    first = g.snapshot()
    first["nodes"].clear()  # a caller mutating its copy does not corrupt the store
    assert g.snapshot()["nodes"]
