"""AgentHandle: task contexts (sync, async, threads), instrument, flows, commands."""

from __future__ import annotations

import asyncio
import threading

import pytest

from codeur_widgets.core.clock import FakeClock
from codeur_widgets.core.events import Event
from codeur_widgets.core.hub import Hub


def make_hub() -> tuple[Hub, list[Event]]:
    hub = Hub(clock=FakeClock(), collect_system=False)
    seen: list[Event] = []
    hub.bus.subscribe("*", seen.append)
    return hub, seen


def test_handle_registers_and_sync_task_reports_duration() -> None:
    hub, seen = make_hub()
    a = hub.agent("coding_agent", model="gpt-4o", role="executor")
    with a.task("Implement #42", job_id="job-7") as t:
        hub.clock.advance(2.5)  # type: ignore[attr-defined]
        t.tokens(prompt=812, completion=240, cost_usd=0.004)
    topics = [e.topic for e in seen]
    assert topics == [
        "agent.registered",
        "agent.task.started",
        "agent.tokens",
        "agent.task.completed",
    ]
    assert seen[-1].data["duration"] == 2.5
    card = hub.agents.get("coding_agent")
    assert card is not None
    assert (card["role"], card["model"], card["tasks_completed"]) == ("executor", "gpt-4o", 1)
    assert card["prompt_tokens"] == 812 and card["duration_mean"] == 2.5


def test_exceptions_become_failed_and_error_events_and_are_reraised() -> None:
    hub, seen = make_hub()
    a = hub.agent("coding_agent")
    with pytest.raises(TimeoutError), a.task("call LLM"):
        raise TimeoutError("LLM call timed out")
    failed = next(e for e in seen if e.topic == "agent.task.failed")
    error = next(e for e in seen if e.topic == "agent.error")
    assert failed.data["error_type"] == "TimeoutError"
    assert error.data["error"] == "LLM call timed out"
    card = hub.agents.get("coding_agent")
    assert card is not None and card["tasks_failed"] == 1 and card["status"] == "error"


def test_async_task_and_instrument_on_sync_and_async_functions() -> None:
    hub, seen = make_hub()
    a = hub.agent("planner")

    @a.instrument
    def plan(x: int) -> int:
        return x * 2

    @a.instrument("Fetch context")
    async def fetch() -> str:
        await asyncio.sleep(0)
        return "ctx"

    async def main() -> str:
        async with a.task("outer"):
            return await fetch()

    assert plan(21) == 42
    assert plan.__name__ == "plan"
    assert asyncio.run(main()) == "ctx"
    started = [e.data["task"] for e in seen if e.topic == "agent.task.started"]
    assert started == [plan.__qualname__, "outer", "Fetch context"]
    card = hub.agents.get("planner")
    assert card is not None and card["tasks_completed"] == 3 and card["status"] == "idle"


def test_send_is_a_flow_on_the_graph() -> None:
    hub, _ = make_hub()
    a = hub.agent("coding_agent")
    a.send("git_operations", "git_command")
    a.send("brand_new_service", "call")
    snap = hub.flows.snapshot()
    assert "coding_agent->git_operations" in snap["edges"]
    assert "brand_new_service" in {n["id"] for n in hub.graph.snapshot()["nodes"]}


def test_handles_from_8_threads_give_exact_counts() -> None:
    async def main() -> Hub:
        hub = Hub(collect_system=False, thread_buffer=1_000_000)
        hub.start()
        a = hub.agent("worker")

        def work() -> None:
            for _ in range(2_000):
                with a.task("unit") as t:
                    t.tokens(prompt=1, completion=1)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            await asyncio.sleep(0.01)
        await hub.aclose()
        return hub

    hub = asyncio.run(main())
    card = hub.agents.get("worker")
    assert card is not None
    assert card["tasks_completed"] == 16_000
    assert card["prompt_tokens"] == 16_000
    assert card["status"] == "idle"


def test_commands_reach_the_handle_and_close_marks_offline() -> None:
    hub, _ = make_hub()
    a = hub.agent("coding_agent")
    got: list[tuple[str, dict]] = []
    a.on_command(lambda command, args: got.append((command, args)))
    hub.publish("admin.command", "coding_agent", command="pause", args={"why": "test"})
    hub.publish("admin.command", "someone_else", command="pause")
    assert got == [("pause", {"why": "test"})]
    a.close()
    a.close()
    card = hub.agents.get("coding_agent")
    assert card is not None and card["status"] == "offline"
    assert a not in hub._handles


def test_heartbeats_keep_a_live_agent_fresh() -> None:
    async def main() -> tuple[Hub, list[Event]]:
        hub = Hub(collect_system=False, heartbeat_interval=0.2, heartbeat_timeout=60)
        beats: list[Event] = []
        hub.bus.subscribe("agent.heartbeat", beats.append)
        handle = hub.agent("a")  # heartbeats last as long as someone holds the handle
        async with hub:
            await asyncio.sleep(2.3)
        assert handle.name == "a"
        return hub, beats

    _hub, beats = asyncio.run(main())
    assert len(beats) >= 2
    assert {e.agent for e in beats} == {"a"}
