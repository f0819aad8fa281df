"""FlowTracker (the ``flows`` store), including the regression for DESIGN defect 4."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codeur_widgets.core.clock import FakeClock
from codeur_widgets.core.events import Event
from codeur_widgets.core.flows import ACTIVE_THRESHOLD, SNAPSHOT_BUDGET, FlowTracker, snapshot_flows
from codeur_widgets.core.graph import AgentGraph

T0 = 1_700_000_000.0
_ids = itertools.count()


def msg(source: Any, target: Any, ts: float, kind: Any = "call", **data: Any) -> Event:
    # The unchecked constructor: the store must cope with whatever a transport let through.
    return Event(
        "agent.message", source, {"target": target, "kind": kind, **data}, ts, f"f{next(_ids)}"
    )


def table(snap: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The snapshot's parallel arrays as ``{edge id: {"intensity", "rate", "last_minute"}}``."""
    return snapshot_flows(snap)


def make(**kwargs: Any) -> tuple[FlowTracker, FakeClock]:
    clock = FakeClock(T0)
    return FlowTracker(clock=clock, **kwargs), clock


# -- decay ----------------------------------------------------------------------------------------
def test_intensity_decays_exponentially_from_timestamps() -> None:
    f, clock = make(half_life=2.0)
    f.apply(msg("a", "b", clock()))
    assert f.intensity("a", "b") == 1.0
    clock.advance(2.0)
    assert f.intensity("a", "b") == pytest.approx(0.5)  # one half-life
    f.apply(msg("a", "b", clock()))
    assert f.intensity("a", "b") == pytest.approx(1.5)  # I <- I * 0.5**(dt/hl) + 1
    clock.advance(1.0)
    f.apply(msg("a", "b", clock()))
    expected = 1.5 * 0.5**0.5 + 1.0
    assert f.intensity("a", "b") == pytest.approx(expected)
    clock.advance(6.0)
    assert f.intensity("a", "b") == pytest.approx(expected / 8)
    snap = f.snapshot()
    assert table(snap)["a->b"]["intensity"] == pytest.approx(expected / 8, abs=1e-4)
    assert snap["half_life"] == 2.0
    assert f.intensity("x", "y") == 0.0


def test_intensity_at_an_explicit_time_and_other_half_lives() -> None:
    f, clock = make(half_life=10.0)
    for _ in range(4):
        f.apply(msg("a", "b", clock()))
    assert f.intensity("a", "b") == 4.0
    assert f.intensity("a", "b", now=T0 + 10) == pytest.approx(2.0)
    assert f.intensity("a", "b", now=T0 + 30) == pytest.approx(0.5)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 30), min_size=1, max_size=30), st.randoms(use_true_random=False))
def test_decay_does_not_depend_on_arrival_order(offsets: list[float], rng: random.Random) -> None:
    in_order, clock = make(half_life=2.0)
    clock.advance(40)
    shuffled = FlowTracker(clock=clock, half_life=2.0)
    for off in sorted(offsets):
        in_order.apply(msg("a", "b", T0 + off))
    mixed = list(offsets)
    rng.shuffle(mixed)
    for off in mixed:
        shuffled.apply(msg("a", "b", T0 + off))
    now = clock()
    expected = sum(0.5 ** ((now - (T0 + off)) / 2.0) for off in offsets)  # the closed form
    assert in_order.intensity("a", "b") == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert shuffled.intensity("a", "b") == pytest.approx(expected, rel=1e-9, abs=1e-12)


# -- exact counts ---------------------------------------------------------------------------------
def test_last_minute_counts_are_exact_at_100000_messages() -> None:
    f, clock = make()
    rng = random.Random(7)
    edges = [(f"agent{i}", f"agent{(i * 7 + 3) % 50}") for i in range(50)]
    expected: dict[str, int] = {}
    start = clock()
    for i in range(100_000):
        source, target = edges[rng.randrange(len(edges))]
        clock.set(start + i * 0.0005)  # 100,000 messages in 50 s
        f.apply(msg(source, target, clock()))
        expected[f"{source}->{target}"] = expected.get(f"{source}->{target}", 0) + 1
    clock.set(start + 50.0)
    snap = f.snapshot()
    assert snap["stats"]["messages_last_minute"] == 100_000
    assert f.messages_last_minute() == 100_000
    assert {k: e["last_minute"] for k, e in table(snap).items()} == expected
    assert snap["stats"]["rate"] == pytest.approx(100_000 / 60, rel=1e-4)
    for key, edge in table(snap).items():
        assert edge["rate"] == pytest.approx(expected[key] / 60, abs=1e-4)
    busiest = max(expected.items(), key=lambda kv: kv[1])[0]
    assert snap["stats"]["busiest_edge"] == busiest
    # Exact by the second as the window slides: at start + 70 s, messages of the first 11 s left.
    clock.set(start + 70.0)
    left = sum(1 for i in range(100_000) if start + i * 0.0005 >= start + 11.0)
    assert f.messages_last_minute() == left
    clock.set(start + 111.0)
    assert f.snapshot()["stats"]["messages_last_minute"] == 0
    assert f.snapshot()["edges"] == []


def test_rates_and_stats() -> None:
    f, clock = make()
    for _ in range(30):
        f.apply(msg("user", "request_planner", clock(), "request"))
        clock.advance(1.0)
    for _ in range(45):
        f.apply(msg("coding_agent", "git_operations", clock(), "git_command"))
    f.apply(msg("code_planner", "coding_agent", clock(), "task_assignment"))
    snap = f.snapshot()
    assert snap["now"] == clock()
    edge = table(snap)["user->request_planner"]
    assert edge["last_minute"] == 30
    assert edge["rate"] == pytest.approx(0.5)
    assert f.kinds("user", "request_planner") == {"request": 30}
    assert f.kinds("nobody", "else") == {}
    # Parallel arrays, busiest first.
    assert snap["edges"] == [
        "coding_agent->git_operations",
        "user->request_planner",
        "code_planner->coding_agent",
    ]
    assert snap["last_minute"] == [45, 30, 1]
    assert len(snap["intensity"]) == 3
    assert snap["stats"] == {
        "messages_last_minute": 76,
        "active_edges": 3,
        "busiest_edge": "coding_agent->git_operations",
        "rate": pytest.approx(76 / 60, abs=1e-4),
        "total": 76,
        "ignored": 0,
    }


def test_kinds_are_bounded_with_other() -> None:
    f, clock = make(max_kinds=32)
    for i in range(40):
        f.apply(msg("a", "b", clock(), f"kind{i}"))
    f.apply(msg("a", "b", clock(), "kind0"))
    f.apply(msg("a", "b", clock(), "kind39"))
    kinds = f.kinds("a", "b")
    assert len(kinds) == 33
    assert kinds["kind0"] == 2
    assert kinds["other"] == 9
    assert sum(kinds.values()) == 42


def test_missing_or_bad_kinds() -> None:
    f, clock = make()
    f.apply(Event("agent.message", "a", {"target": "b"}, clock(), "k1"))
    f.apply(msg("a", "b", clock(), kind=5))
    f.apply(msg("a", "b", clock(), kind="x" * 500))
    kinds = f.kinds("a", "b")
    assert kinds["message"] == 2
    assert kinds["x" * 64] == 1
    assert f.bad_kinds == 1


@pytest.mark.parametrize(
    ("source", "target"),
    [(None, "b"), ("a", None), ("a", 3), (3, "b"), ("a", ""), ("a", "x" * 200), ("a", "b\x00")],
)
def test_messages_without_valid_endpoints_are_ignored_and_counted(source: Any, target: Any) -> None:
    f, clock = make()
    f.apply(msg(source, target, clock()))
    snap = f.snapshot()
    assert snap["edges"] == []
    assert snap["stats"]["ignored"] == 1
    assert snap["stats"]["messages_last_minute"] == 0


def test_source_from_data_when_the_event_has_no_agent() -> None:
    f, clock = make()
    f.apply(Event("agent.message", None, {"source": "a", "target": "b"}, clock(), "s"))
    assert f.last_minute("a", "b") == 1


def test_future_and_old_timestamps() -> None:
    f, clock = make()
    f.apply(msg("a", "b", clock() + 1000))  # a producer's clock ahead: counted now
    assert f.last_minute("a", "b") == 1
    assert f.intensity("a", "b") == 1.0
    f.apply(msg("a", "c", clock() - 3600))  # replayed, long ago: in the total only
    snap = f.snapshot()
    assert snap["stats"]["total"] == 2
    assert snap["stats"]["messages_last_minute"] == 1
    assert "a->c" not in snap["edges"]


def test_edge_cap_still_counts_messages() -> None:
    f, clock = make(max_edges=3)
    for i in range(5):
        f.apply(msg("a", f"t{i}", clock()))
    snap = f.snapshot()
    assert len(snap["edges"]) == 3
    assert snap["stats"]["messages_last_minute"] == 5
    assert f.dropped_edges == 2


@pytest.mark.parametrize("half_life", [0, -1.0, float("inf"), float("nan"), True, "2"])
def test_half_life_must_be_positive(half_life: Any) -> None:
    with pytest.raises(ValueError, match="half_life"):
        FlowTracker(half_life=half_life)


# -- versions and activity ------------------------------------------------------------------------
def test_version_moves_per_message_and_when_an_edge_leaves_the_minute() -> None:
    f, clock = make()
    f.apply(msg("a", "b", clock()))
    f.apply(msg("a", "b", clock()))
    clock.advance(30)
    f.apply(msg("c", "d", clock()))
    assert f.version == 3
    for _ in range(29):  # decay alone never moves the version
        clock.advance(1)
        f.tick(clock())
    assert f.version == 3
    clock.advance(1.5)  # a->b leaves the window
    f.tick(clock())
    assert f.version == 4
    assert list(f.snapshot()["edges"]) == ["c->d"]
    f.tick(clock())
    assert f.version == 4
    clock.advance(30)
    f.tick(clock())
    assert f.version == 5
    assert f.snapshot()["edges"] == []
    assert f.snapshot()["stats"]["active_edges"] == 0
    for _ in range(10):
        clock.advance(5)
        f.tick(clock())
    assert f.version == 5


def test_long_half_life_keeps_an_edge_active_after_the_minute() -> None:
    f, clock = make(half_life=60.0)
    for _ in range(20):
        f.apply(msg("a", "b", clock()))
    clock.advance(61)
    f.tick(clock())
    v = f.version
    snap = f.snapshot()
    edge = table(snap)["a->b"]
    assert edge["last_minute"] == 0
    assert edge["intensity"] == pytest.approx(20 * 0.5 ** (61 / 60), abs=1e-3)
    assert snap["stats"]["active_edges"] == 1
    assert snap["stats"]["busiest_edge"] is None
    # log2(20 / 0.05) half-lives later it is below the threshold: it goes, once.
    clock.advance(60 * 9)
    f.tick(clock())
    assert f.version == v + 1
    assert f.intensity("a", "b") <= ACTIVE_THRESHOLD
    assert f.snapshot()["edges"] == []
    # A new message brings it back from cooling or idle alike.
    f.apply(msg("a", "b", clock()))
    assert table(f.snapshot())["a->b"]["last_minute"] == 1


# -- defect 4 -------------------------------------------------------------------------------------
def test_no_task_timer_or_serialisation_per_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression for DESIGN defect 4: the plan created an asyncio task per message (to decay it
    later) and re-serialised the whole graph, with stats over a 10,000-entry deque, each time."""
    clock = FakeClock(T0)
    flows = FlowTracker(clock=clock)
    graph = AgentGraph(clock=clock)

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("serialised or snapshotted on the message path")

    async def main() -> tuple[int, int, int]:
        loop = asyncio.get_running_loop()
        before = len(asyncio.all_tasks())
        handles_before = len(getattr(loop, "_scheduled", ()))
        with monkeypatch.context() as m:
            m.setattr(json, "dumps", boom)
            m.setattr(FlowTracker, "snapshot", boom)
            m.setattr(AgentGraph, "snapshot", boom)
            m.setattr(AgentGraph, "to_cytoscape", boom)
            pairs = [("user", "request_planner"), ("coding_agent", "git_operations")]
            for i in range(10_000):
                source, target = pairs[i % 2]
                event = msg(source, target, clock(), "k")
                flows.apply(event)
                graph.apply(event)
                clock.advance(0.001)
        await asyncio.sleep(0)
        return (
            before,
            len(asyncio.all_tasks()),
            len(getattr(loop, "_scheduled", ())) - handles_before,
        )

    before, after, timers = asyncio.run(main())
    assert after == before
    assert timers == 0  # no call_later either
    assert flows.version == 10_000  # one bump per message, nothing else
    assert graph.version == 0
    snap = flows.snapshot()
    assert snap["stats"]["messages_last_minute"] == 10_000
    assert table(snap)["user->request_planner"]["last_minute"] == 5_000


# -- property and size ----------------------------------------------------------------------------
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.none() | st.sampled_from(["a", "b", "user"]),
            st.dictionaries(
                st.sampled_from(["target", "kind", "source"]) | st.text(max_size=6),
                _json | st.sampled_from(["a", "b", "user", "coding_agent"]),
                max_size=4,
            ),
            st.floats(-120, 120),
        ),
        max_size=30,
    )
)
def test_arbitrary_data_never_raises(
    events: list[tuple[str | None, dict[str, Any], float]],
) -> None:
    f, clock = make()
    for agent, data, dt in events:
        f.apply(Event("agent.message", agent, data, T0 + dt, "x"))
    clock.advance(30)
    f.tick(clock())
    snap = f.snapshot()
    json.dumps(snap, allow_nan=False)
    assert snap["stats"]["total"] + snap["stats"]["ignored"] == len(events)
    assert (
        sum(e["last_minute"] for e in table(snap).values()) == snap["stats"]["messages_last_minute"]
    )


def test_snapshot_shape_has_no_nodes_and_is_json() -> None:
    f, clock = make()
    f.apply(msg("a", "b", clock()))
    snap = f.snapshot()
    json.dumps(snap, allow_nan=False)
    assert set(snap) == {
        "now",
        "half_life",
        "edges",
        "intensity",
        "last_minute",
        "omitted",
        "stats",
    }
    assert "nodes" not in snap  # node status comes from the agents store
    assert snap["edges"] == ["a->b"]
    assert snap["intensity"] == [1.0]
    assert snap["last_minute"] == [1]
    assert table(snap) == {"a->b": {"intensity": 1.0, "rate": 0.0167, "last_minute": 1}}
    assert {"messages_last_minute", "active_edges", "busiest_edge", "rate"} <= set(snap["stats"])


def test_1000_active_edges_fit_well_under_64kb() -> None:
    """The benchmark's traffic: 200 agents, each talking to the next five, every edge busy."""
    f, clock = make()
    names = [f"agent_{i:03d}" for i in range(200)]
    pairs = [(names[i], names[(i + k) % 200]) for i in range(200) for k in range(1, 6)]
    for _ in range(5):
        for source, target in pairs:
            f.apply(msg(source, target, clock(), "call"))
        clock.advance(0.2)
    snap = f.snapshot()
    size = len(json.dumps(snap).encode())
    assert snap["omitted"] == 0 and len(snap["edges"]) == 1000
    assert size < 48_000  # ids and two numbers an edge: ~40 bytes
    assert set(table(snap)) == {f"{s}->{t}" for s, t in pairs}


def test_snapshot_stays_under_64kb_with_many_edges() -> None:
    f, clock = make()
    rng = random.Random(1)
    for i in range(2000):
        source, target = f"agent_with_a_long_name_{i:04d}", f"another_agent_name_{i:04d}"
        for k in range(1 + i % 5):
            f.apply(msg(source, target, clock(), f"kind_{k}_{rng.randrange(1000)}"))
    f.apply(msg("hot", "spot", clock(), "busy"))
    for _ in range(50):
        f.apply(msg("hot", "spot", clock(), "busy"))
    clock.advance(0.123)  # intensities with many digits
    snap = f.snapshot()
    size = len(json.dumps(snap).encode())
    assert size <= 64 * 1024
    edges_size = sum(len(json.dumps(snap[k])) for k in ("edges", "intensity", "last_minute"))
    assert edges_size <= SNAPSHOT_BUDGET
    assert len(snap["edges"]) + snap["omitted"] == 2001
    assert len(snap["edges"]) > 800  # 52-character ids
    assert snap["omitted"] > 0
    assert len(snap["intensity"]) == len(snap["last_minute"]) == len(snap["edges"])
    assert snap["stats"]["active_edges"] == 2001
    assert snap["stats"]["messages_last_minute"] == sum(1 + i % 5 for i in range(2000)) + 51
    # The busiest edges are the ones kept.
    assert snap["edges"][0] == "hot->spot"
    assert snap["stats"]["busiest_edge"] == "hot->spot"
    kept = [e["last_minute"] for e in table(snap).values()]
    assert min(kept) >= 3


def test_snapshot_flows_reads_indices_and_the_older_shape() -> None:
    frame = {
        "edges": [1, 0, 7, True],
        "intensity": [2.0, 0.5, 1.0, 1.0],
        "last_minute": [6, 3, 1, 1],
    }
    assert snapshot_flows(frame, ["a->b", "b->c"]) == {
        "b->c": {"intensity": 2.0, "rate": 0.1, "last_minute": 6},
        "a->b": {"intensity": 0.5, "rate": 0.05, "last_minute": 3},
    }
    old = {"edges": {"a->b": {"intensity": 1.0, "rate": 0.5, "last_minute": 30}}}
    assert snapshot_flows(old)["a->b"]["last_minute"] == 30
    assert snapshot_flows({}) == {}


def test_an_expiry_seen_first_by_a_snapshot_still_refreshes_views() -> None:
    f, clock = make()
    f.apply(msg("a", "b", clock()))
    v = f.version
    clock.advance(61)
    assert f.snapshot()["edges"] == []  # someone else's snapshot expires the edge first
    f.tick(clock())
    assert f.version == v + 1  # views that last saw a->b are still refreshed
    f.tick(clock())
    assert f.version == v + 1
