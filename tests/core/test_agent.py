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


# -- more: nesting, concurrency, failures, validation, heartbeats ---------------------------------


def card(hub: Hub, name: str) -> dict:
    found = hub.agents.get(name)
    assert found is not None
    return found


def test_hub_agent_accepts_a_heartbeat_interval() -> None:
    hub, _ = make_hub()
    a = hub.agent("coding_agent", model="gpt-4o", role="executor", heartbeat_interval=20.0)
    assert a.heartbeat_interval == 20.0
    with pytest.raises(ValueError, match="heartbeat_interval"):
        hub.agent("x", heartbeat_interval=0)


def test_nested_tasks_on_one_agent_keep_their_own_ids() -> None:
    hub, seen = make_hub()
    a = hub.agent("coding_agent")
    with a.task("outer", job_id="job-1") as outer:
        with a.task("inner") as inner:
            assert card(hub, "coding_agent")["task"] == "inner"
        assert outer.task_id != inner.task_id
        c = card(hub, "coding_agent")
        assert (c["task"], c["job_id"], c["status"]) == ("outer", "job-1", "active")
    c = card(hub, "coding_agent")
    assert (c["task"], c["status"], c["tasks_completed"]) == (None, "idle", 2)
    ended = [e.data["task_id"] for e in seen if e.topic == "agent.task.completed"]
    assert ended == [inner.task_id, outer.task_id]


def test_concurrent_async_tasks_on_one_agent() -> None:
    hub, _ = make_hub()
    a = hub.agent("rag_service")
    statuses: list[str] = []

    async def query(i: int) -> int:
        async with a.task(f"query {i}") as t:
            await asyncio.sleep(0.001 * (5 - i))
            t.tokens(prompt=10)
        statuses.append(card(hub, "rag_service")["status"])
        return i

    async def main() -> list[int]:
        return list(await asyncio.gather(*(query(i) for i in range(5))))

    assert asyncio.run(main()) == [0, 1, 2, 3, 4]
    c = card(hub, "rag_service")
    assert (c["tasks_completed"], c["prompt_tokens"], c["status"]) == (5, 50, "idle")
    assert statuses[:4] == ["active"] * 4 and statuses[-1] == "idle"


def test_a_failed_task_counts_one_error_and_its_message() -> None:
    hub, _ = make_hub()
    a = hub.agent("coding_agent")

    class LLMError(Exception):
        pass

    with pytest.raises(LLMError), a.task("call"):
        raise LLMError("context length exceeded")
    c = card(hub, "coding_agent")
    assert (c["tasks_failed"], c["errors"], c["status"]) == (1, 1, "error")
    assert c["last_error"]["type"] == "LLMError"
    assert c["last_error"]["message"] == "context length exceeded"
    with pytest.raises(ValueError), a.task("empty message"):
        raise ValueError
    assert card(hub, "coding_agent")["last_error"]["message"] == "ValueError"
    assert card(hub, "coding_agent")["errors"] == 2


def test_async_task_exception_is_reraised_and_recorded() -> None:
    hub, _ = make_hub()
    a = hub.agent("planner")

    async def main() -> None:
        async with a.task("plan", job_id="job-9") as t:
            t.metric("depth", 3)
            t.log("thinking")
            raise TimeoutError("LLM call timed out")

    with pytest.raises(TimeoutError, match="timed out"):
        asyncio.run(main())
    c = card(hub, "planner")
    assert (c["tasks_failed"], c["last_error"]["type"], c["metrics"]) == (
        1,
        "TimeoutError",
        {"depth": 3.0},
    )
    line = hub.logs.snapshot()["lines"][-1]
    assert (line["source"], line["message"]) == ("planner", "thinking")


def test_a_cancelled_task_is_not_a_failure() -> None:
    hub, seen = make_hub()
    a = hub.agent("coding_agent")

    async def main() -> None:
        async def work() -> None:
            async with a.task("long"):
                await asyncio.sleep(10)

        task = asyncio.get_running_loop().create_task(work())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    failed = [e for e in seen if e.topic == "agent.task.failed"]
    assert len(failed) == 1 and failed[0].data["cancelled"] is True
    assert not [e for e in seen if e.topic == "agent.error"]
    c = card(hub, "coding_agent")
    assert (c["tasks_failed"], c["errors"], c["status"]) == (0, 0, "idle")


def test_instrument_forms_and_failures() -> None:
    hub, seen = make_hub()
    a = hub.agent("coding_agent")

    @a.instrument()
    def documented() -> None:
        """Docstring kept."""

    @a.instrument
    def boom() -> None:
        raise KeyError("missing")

    @a.instrument("Async boom")
    async def aboom() -> None:
        raise RuntimeError("async failure")

    documented()
    assert documented.__doc__ == "Docstring kept." and hasattr(documented, "__wrapped__")
    with pytest.raises(KeyError):
        boom()
    with pytest.raises(RuntimeError):
        asyncio.run(aboom())
    assert asyncio.iscoroutinefunction(aboom)
    failed = [e.data["error_type"] for e in seen if e.topic == "agent.task.failed"]
    assert failed == ["KeyError", "RuntimeError"]
    c = card(hub, "coding_agent")
    assert (c["tasks_completed"], c["tasks_failed"], c["errors"]) == (1, 2, 2)
    with pytest.raises(TypeError, match="generator"):

        @a.instrument
        def gen() -> object:
            yield 1

    with pytest.raises(TypeError):
        a.instrument(42)  # type: ignore[call-overload]


def test_every_handle_method_publishes_under_the_agents_name() -> None:
    hub, seen = make_hub()
    a = hub.agent("coding_agent")
    a.tokens(prompt=3, completion=2, cost_usd=0.5)
    a.send("git_operations", "git_command", command="push")
    a.status("active")
    a.heartbeat()
    a.metric("queue_depth", 4)
    a.error(ConnectionError("reset"))
    a.error("plain message")
    a.log("hello", level="WARNING", extra="x")
    assert all(e.agent == "coding_agent" for e in seen)
    by_topic = {e.topic: e.data for e in seen}
    assert by_topic["agent.message"] == {
        "command": "push",
        "target": "git_operations",
        "kind": "git_command",
    }
    assert by_topic["log"] == {"extra": "x", "level": "WARNING", "message": "hello"}
    c = card(hub, "coding_agent")
    assert (c["prompt_tokens"], c["completion_tokens"], c["cost_usd"]) == (3, 2, 0.5)
    assert c["metrics"] == {"queue_depth": 4.0}
    assert c["errors"] == 2 and c["last_error"]["message"] == "plain message"


def test_caller_mistakes_raise_in_the_caller() -> None:
    hub, seen = make_hub()
    a = hub.agent("coding_agent")
    n = len(seen)
    with pytest.raises(ValueError, match="unknown status"):
        a.status("sleepy")
    with pytest.raises(TypeError):
        a.tokens(prompt="many")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        a.tokens(prompt=-1)
    with pytest.raises(ValueError):
        a.tokens(cost_usd=float("nan"))
    with pytest.raises(TypeError):
        a.metric("depth", "deep")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        a.task(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        a.send("")
    assert len(seen) == n  # nothing was published
    from codeur_widgets.core.events import InvalidEvent

    with pytest.raises(InvalidEvent):
        hub.agent("bad\nname")


def test_heartbeats_are_skipped_while_the_agent_is_heard_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import codeur_widgets.core.agent as agent_module

    now = [1000.0]
    monkeypatch.setattr(agent_module.time, "monotonic", lambda: now[0])
    hub, seen = make_hub()
    a = hub.agent("a", heartbeat_interval=10.0)

    def beats() -> int:
        return sum(e.topic == "agent.heartbeat" for e in seen)

    now[0] += 5
    a._beat()
    assert beats() == 0  # registered 5 s ago: alive enough
    now[0] += 5
    a._beat()
    assert beats() == 1
    now[0] += 8
    a.tokens(prompt=1)  # any event is a sign of life
    now[0] += 3
    a._beat()
    assert beats() == 1
    a.close()
    now[0] += 100
    a._beat()
    assert beats() == 1


def test_threads_with_failures_give_exact_counts_without_a_running_loop() -> None:
    """Not started (a script): publish_threadsafe applies directly, threads take turns."""
    hub = Hub(collect_system=False)
    a = hub.agent("worker")

    def work(k: int) -> None:
        for i in range(500):
            try:
                with a.task(f"unit {k}") as t:
                    t.tokens(prompt=2, completion=1, cost_usd=0.001)
                    if i % 5 == 0:
                        raise RuntimeError("flaky")
            except RuntimeError:
                pass

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    c = card(hub, "worker")
    assert (c["tasks_completed"], c["tasks_failed"], c["errors"]) == (3200, 800, 800)
    assert (c["prompt_tokens"], c["completion_tokens"]) == (8000, 4000)
    assert c["cost_usd"] == pytest.approx(4.0)
    assert c["task"] is None
