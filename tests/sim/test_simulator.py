"""Simulator: one job end to end, injected errors, background load, flood, determinism."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from codeur_widgets.core.events import Event
from codeur_widgets.core.hub import Hub
from codeur_widgets.sim import Simulator


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
            data = {k: v for k, v in e.data.items() if k not in ("duration", "task_id")}
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
    assert card["last_error"]["type"] == "RuntimeError"
    assert hub.queue.snapshot()["failed"] == 1


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
