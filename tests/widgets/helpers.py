"""Event generators shared by the widget tests (the public hub API only)."""

from __future__ import annotations

import itertools
from typing import Any

from codeur_widgets.core.clock import FakeClock
from codeur_widgets.core.hub import Hub

AGENTS = [
    ("request_planner", "orchestrator", "gpt-4o"),
    ("code_planner", "planner", "gpt-4o-mini"),
    ("coding_agent", "executor", "gpt-4o"),
    ("rag_service", "service", None),
    ("git_operations", "service", None),
]
FLOWS = [
    ("request_planner", "code_planner"),
    ("code_planner", "coding_agent"),
    ("coding_agent", "git_operations"),
    ("request_planner", "rag_service"),
]
LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"]


def register_agents(hub: Hub, clock: FakeClock | None = None) -> None:
    """Register the Codeur agents in order (a fake clock is advanced between them)."""
    for name, role, model in AGENTS:
        if clock is not None:
            clock.advance(0.001)
        data: dict[str, Any] = {"role": role}
        if model:
            data["model"] = model
        hub.publish("agent.registered", name, data=data)
        hub.publish("agent.heartbeat", name)
        hub.publish("agent.status", name, status="idle")


def sample(ts: float, cores: int = 4, gpus: int = 0) -> dict[str, Any]:
    """A system.sample payload shaped like SystemSampler's ``latest``."""
    return {
        "ts": ts,
        "cpu": 12.5,
        "per_core": [10.0 + i for i in range(cores)],
        "freq_mhz": 2400.0,
        "mem_percent": 40.0,
        "mem_used": 1.0e9,
        "mem_total": 2.4e10,
        "swap_percent": 0.0,
        "rss": 1.2e8,
        "threads": 12,
        "proc_cpu": 3.0,
        "gpus": [
            {
                "index": i,
                "name": "H100",
                "load": 50.0,
                "mem_used": 1e9,
                "mem_total": 8e10,
                "temperature": 40.0,
            }
            for i in range(gpus)
        ],
    }


_counter = itertools.count()


def storm(hub: Hub, n: int) -> None:
    """``n`` events touching every store but ``system``: tasks, tokens, flows, jobs, logs."""
    for _ in range(n):
        i = next(_counter)
        name = AGENTS[i % len(AGENTS)][0]
        k = i % 8
        if k == 0:
            hub.publish(
                "agent.task.started", name, task=f"task {i}", job_id=f"job-{i}", task_id=f"t{i}"
            )
        elif k == 1:
            hub.publish("agent.task.completed", name, task_id=f"t{i - 1}", duration=0.5 + i % 7)
        elif k == 2:
            hub.publish("agent.tokens", name, prompt=100, completion=20, cost_usd=0.001)
        elif k in (3, 4):
            src, dst = FLOWS[i % len(FLOWS)]
            hub.publish("agent.message", src, target=dst, kind="call")
        elif k == 5:
            hub.publish("job.enqueued", job_id=f"job-{i}", kind="code_generation")
        elif k == 6:
            hub.publish("job.completed", job_id=f"job-{i - 1}", success=i % 5 != 0)
        else:
            hub.publish("log", name, level=LEVELS[i % 4], message=f"line {i} from {name}")
