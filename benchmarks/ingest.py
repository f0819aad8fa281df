"""Ingest throughput: ``Hub.publish`` / ``publish_many`` against the plan's literal reading."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from codeur_widgets.core.events import Event
from codeur_widgets.core.hub import Hub

from .plan_baseline import CountingBroadcaster, PlanFlowTracker, PlanQueue, PlanRegistry
from .workload import AGENTS, flow_stream, mixed_stream, publish_seconds


def _best_rate(run: Any, n: int, repeats: int = 3) -> float:
    """Events per second, best of ``repeats`` (the least disturbed run on a noisy machine)."""
    best = float("inf")
    for _ in range(repeats):
        elapsed = run()
        best = min(best, elapsed)
    return n / best


def hub_publish_rate(n: int = 100_000) -> float:
    items = mixed_stream(n)

    return _best_rate(lambda: publish_seconds(Hub(collect_system=False), items), n)


def hub_publish_many_rate(n: int = 100_000, batch: int = 1_000) -> float:
    items = mixed_stream(n)

    def run() -> float:
        hub = Hub(collect_system=False)
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            hub.publish_many(
                Event.create(topic, agent, data, clock=hub.clock)
                for topic, agent, data in items[i : i + batch]
            )
        return time.perf_counter() - t0

    return _best_rate(run, n)


def hub_flow_rate(n: int = 100_000) -> float:
    flows = flow_stream(n)

    def run() -> float:
        hub = Hub(collect_system=False)
        t0 = time.perf_counter()
        for source, target, kind in flows:
            hub.publish("agent.message", source, target=target, kind=kind)
        return time.perf_counter() - t0

    return _best_rate(run, n)


WARM = 10_000
"""Messages sent to the plan's FlowTracker before timing: its 10,000-entry history is then full,
as it is in steady state at any real rate (a cold history would flatter it)."""


async def _warm(tracker: PlanFlowTracker) -> None:
    for source, target, kind in flow_stream(WARM, seed=2):
        await tracker.track(source, target, kind)


def plan_flow_rate(n: int = 3_000) -> float:
    """The plan's FlowTracker: a graph broadcast, stats over history and a task per message."""
    flows = flow_stream(n)

    async def run_async() -> float:
        tracker = PlanFlowTracker(CountingBroadcaster())
        await _warm(tracker)
        t0 = time.perf_counter()
        for source, target, kind in flows:
            await tracker.track(source, target, kind)
        elapsed = time.perf_counter() - t0
        await tracker.cancel()
        return elapsed

    return _best_rate(lambda: asyncio.run(run_async()), n, repeats=1)


def plan_mixed_rate(n: int = 3_000) -> float:
    """The plan's registry + queue metrics + flow tracker on the same mixed stream."""
    items = mixed_stream(n)

    async def run_async() -> float:
        out = CountingBroadcaster()
        registry, queue, flows = PlanRegistry(out), PlanQueue(out), PlanFlowTracker(out)
        for name in AGENTS:
            await registry.register(name, "gpt-4o")
        await _warm(flows)
        t0 = time.perf_counter()
        for topic, agent, data in items:
            if topic == "agent.message":
                await flows.track(agent or "?", data["target"], data["kind"])
            elif topic == "job.enqueued":
                await queue.enqueued(data["job_id"], data["kind"])
            elif topic == "job.started":
                await queue.started(data["job_id"], agent or "?")
            elif topic == "job.completed":
                await queue.completed(data["job_id"], data["success"])
            elif topic in ("agent.status", "agent.task.started") and agent:
                await registry.status(agent, "active", data.get("task"))
            elif topic == "agent.task.completed" and agent:
                await registry.metrics(
                    agent, {"tasks_completed": 1, "avg_task_duration": data["duration"]}
                )
                await registry.status(agent, "idle")
            elif topic == "agent.tokens" and agent:
                await registry.metrics(agent, {"tokens_used": data["prompt"] + data["completion"]})
            # log lines: the plan's handler broadcasts each; counted as a broadcast here
            elif topic == "log":
                await out.broadcast({"type": "log_entry", "data": data}, "logs")
        elapsed = time.perf_counter() - t0
        await flows.cancel()
        return elapsed

    return _best_rate(lambda: asyncio.run(run_async()), n, repeats=1)


PLAN_RATIO = 20.0
"""Issue 5: the hub ingests at least 20× the plan's rate on the same stream."""
PUBLISH_RATE = 100_000.0
PUBLISH_MANY_RATE = 200_000.0


def run(ctx: Any) -> Any:
    """Section 1: ingest throughput, side by side with the plan's literal reading."""
    from ._report import Section, fmt_rate

    n = 30_000 if ctx.quick else 100_000
    section = Section("ingest", "1. Ingest (events/s, best of 3, same run)")
    publish = hub_publish_rate(n)
    many = hub_publish_many_rate(n)
    flows = hub_flow_rate(n)
    plan_flows = plan_flow_rate()
    plan_mixed = plan_mixed_rate()
    t = section.table("path", "events/s", "ratio")
    t.add("mixed stream: Hub.publish", fmt_rate(publish), f"{publish / plan_mixed:,.0f}× plan")
    t.add("mixed stream: Hub.publish_many", fmt_rate(many), f"{many / plan_mixed:,.0f}× plan")
    t.add("mixed stream: plan (literal reading)", fmt_rate(plan_mixed), "1×")
    t.add("flows only: Hub.publish", fmt_rate(flows), f"{flows / plan_flows:,.0f}× plan")
    t.add("flows only: plan FlowTracker", fmt_rate(plan_flows), "1×")
    ratio = min(publish, many) / plan_mixed
    section.budget(
        "ingest: ratio to the plan (mixed stream)",
        f">= {PLAN_RATIO:.0f}×",
        f"{ratio:,.0f}×",
        ratio >= PLAN_RATIO,
    )
    section.budget(
        "ingest: Hub.publish", f">= {fmt_rate(PUBLISH_RATE)}/s", f"{fmt_rate(publish)}/s",
        publish >= PUBLISH_RATE,
    )  # fmt: skip
    section.budget(
        "ingest: Hub.publish_many", f">= {fmt_rate(PUBLISH_MANY_RATE)}/s", f"{fmt_rate(many)}/s",
        many >= PUBLISH_MANY_RATE,
    )  # fmt: skip
    section.data.update(
        publish=publish,
        publish_many=many,
        flows=flows,
        plan_flows=plan_flows,
        plan_mixed=plan_mixed,
    )
    return section
