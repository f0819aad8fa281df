"""The trace store folds the hub's events in batches: the same result as one at a time.

The hub hands each event to the store's pending list and the store folds the list in every
``FOLD_BATCH`` events or on any read (see ``TraceStore``'s docstring). These tests hold it to
what folding each event as it arrives gives, including what depends on the moment it arrived.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from codeur_widgets.core.events import Event
from codeur_widgets.core.hub import Hub
from codeur_widgets.core.prices import Prices
from codeur_widgets.core.traces import FOLD_BATCH, TraceStore
from codeur_widgets.sim import Simulator


def _one_at_a_time(hub: Hub) -> Hub:
    """``hub`` with its trace store fed through ``apply`` (each event folded as it comes)."""
    store = hub.traces
    for sub in list(hub.bus.subscriptions):
        if getattr(sub.handler, "__self__", None) is store:
            sub.close()
    for pattern in TraceStore.topics:
        hub.bus.subscribe(pattern, store.apply)
    return hub


def _state(store: TraceStore) -> dict[str, Any]:
    return {
        "counters": store.counters(),
        "agents": store.agents(),
        "traces": {
            i: (store.get(i), store.spans(i, with_content=True), store.trace(i).links)  # type: ignore[union-attr]
            for i in store.ids()
        },
    }


def test_the_simulators_traces_are_what_folding_each_event_gives() -> None:
    """Nested tasks, LLM and tool calls with content, messages, failures and usage: a run of
    the simulator, folded in batches by the hub, then each event folded as it comes."""
    recorded: list[Event] = []

    async def main() -> Hub:
        hub = Hub(collect_system=False, default_alerts=False)
        hub.bus.subscribe("*", recorded.append)
        hub.start()
        sim = Simulator(hub, seed=11, time_scale=200.0)
        sim.start(jobs_per_minute=3000, concurrency=4)
        deadline = asyncio.get_running_loop().time() + 30
        while len(recorded) < 6 * FOLD_BATCH and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        sim.stop()
        await hub.aclose()
        return hub

    batched = asyncio.run(main())
    assert len(recorded) >= 6 * FOLD_BATCH, len(recorded)
    reference = _one_at_a_time(Hub(collect_system=False, default_alerts=False))
    reference.publish_many(recorded)
    got, want = _state(batched.traces), _state(reference.traces)
    assert want["counters"]["spans"] > 50 and any(
        s["kind"] == "llm" and s["input"] for _, spans, _ in want["traces"].values() for s in spans
    )
    assert got == want


def test_usage_without_a_job_counts_in_the_job_its_agent_had_when_it_arrived() -> None:
    """An ``agent.tokens`` naming no trace or job counts in the job the agent worked on then,
    though the agent moved on to another job before the batch was folded."""
    hub = Hub(collect_system=False)
    publish = hub.publish
    publish("agent.task.started", "coder", task="first", task_id="s1", job_id="job-1")
    publish("agent.tokens", "coder", prompt=100, completion=20, cost_usd=0.25)
    publish("agent.task.completed", "coder", task_id="s1", job_id="job-1")
    publish("agent.task.started", "coder", task="second", task_id="s2", job_id="job-2")
    assert hub.traces._pending, "the events are still waiting to be folded in"
    assert hub.traces.get("job-1")["cost_usd"] == 0.25  # type: ignore[index]
    assert hub.traces.get("job-2")["cost_usd"] == 0.0  # type: ignore[index]
    assert hub.traces.span("job-1", "s1")["prompt_tokens"] == 100  # type: ignore[index]


def test_a_price_set_after_a_call_does_not_reprice_it() -> None:
    hub = Hub(collect_system=False, prices=Prices(table=False))
    done = {"status": "ok", "model": "house-llm", "prompt_tokens": 10**6, "completion_tokens": 0}
    hub.publish("span.started", "a", trace_id="t", span_id="s1", kind="llm", model="house-llm")
    hub.publish("span.ended", "a", trace_id="t", span_id="s1", **done)
    hub.prices.set("house-llm", input_per_mtok=3.0, output_per_mtok=15.0)
    hub.publish("span.started", "a", trace_id="t", span_id="s2", kind="llm", model="house-llm")
    hub.publish("span.ended", "a", trace_id="t", span_id="s2", **done)
    first, second = hub.traces.span("t", "s1"), hub.traces.span("t", "s2")
    assert first["cost_usd"] is None and first["cost_unknown"]  # type: ignore[index]
    assert second["cost_usd"] == 3.0  # type: ignore[index]


def test_content_capture_turned_off_keeps_what_came_before() -> None:
    hub = Hub(collect_system=False)
    hub.publish("span.started", "a", trace_id="t", span_id="s1", kind="tool", input="ls -la")
    hub.capture_content = False
    hub.publish("span.started", "a", trace_id="t", span_id="s2", kind="tool", input="rm -rf /")
    assert hub.traces.span("t", "s1")["input"] == "ls -la"  # type: ignore[index]
    assert hub.traces.span("t", "s2")["input"] is None  # type: ignore[index]


def test_an_event_that_fails_in_a_batch_is_counted_and_the_rest_are_folded() -> None:
    hub = Hub(collect_system=False)
    handlers = hub.traces._handlers
    real = handlers["job.started"]

    def flaky(event: Event) -> None:
        if event.data["job_id"] == "job-3":
            raise RuntimeError("a bug in one handler")
        real(event)

    handlers["job.started"] = flaky
    for i in range(1, 6):
        hub.publish("job.enqueued", job_id=f"job-{i}", kind="build")
        hub.publish("job.started", job_id=f"job-{i}")
    states = {i: hub.traces.trace(i).job_state for i in hub.traces.ids()}  # type: ignore[union-attr]
    assert states == {
        "job-5": "running", "job-4": "running", "job-3": "queued", "job-2": "running",
        "job-1": "running",
    }  # fmt: skip
    assert hub.bus.handler_errors == 1


def test_pending_events_stay_within_one_batch() -> None:
    hub = Hub(collect_system=False)
    for i in range(10 * FOLD_BATCH + 7):
        hub.publish("job.enqueued", job_id=f"job-{i}", kind="build")
        assert len(hub.traces._pending) < FOLD_BATCH
    assert len(hub.traces) == 500 and hub.traces.evicted == 10 * FOLD_BATCH + 7 - 500


def test_reads_from_another_thread_fold_without_losing_or_repeating_events() -> None:
    """A thread reading the store folds the batch while events keep arriving: each event is
    folded exactly once, in order."""
    hub = Hub(collect_system=False)
    jobs = 20_000
    stop = threading.Event()
    reads = 0

    def reader() -> None:
        nonlocal reads
        while not stop.is_set():
            hub.traces.version  # noqa: B018  # a read: folds what is pending
            reads += 1

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(jobs):
            job = f"job-{i}"
            hub.publish("job.enqueued", job_id=job, kind="build")
            hub.publish("agent.task.started", "coder", task="t", task_id=f"s{i}", job_id=job)
            hub.publish("agent.tokens", "coder", prompt=3, completion=1, cost_usd=0.5)
            hub.publish("agent.task.completed", "coder", task_id=f"s{i}", job_id=job)
            hub.publish("job.completed", job_id=job, success=True)
    finally:
        stop.set()
        thread.join()
    store = hub.traces
    assert reads > 10
    assert len(store) + store.evicted == jobs and store.late == 0 and store.ignored == 0
    kept = [store.get(i) for i in store.ids()]
    assert {(t["status"], t["prompt_tokens"], t["cost_usd"], t["spans"]) for t in kept} == {  # type: ignore[index]
        ("ok", 3, 0.5, 1)
    }
