"""AgentGraphView.to_ipycytoscape_json() loads into ipycytoscape's CytoscapeWidget."""

from __future__ import annotations

import json

from codeur_widgets.core.hub import Hub
from codeur_widgets.widgets import AgentGraphView, cytoscape_json

from .conftest import CommSpy, import_or_skip


def test_cytoscape_json_shape(hub: Hub, spy: CommSpy) -> None:
    hub.publish("agent.message", "coding_agent", target="git_operations", kind="git_command")
    view = AgentGraphView(hub)
    data = view.to_ipycytoscape_json()
    json.dumps(data)  # plain JSON
    ids = {n["data"]["id"] for n in data["nodes"]}
    assert {"coding_agent", "git_operations"} <= ids
    for node in data["nodes"]:
        assert set(node["position"]) == {"x", "y"}
    for edge in data["edges"]:
        assert {"id", "source", "target"} <= set(edge["data"])
        assert edge["data"]["source"] in ids and edge["data"]["target"] in ids
    busy = next(e for e in data["edges"] if e["data"]["id"] == "coding_agent->git_operations")
    assert busy["data"]["last_minute"] == 1
    assert busy["data"]["intensity"] > 0
    view.close()


def test_free_text_roles_become_safe_classes() -> None:
    data = cytoscape_json(
        {"nodes": [{"id": "a", "role": "my role!", "x": 1, "y": 2}], "edges": []},
        {"nodes": {"a": {"status": "active"}}},
    )
    assert data["nodes"][0]["classes"] == "role-my-role- status-active"


def test_loads_into_real_ipycytoscape(hub: Hub, spy: CommSpy) -> None:
    ipycytoscape = import_or_skip("ipycytoscape")
    hub.publish("agent.message", "coding_agent", target="git_operations", kind="git_command")
    hub.publish("agent.message", "coding_agent", target="brand_new_agent", kind="call")
    view = AgentGraphView(hub)
    data = view.to_ipycytoscape_json()

    cyto = ipycytoscape.CytoscapeWidget()
    cyto.graph.add_graph_from_json(data, directed=True)
    assert len(cyto.graph.nodes) == len(data["nodes"])
    assert len(cyto.graph.edges) == len(data["edges"])
    by_id = {n.data["id"]: n for n in cyto.graph.nodes}
    assert "brand_new_agent" in by_id
    first = data["nodes"][0]
    assert by_id[first["data"]["id"]].position == first["position"]
    assert by_id[first["data"]["id"]].data["label"] == first["data"]["label"]
    edge = next(e for e in cyto.graph.edges if e.data["id"] == "coding_agent->git_operations")
    assert (edge.data["source"], edge.data["target"]) == ("coding_agent", "git_operations")
    assert "directed" in edge.classes
    view.close()
    cyto.close()


def test_compact_snapshots_convert() -> None:
    """Edge rows of a ``graph`` snapshot and flows indexed like them (what the view holds), or
    keyed by edge id (a store's snapshot), give the same elements."""
    graph = {
        "nodes": [{"id": "a", "x": 0, "y": 0}, {"id": "b", "x": 200, "y": 0}],
        "types": ["calls"],
        "edges": [[0, 1, 0, 0.5], [1, 0, 0, 1.0]],
    }
    indexed = {"edges": [1], "intensity": [2.5], "last_minute": [30]}
    by_id = {"edges": ["b->a"], "intensity": [2.5], "last_minute": [30]}
    data = cytoscape_json(graph, indexed)
    assert cytoscape_json(graph, by_id) == data
    a_b, b_a = (e["data"] for e in data["edges"])
    assert (a_b["id"], a_b["type"], a_b["weight"], a_b["last_minute"]) == ("a->b", "calls", 0.5, 0)
    assert (b_a["id"], b_a["intensity"], b_a["rate"], b_a["last_minute"]) == ("b->a", 2.5, 0.5, 30)
    assert [e["classes"] for e in data["edges"]] == ["directed", "directed active"]
