"""The agent API for spans: tasks, llm_call, tool_call, retrieval and span nest into exact trees
(sync, async, threads), failures are recorded and re-raised, content is captured per the hub's
setting, usage reaches the cards once, and history rebuilds and replays the traces."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from codeur_widgets.core.clock import FakeClock
from codeur_widgets.core.events import Event
from codeur_widgets.core.hub import Hub
from codeur_widgets.core.spans import CONTENT_LIMIT, current_span

T0 = 1_700_000_000.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def hub(clock: FakeClock) -> Hub:
    return Hub(clock=clock, collect_system=False, prices={"m": (1.0, 3.0)})


def record(hub: Hub) -> list[Event]:
    seen: list[Event] = []
    hub.bus.subscribe("*", seen.append)
    return seen


def tree(hub: Hub, trace: str) -> dict[str, tuple[str | None, str | None]]:
    """name -> (parent's name, status)."""
    spans = hub.traces.spans(trace)
    names = {s["span_id"]: s["name"] for s in spans}
    return {s["name"]: (names.get(s["parent_id"]), s["status"]) for s in spans}


def test_calls_nest_under_tasks_and_the_job_is_the_trace(hub: Hub, clock: FakeClock) -> None:
    a = hub.agent("coder", model="m")
    seen = record(hub)
    with a.task("Implement", job_id="job-1") as t:
        assert current_span.get() is not None and current_span.get().span_id == t.span_id  # type: ignore[union-attr]
        clock.advance(1)
        with a.llm_call(model="m", messages=[{"role": "user", "content": "hi"}]) as c:
            clock.advance(0.25)
            c.first_token()
            clock.advance(0.75)
            c.output("hello")
            c.tokens(prompt=1_000, completion=100)
        with a.tool_call("git_commit", {"message": "fix"}) as tool:
            tool.result("ok")
            with a.retrieval("query") as r:
                r.output(["doc"])
        with a.task("inner") as inner:
            assert inner.job_id == "job-1" and inner.parent_id == t.span_id
    assert current_span.get() is None
    assert t.trace_id == "job-1" and c.parent_id == t.span_id and c.duration == 1.0
    assert tree(hub, "job-1") == {
        "Implement": (None, "ok"),
        "llm m": ("Implement", "ok"),
        "git_commit": ("Implement", "ok"),
        "retrieval": ("git_commit", "ok"),
        "inner": ("Implement", "ok"),
    }
    llm = next(s for s in hub.traces.spans("job-1", with_content=True) if s["kind"] == "llm")
    assert llm["ttft"] == 0.25 and llm["tokens_per_s"] == pytest.approx(100 / 0.75)
    assert llm["cost_usd"] == pytest.approx(0.0013) and llm["output"] == "hello"
    assert llm["input"] == [{"role": "user", "content": "hi"}]
    # Task events carry the envelope ids and the parent in data (spans.py's contract).
    started = [e for e in seen if e.topic == "agent.task.started"]
    assert started[0].trace_id == "job-1" and started[0].span_id == t.span_id
    assert "parent_id" not in started[0].data and started[1].data["parent_id"] == t.span_id
    assert [e.topic for e in seen if e.topic.startswith("span.")] == [
        "span.started",
        "span.updated",
        "span.ended",
        "span.started",
        "span.started",
        "span.ended",
        "span.ended",
    ]
    card = hub.agents.get("coder")
    assert card is not None and (card["prompt_tokens"], card["completion_tokens"]) == (1_000, 100)
    assert card["cost_usd"] == pytest.approx(0.0013) and card["tasks_completed"] == 2


def test_a_task_without_a_job_starts_its_own_trace(hub: Hub) -> None:
    a = hub.agent("a")
    with a.task("solo") as t, a.llm_call(model="m") as c:
        pass
    assert t.trace_id is not None and len(t.trace_id) == 32 and c.trace_id == t.trace_id
    with a.llm_call(model="m") as alone:  # no task either: a trace of its own
        pass
    assert alone.trace_id not in (None, t.trace_id) and alone.parent_id is None
    assert len(hub.traces) == 2


def test_failures_are_recorded_and_reraised(hub: Hub) -> None:
    a = hub.agent("a")
    with pytest.raises(TimeoutError), a.task("job", job_id="j"), a.llm_call(model="m"):
        raise TimeoutError("LLM call timed out")
    spans = hub.traces.spans("j")
    assert [(s["kind"], s["status"], s["error_type"]) for s in spans] == [
        ("task", "error", "TimeoutError"),
        ("llm", "error", "TimeoutError"),
    ]
    assert spans[1]["error"] == "LLM call timed out"
    card = hub.agents.get("a")
    assert card is not None and card["errors"] == 1 and card["tasks_failed"] == 1
    summary = hub.traces.get("j")
    assert summary is not None and summary["errors"] == 2 and summary["status"] == "failed"


def test_async_calls_and_cancellation(hub: Hub) -> None:
    a = hub.agent("a")

    async def work() -> None:
        async with a.task("async", job_id="j"):
            async with a.llm_call(model="m") as c:
                await asyncio.sleep(0)
                c.tokens(prompt=3, completion=4, cost_usd=0.5)
            async with a.tool_call("slow"):
                await asyncio.sleep(10)

    async def main() -> None:
        task = asyncio.ensure_future(work())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert tree(hub, "j") == {
        "async": (None, "cancelled"),
        "llm m": ("async", "ok"),
        "slow": ("async", "cancelled"),
    }
    card = hub.agents.get("a")
    assert card is not None and card["cost_usd"] == 0.5 and card["tasks_failed"] == 0


def test_concurrent_asyncio_tasks_keep_their_own_parents(hub: Hub) -> None:
    a = hub.agent("a")

    async def job(n: int) -> None:
        async with a.task(f"task {n}", job_id=f"j{n}"):
            await asyncio.sleep(0.001 * (3 - n))
            async with a.llm_call(model="m", name=f"call {n}"):
                await asyncio.sleep(0.001)

    async def main() -> None:
        await asyncio.gather(*(job(n) for n in range(3)))

    asyncio.run(main())
    for n in range(3):
        assert tree(hub, f"j{n}") == {f"task {n}": (None, "ok"), f"call {n}": (f"task {n}", "ok")}


def test_eight_threads_with_nested_tasks_and_calls_give_exact_trees(clock: FakeClock) -> None:
    hub = Hub(clock=clock, collect_system=False, prices={"m": (1.0, 1.0)})
    agents = [hub.agent(f"agent{i}", model="m") for i in range(8)]
    rounds = 25
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        a = agents[i]
        try:
            barrier.wait()
            for r in range(rounds):
                with a.task(f"outer {i}.{r}", job_id=f"job-{i}-{r}"):
                    with a.llm_call(model="m", name=f"plan {i}.{r}") as c:
                        c.tokens(prompt=10 + i, completion=r)
                    with a.task(f"inner {i}.{r}"), a.tool_call(f"tool {i}.{r}", {"r": r}) as t:
                        t.result(r)
                    if r % 5 == 0:
                        try:
                            with a.llm_call(model="m", name=f"fail {i}.{r}"):
                                raise ValueError("no")
                        except ValueError:
                            pass
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors
    assert len(hub.traces) == 8 * rounds
    for i in range(8):
        for r in range(rounds):
            expected = {
                f"outer {i}.{r}": (None, "ok"),
                f"plan {i}.{r}": (f"outer {i}.{r}", "ok"),
                f"inner {i}.{r}": (f"outer {i}.{r}", "ok"),
                f"tool {i}.{r}": (f"inner {i}.{r}", "ok"),
            }
            if r % 5 == 0:
                expected[f"fail {i}.{r}"] = (f"outer {i}.{r}", "error")
            assert tree(hub, f"job-{i}-{r}") == expected
            summary = hub.traces.get(f"job-{i}-{r}")
            assert summary is not None and summary["prompt_tokens"] == 10 + i
            assert summary["agents"] == [f"agent{i}"] and summary["open"] == 0
        card = hub.agents.get(f"agent{i}")
        assert card is not None and card["prompt_tokens"] == (10 + i) * rounds
        assert card["completion_tokens"] == sum(range(rounds))


def test_content_capture_modes(clock: FakeClock) -> None:
    hostile = '<img src=x onerror="window.__pwned=1">'

    def llm_span(hub: Hub) -> dict[str, Any]:
        a = hub.agent("a")
        with a.llm_call(model="m", messages=[{"role": "user", "content": hostile}]) as c:
            c.output("x" * 20_000)
        return hub.traces.spans(c.trace_id or "", with_content=True)[0]

    kept = llm_span(Hub(clock=clock, collect_system=False))  # None: this kernel's is kept
    assert kept["input"] == [{"role": "user", "content": hostile}]
    assert len(kept["output"]) == CONTENT_LIMIT and kept["output"].endswith("chars]")
    off = llm_span(Hub(clock=clock, collect_system=False, capture_content=False))
    assert off["input"] is None and off["output"] is None

    remote = {
        "topic": "span.started",
        "agent": "r",
        "trace_id": "t",
        "span_id": "s",
        "data": {"name": "chat", "kind": "llm", "input": "secret prompt"},
    }
    default = Hub(clock=clock, collect_system=False)
    assert default.ingest(remote) is not None
    default.publish_many([{**remote, "span_id": "s2"}], remote=True)
    assert [s["input"] for s in default.traces.spans("t", with_content=True)] == [None, None]
    trusting = Hub(clock=clock, collect_system=False, capture_content=True)
    trusting.ingest(remote)
    assert trusting.traces.spans("t", with_content=True)[0]["input"] == "secret prompt"
    with pytest.raises(ValueError):
        Hub(capture_content="yes")  # type: ignore[arg-type]


def test_attributes_and_arguments_are_checked_in_the_caller(hub: Hub) -> None:
    a = hub.agent("a")
    with pytest.raises(TypeError):
        a.llm_call(model="m", attributes={"bad": object()})
    with pytest.raises(ValueError):
        a.span("x", kind="nope")
    with a.span("x", kind="embedding", attributes={"dims": 512}) as s:
        s.set(batch=3, note="y" * 5000)
        with pytest.raises(TypeError):
            s.set(obj=[1])
    got = hub.traces.spans(s.trace_id or "")[0]
    assert got["attributes"]["dims"] == 512 and got["attributes"]["batch"] == 3
    assert len(got["attributes"]["note"]) <= 1024
    with a.llm_call(model="m") as c, pytest.raises(ValueError):
        c.tokens(prompt=-1)
    with a.tool_call("weird", {"obj": object(), "n": float("nan")}) as t:
        t.result(object())  # not JSON: kept as its repr, never an error in the caller
    tool = hub.traces.spans(t.trace_id or "", with_content=True)[0]
    assert tool["input"]["n"] is None and tool["input"]["obj"].startswith("<object")


def test_logs_and_messages_carry_the_trace(hub: Hub) -> None:
    import logging

    a = hub.agent("a")
    b = hub.agent("b")
    handler = hub.capture_logging("test.calls")
    with a.task("t", job_id="job-9"), a.llm_call(model="m"):
        a.log("inside")
        logging.getLogger("test.calls").warning("from logging")
        a.send("b", "ask")
        with b.task("answer"):
            pass
    handler.detach()
    lines = {line["message"]: line for line in hub.logs.query()}
    assert lines["inside"]["trace"] == "job-9" and lines["from logging"]["trace"] == "job-9"
    t = hub.traces.trace("job-9")
    assert t is not None and [link[2] for link in t.links] == ["ask"]
    assert t.links[0][0] == 1 and t.links[0][1] == 2  # the llm call -> b's task


def test_agent_kind_spans_drive_the_card(hub: Hub, clock: FakeClock) -> None:
    hub.publish(
        "span.started", "otel_agent", trace_id="t", span_id="s", name="invoke", kind="agent"
    )
    assert hub.agents.get("otel_agent")["status"] == "active"  # type: ignore[index]
    clock.advance(2)
    hub.publish(
        "span.ended",
        "otel_agent",
        trace_id="t",
        span_id="s",
        status="error",
        error_type="Boom",
        error="x",
    )
    card = hub.agents.get("otel_agent")
    assert card is not None and card["tasks_failed"] == 1 and card["duration_mean"] == 2.0
    hub.publish(
        "span.ended",
        "otel_agent",
        trace_id="t",
        span_id="s2",
        kind="agent",
        start=clock() - 3,
        status="ok",
        model="mystery",
        prompt_tokens=5,
        completion_tokens=5,
    )
    card = hub.agents.get("otel_agent")
    assert card is not None and card["tasks_completed"] == 1 and card["cost_unknown"] == 1


def test_history_rebuilds_and_replays_traces(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    path = tmp_path / "runs.sqlite"
    hub = Hub(clock=clock, collect_system=False, history=str(path))
    a = hub.agent("a", model="m")
    hub.publish("job.enqueued", job_id="job-1", kind="k")
    with a.task("work", job_id="job-1"):
        clock.advance(1)
        with a.llm_call(model="m", messages="prompt") as c:
            clock.advance(1)
            c.first_token()
            mid = clock()
            clock.advance(1)
            c.tokens(prompt=10, completion=20)
        clock.advance(1)
    hub.publish("job.completed", job_id="job-1", success=True)
    assert hub.history is not None and hub.history.flush(timeout=10)

    past = hub.history.rebuild(until=mid)  # the moment the LLM call was streaming
    summary = past.traces.get("job-1")
    assert summary is not None and summary["status"] == "running" and summary["open"] == 2
    assert [s["status"] for s in past.traces.spans("job-1")] == ["running", "running"]
    full = hub.history.rebuild()
    assert tree(full, "job-1") == tree(hub, "job-1")
    assert full.traces.get("job-1") == hub.traces.get("job-1")

    async def replay() -> Hub:
        target = Hub(clock=FakeClock(T0 + 1_000), collect_system=False)
        assert hub.history is not None
        await hub.history.replay(target, speed=0)
        return target

    replayed = asyncio.run(replay())
    llm = next(s for s in replayed.traces.spans("job-1", with_content=True) if s["kind"] == "llm")
    assert llm["ttft"] == pytest.approx(1.0) and llm["input"] == "prompt"  # times moved together
    assert tree(replayed, "job-1") == tree(hub, "job-1")
    hub.history.close()
