"""Simulator: one job end to end, injected errors, background load, flood, determinism."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from codeur_widgets.core.events import Event
from codeur_widgets.core.graph import snapshot_edges
from codeur_widgets.core.hub import Hub
from codeur_widgets.sim import Simulator

# Fields that differ between two runs of one seed: ids and times.
VARYING = ("duration", "task_id", "parent_id", "first_token_at")


def record(hub: Hub) -> list[Event]:
    seen: list[Event] = []
    hub.bus.subscribe("*", seen.append)
    return seen


async def one_job(seed: int) -> tuple[Hub, list[Event], dict[str, Any]]:
    hub = Hub(collect_system=False)
    seen = record(hub)
    sim = Simulator(hub, seed=seed, time_scale=1000)
    result = await sim.run_job()
    return hub, seen, result


def test_one_job_goes_through_the_whole_pipeline() -> None:
    hub, seen, result = asyncio.run(one_job(1))
    assert result["success"] is True
    flows = {(e.agent, e.data["target"]) for e in seen if e.topic == "agent.message"}
    assert ("user", "request_planner") in flows
    assert ("request_planner", "rag_service") in flows
    assert ("request_planner", "code_planner") in flows
    assert ("code_planner", "coding_agent") in flows
    assert ("coding_agent", "git_operations") in flows
    snap = hub.snapshot()
    assert snap["queue"]["completed"] == 1
    cards = {a["name"]: a for a in snap["agents"]["agents"]}
    assert set(cards) == {
        "request_planner",
        "code_planner",
        "coding_agent",
        "rag_service",
        "git_operations",
    }
    assert all(card["tasks_completed"] >= 1 for card in cards.values())
    assert cards["coding_agent"]["prompt_tokens"] > 0
    assert snap["logs"]["total"] > 0


def test_user_node_of_the_simulator_is_in_the_graph() -> None:
    """Defect 5: the plan's simulator sent from a `user` node its graph did not contain."""
    hub, _, _ = asyncio.run(one_job(2))
    nodes = {n["id"] for n in hub.graph.snapshot()["nodes"]}
    assert "user" in nodes
    assert hub.graph.counters()["added_nodes"] == 0  # nothing had to be added for the pipeline


def test_same_seed_same_event_sequence() -> None:
    def shape(events: list[Event]) -> list[tuple[Any, ...]]:
        keep = []
        for e in events:
            data = {k: v for k, v in e.data.items() if k not in VARYING}
            keep.append((e.topic, e.agent, sorted(data.items(), key=str)))
        return keep

    _, a, _ = asyncio.run(one_job(7))
    _, b, _ = asyncio.run(one_job(7))
    _, c, _ = asyncio.run(one_job(8))
    assert shape(a) == shape(b)
    assert shape(a) != shape(c)


def test_inject_error_fails_the_agents_next_task_and_the_job() -> None:
    async def main() -> tuple[Hub, dict[str, Any], dict[str, Any]]:
        hub = Hub(collect_system=False)
        sim = Simulator(hub, seed=3, time_scale=1000)
        sim.inject_error("coding_agent")
        failed = await sim.run_job()
        ok = await sim.run_job()
        return hub, failed, ok

    hub, failed, ok = asyncio.run(main())
    assert failed["success"] is False and ok["success"] is True
    card = hub.agents.get("coding_agent")
    assert card is not None and card["tasks_failed"] == 1
    assert card["last_error"] == {
        "type": "TimeoutError",
        "message": "LLM call timed out after 60 s",
        "ts": card["last_error"]["ts"],
    }
    assert card["errors"] == 1 and card["status"] == "idle"  # the next job's task succeeded
    assert hub.queue.snapshot()["failed"] == 1
    errors = hub.logs.query(level="ERROR")
    assert {line["source"] for line in errors} == {"coding_agent", "request_planner"}


def test_inject_error_names_unknown_agents() -> None:
    hub = Hub(collect_system=False)
    with pytest.raises(KeyError, match="nobody"):
        Simulator(hub).inject_error("nobody")


def test_background_jobs_start_and_stop_cleanly() -> None:
    async def main() -> tuple[Simulator, int]:
        hub = Hub(collect_system=False)
        sim = Simulator(hub, seed=4, time_scale=200)
        sim.start(jobs_per_minute=600, concurrency=3)
        assert sim.running
        await asyncio.sleep(1.0)
        await sim.aclose()
        await hub.aclose()
        leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        return sim, len(leftover)

    sim, leftover = asyncio.run(main())
    assert sim.jobs_completed >= 3
    assert not sim.running
    assert leftover == 0


def test_flood_publishes_the_requested_volume_in_real_time() -> None:
    async def main() -> tuple[Hub, int, float]:
        hub = Hub(collect_system=False)
        sim = Simulator(hub, seed=5)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        n = await sim.flood(rate=20_000, seconds=0.5)
        return hub, n, loop.time() - t0

    hub, n, elapsed = asyncio.run(main())
    assert n == 10_000
    assert 0.4 <= elapsed < 5.0
    assert hub.bus.accepted >= 10_000


def test_admin_pause_holds_an_agent_and_resume_releases_it() -> None:
    async def main() -> tuple[bool, dict[str, Any]]:
        hub = Hub(collect_system=False)
        sim = Simulator(hub, seed=6, time_scale=1000)
        hub.publish("admin.command", "code_planner", command="pause")
        job = asyncio.get_running_loop().create_task(sim.run_job())
        await asyncio.sleep(0.1)
        held = not job.done()
        hub.publish("admin.command", "code_planner", command="resume")
        return held, await asyncio.wait_for(job, 10)

    held, result = asyncio.run(main())
    assert held and result["success"] is True


def test_user_is_a_graph_node_but_not_an_agent_card() -> None:
    hub, _, _ = asyncio.run(one_job(9))
    assert "user" not in hub.agents
    edges = {e["id"] for e in snapshot_edges(hub.graph.snapshot())}
    assert "user->request_planner" in edges
    assert "user->request_planner" in hub.flows.snapshot()["edges"]


def test_job_shape_rag_and_git_calls_are_in_range() -> None:
    for seed in range(5):
        hub, seen, result = asyncio.run(one_job(seed))
        assert set(result) == {"job_id", "success", "steps"} and 2 <= result["steps"] <= 5
        flows = [
            (e.agent, e.data["target"], e.data["kind"]) for e in seen if e.topic == "agent.message"
        ]
        rp_queries = [f for f in flows if f[:2] == ("request_planner", "rag_service")]
        git_commands = [f for f in flows if f[2] == "git_command"]
        assert 1 <= len(rp_queries) <= 3
        assert 1 <= len(git_commands) <= 3
        topics = [e.topic for e in seen]
        assert topics.index("job.enqueued") < topics.index("job.started")
        assert topics[-1] == "job.completed"
        # Every task that started ended, and every agent is idle again.
        started = {e.data["task_id"] for e in seen if e.topic == "agent.task.started"}
        ended = {e.data["task_id"] for e in seen if e.topic == "agent.task.completed"}
        assert started == ended
        assert {a["status"] for a in hub.agents.snapshot()["agents"]} == {"idle"}
        assert hub.agents.get("request_planner")["cost_usd"] > 0  # type: ignore[index]


def test_inject_error_times_and_a_failing_service() -> None:
    async def main() -> tuple[Hub, list[dict[str, Any]]]:
        hub = Hub(collect_system=False)
        sim = Simulator(hub, seed=11, time_scale=1000)
        sim.inject_error("rag_service", times=2)
        results = [await sim.run_job() for _ in range(3)]
        return hub, results

    hub, results = asyncio.run(main())
    assert [r["success"] for r in results] == [False, False, True]
    assert results[0]["error"] == "vector index unreachable"
    rag = hub.agents.get("rag_service")
    assert rag is not None and rag["tasks_failed"] == 2 and rag["errors"] == 2
    # The failure escaped the asking agent's task too: it failed, as a real caller would.
    rp = hub.agents.get("request_planner")
    assert rp is not None and rp["tasks_failed"] == 2
    queue = hub.queue.snapshot()
    assert (queue["completed"], queue["failed"]) == (1, 2)
    with pytest.raises(ValueError):
        Simulator(hub).inject_error("rag_service", times=0)


def test_stop_is_immediate_idempotent_and_cancels_jobs_cleanly() -> None:
    async def main() -> tuple[Hub, Simulator, list[Event], int]:
        hub = Hub(collect_system=False)
        seen = record(hub)
        sim = Simulator(hub, seed=12, time_scale=5)  # slow: jobs are in flight when stopped
        sim.stop()  # before start: nothing to do
        sim.start(jobs_per_minute=600, concurrency=2)
        assert sim.start() is sim  # already running: unchanged
        await asyncio.sleep(0.3)
        sim.stop()
        assert not sim.running
        sim.stop()
        await sim.aclose()
        await sim.aclose()
        await hub.aclose()
        leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        return hub, sim, seen, len(leftover)

    hub, sim, seen, leftover = asyncio.run(main())
    assert leftover == 0 and sim.jobs_started >= 1
    cancelled = [
        e for e in seen if e.topic == "job.completed" and e.data.get("status") == "cancelled"
    ]
    assert len(cancelled) == sim.jobs_started - sim.jobs_completed - sim.jobs_failed >= 1
    assert hub.queue.snapshot()["processing"] == 0
    assert all(a["tasks_failed"] == 0 for a in hub.agents.snapshot()["agents"])
    assert {a["status"] for a in hub.agents.snapshot()["agents"]} <= {"idle"}


def test_start_needs_a_running_loop() -> None:
    sim = Simulator(Hub(collect_system=False))
    with pytest.raises(RuntimeError, match="running asyncio loop"):
        sim.start()
    with pytest.raises(ValueError):
        Simulator(Hub(collect_system=False), time_scale=0)


def test_flood_mix_covers_every_store_and_leaves_them_consistent() -> None:
    async def main() -> tuple[Hub, list[Event], int]:
        hub = Hub(collect_system=False)
        seen = record(hub)
        sim = Simulator(hub, seed=13)
        n = await sim.flood(rate=50_000, seconds=0.2, batch=500)
        return hub, seen, n

    hub, seen, n = asyncio.run(main())
    assert n == 10_000
    flood = seen[-n:]
    topics = {e.topic for e in flood}
    assert topics >= {
        "agent.message",
        "agent.task.started",
        "agent.task.completed",
        "agent.tokens",
        "agent.status",
        "agent.heartbeat",
        "job.enqueued",
        "job.started",
        "job.completed",
        "log",
    }
    queue = hub.queue.snapshot()
    assert queue["completed"] == 1000 and queue["queued"] == queue["processing"] == 0
    cards = hub.agents.snapshot()["agents"]
    assert sum(a["tasks_completed"] for a in cards) == 1000
    assert all(a["task"] is None for a in cards)
    assert hub.agents.ignored == 0 and hub.flows.snapshot()["stats"]["ignored"] == 0


def test_flood_yields_to_the_loop_between_batches() -> None:
    async def main() -> int:
        hub = Hub(collect_system=False)
        sim = Simulator(hub)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        t = asyncio.get_running_loop().create_task(ticker())
        await sim.flood(rate=100_000, seconds=0.1, batch=1000)
        t.cancel()
        return ticks

    assert asyncio.run(main()) >= 10  # one turn of the loop per batch at least


def test_same_seed_same_sequence_with_errors_and_several_jobs() -> None:
    async def run(seed: int) -> list[tuple[Any, ...]]:
        hub = Hub(collect_system=False)
        seen = record(hub)
        sim = Simulator(hub, seed=seed, time_scale=10_000)
        sim.inject_error("code_planner")
        for _ in range(3):
            await sim.run_job()
        return [
            (
                e.topic,
                e.agent,
                sorted((k, v) for k, v in e.data.items() if k not in VARYING),
            )
            for e in seen
        ]

    assert asyncio.run(run(21)) == asyncio.run(run(21))
