"""A realistic mixed event stream shared by the benchmarks (seeded, deterministic)."""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Iterator
from typing import Any

AGENTS = ["request_planner", "code_planner", "coding_agent", "rag_service", "git_operations"]
FLOWS = [
    ("user", "request_planner", "request"),
    ("request_planner", "rag_service", "query"),
    ("request_planner", "code_planner", "plan_request"),
    ("code_planner", "coding_agent", "task_assignment"),
    ("coding_agent", "git_operations", "git_command"),
]

Item = tuple[str, "str | None", dict[str, Any]]


def _mixed_items(seed: int = 1, first_job: int = 0) -> Iterator[Item]:
    """The endless mixed stream: ten (topic, agent, data) items per job, jobs numbered from
    ``first_job + 1``, agents and flows drawn from ``seed``."""
    rng = random.Random(seed)
    job = first_job
    while True:
        job += 1
        job_id = f"job-{job}"
        agent = rng.choice(AGENTS)
        source, target, kind = rng.choice(FLOWS)
        yield from (
            ("job.enqueued", None, {"job_id": job_id, "kind": "code_generation"}),
            ("agent.status", agent, {"status": "active"}),
            ("agent.task.started", agent, {"task": f"Work on {job_id}", "job_id": job_id}),
            ("job.started", agent, {"job_id": job_id}),
            ("agent.message", source, {"target": target, "kind": kind}),
            ("agent.tokens", agent, {"prompt": 800, "completion": 200, "cost_usd": 0.004}),
            ("log", agent, {"level": "INFO", "message": f"{agent} handled {job_id}"}),
            ("agent.message", target, {"target": source, "kind": "reply"}),
            ("agent.task.completed", agent, {"duration": rng.uniform(0.5, 5.0)}),
            ("job.completed", agent, {"job_id": job_id, "success": True}),
        )


def mixed_stream(n: int, seed: int = 1) -> list[Item]:
    """``n`` (topic, agent, data) items: statuses, tasks, tokens, flows, jobs and logs."""
    return list(itertools.islice(_mixed_items(seed), n))


def flow_stream(n: int, seed: int = 1) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    return [rng.choice(FLOWS) for _ in range(n)]


def mixed_events(seed: int = 1, first_job: int = 0) -> Iterator[dict[str, Any]]:
    """An endless :func:`mixed_stream` as ``publish_many`` dicts, jobs numbered from ``first_job``
    (built on the fly, so a long run holds no pre-built stream in memory)."""
    for topic, who, data in _mixed_items(seed, first_job):
        yield {"topic": topic, "agent": who, "data": data}


def publish_seconds(hub: Any, items: list[Item]) -> float:
    """Seconds ``hub.publish`` takes over ``items`` (what the ingest and history sections time)."""
    publish = hub.publish
    t0 = time.perf_counter()
    for topic, agent, data in items:
        publish(topic, agent, data=data)
    return time.perf_counter() - t0


NEW_STORES = ("traces", "usage", "alerts")
"""The stores added by issues 15 and 18 (spans, alerts); before them a hub had the agent
registry, queue, graph, flows, logs, system and custom metrics stores."""


def without_new_stores(hub: Any) -> Any:
    """``hub`` as it was before traces and alerts: the subscriptions of the trace, usage and
    alert stores removed from its bus (the other stores, and the bus, untouched). Returns it."""
    stores = [hub.stores[name] for name in NEW_STORES]
    for sub in hub.bus.subscriptions:
        if getattr(sub.handler, "__self__", None) in stores:
            sub.close()
    return hub
