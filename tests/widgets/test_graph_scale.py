"""AgentGraphView at the benchmark's scale: 200 agents, 1,000 busy edges, every message ≤ 64 KB."""

from __future__ import annotations

import json

from codeur_widgets.core.clock import FakeClock
from codeur_widgets.core.graph import snapshot_edges
from codeur_widgets.core.hub import Hub
from codeur_widgets.widgets import AgentGraphView
from codeur_widgets.widgets.agent_graph import index_flows

from .conftest import CommSpy

LIMIT_BYTES = 64 * 1024
NAMES = [f"agent_{i:03d}" for i in range(200)]
PAIRS = [(NAMES[i], NAMES[(i + k) % 200]) for i in range(200) for k in range(1, 6)]


def benchmark_hub(clock: FakeClock) -> Hub:
    """The graph of benchmarks/views.py: each of 200 agents talks to the next five."""
    hub = Hub(clock=clock, collect_system=False, topology="empty")
    for n in NAMES:
        hub.publish(
            "agent.registered", n, data={"role": ["worker", "planner", "service"][len(n) % 3]}
        )
        hub.publish("agent.status", n, status="active")
    for s, t in PAIRS:
        hub.publish("agent.message", s, target=t, kind="call")
    return hub


def test_200_agents_and_1000_busy_edges_fit_every_message(clock: FakeClock, spy: CommSpy) -> None:
    hub = benchmark_hub(clock)
    mark = spy.mark()
    view = AgentGraphView(hub, height=700)
    opened = [m for m in spy.messages[mark:] if m.msg_type == "comm_open"]
    # The whole graph is drawn: every agent and every edge is in the topology sent.
    assert view.topology["omitted"] == {"nodes": 0, "edges": 0}
    assert len(view.topology["nodes"]) == 200
    assert {e["id"] for e in snapshot_edges(view.topology)} == {f"{s}->{t}" for s, t in PAIRS}
    assert len(view.flows["edges"]) == 1000 and view.flows["omitted"] == 0
    mark = spy.mark()
    # 5,000 messages/s round-robin over the edges (every edge animates), ten frames a second.
    for step in range(20):
        for j in range(500):
            s, t = PAIRS[(step * 500 + j) % 1000]
            hub.publish("agent.message", s, target=t, kind="call")
        clock.advance(0.1)
        hub.render_now(now=step * 0.2)
    updates = spy.updates(view, since=mark)
    assert len(updates) >= 10  # the watch keeps frames >= 0.1 s apart
    assert all("flows" in m.state and "topology" not in m.state for m in updates)
    # The comm-open message also carries the JS bundle (loaded once): its state is what counts.
    (first,) = [m for m in opened if "topology" in m.state]
    state = {k: v for k, v in first.state.items() if k not in ("_esm", "_css")}
    assert len(json.dumps(state, ensure_ascii=False).encode()) <= 60_000
    assert max(m.size for m in updates) <= LIMIT_BYTES
    assert max(m.size for m in updates) <= 30_000  # ~15 bytes an edge, plus node states
    table = view.flow_table()
    assert len(table) == 1000
    assert all(e["last_minute"] >= 10 for e in table.values())
    assert view.flows["stats"]["active_edges"] == 1000
    view.close()
    hub.stop()


def test_flows_are_indexed_like_the_topology_rows(hub: Hub, spy: CommSpy) -> None:
    hub.publish("agent.message", "coding_agent", target="git_operations", kind="git_command")
    hub.publish("agent.message", "coding_agent", target="git_operations", kind="git_command")
    hub.publish("agent.message", "user", target="request_planner", kind="request")
    view = AgentGraphView(hub)
    ids = [e["id"] for e in snapshot_edges(view.topology)]
    flows = view.flows
    assert [ids[i] for i in flows["edges"]] == [
        "coding_agent->git_operations",
        "user->request_planner",
    ]
    assert flows["last_minute"] == [2, 1]
    assert len(flows["intensity"]) == 2
    assert view.flow_table()["coding_agent->git_operations"]["last_minute"] == 2
    json.dumps(view.flows, allow_nan=False)
    view.close()


def test_flows_of_edges_not_in_the_topology_are_counted_not_sent() -> None:
    flows = {
        "now": 1.0,
        "edges": ["a->b", "x->y", "b->c"],
        "intensity": [3.0, 2.0, 1.0],
        "last_minute": [3, 2, 1],
        "omitted": 4,
        "stats": {"active_edges": 7},
    }
    out = index_flows(flows, {"b->c": 0, "a->b": 1})
    assert out["edges"] == [1, 0]
    assert out["intensity"] == [3.0, 1.0]
    assert out["last_minute"] == [3, 1]
    assert out["omitted"] == 5
    assert out["stats"] == {"active_edges": 7} and out["now"] == 1.0


def test_a_huge_graph_keeps_messages_under_64kb_and_flows_on_listed_edges(
    clock: FakeClock, spy: CommSpy
) -> None:
    hub = Hub(clock=clock, collect_system=False, topology="empty")
    names = [f"agent_{i:04d}_" + "n" * 90 for i in range(1500)]
    view = AgentGraphView(hub)
    mark = spy.mark()
    for step in range(5):  # the graph grows while messages flow on every edge
        for i in range(step * 300, (step + 1) * 300):
            for k in (1, 2, 3):
                hub.publish(
                    "agent.message", names[i], target=names[(i + k) % len(names)], kind="call"
                )
        clock.advance(0.1)
        hub.render_now(now=float(step))
    hub.publish("agent.message", names[0], target=names[1], kind="call")
    hub.render_now(now=20.0)
    sent = spy.updates(view, since=mark)
    assert max(m.size for m in sent) <= LIMIT_BYTES
    assert view.topology["omitted"]["nodes"] > 0  # capped: the cap is visible
    rows = len(view.topology["edges"])
    assert view.flows["edges"] and all(0 <= i < rows for i in view.flows["edges"])
    view.close()
    hub.stop()
