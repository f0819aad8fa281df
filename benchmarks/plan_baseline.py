"""A literal *reading* of the original plan's ingest path, as the baseline for benchmarks.

Written from the plan's description (shared/seed), not copied: the same data structures and the
same work per event, so that a benchmark compares algorithms, not implementations:

* the registry takes an ``asyncio.Lock`` and broadcasts the agent's whole state on every update;
* queue metrics broadcast after every job event, recomputing averages over the last 100 jobs of a
  1,000-entry history and ``completed_last_hour`` by scanning that history;
* the flow tracker appends to a 10,000-entry history, rebuilds and broadcasts the whole graph with
  stats recomputed over that history on every message, and creates one asyncio task per message
  that sleeps, decays the edge and broadcasts the graph again.

The broadcaster counts messages and serialises them as a WebSocket server would (``json.dumps``),
instead of sending them. Used only by ``benchmarks/``; never imported by the package.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict, deque
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any


class CountingBroadcaster:
    """Stands in for the plan's WebSocket service: serialises and counts each broadcast."""

    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0

    async def broadcast(self, message: dict[str, Any], topic: str = "") -> None:
        self.messages += 1
        self.bytes += len(json.dumps(message, default=str))


@dataclass
class PlanAgentState:
    agent_type: str
    status: str
    model: str
    current_task: str | None = None
    last_heartbeat: datetime = field(default_factory=datetime.utcnow)
    metrics: dict[str, float] = field(default_factory=dict)


class PlanRegistry:
    def __init__(self, out: CountingBroadcaster) -> None:
        self.agents: dict[str, PlanAgentState] = {}
        self.out = out
        self.lock = asyncio.Lock()

    async def register(self, agent_type: str, model: str) -> None:
        async with self.lock:
            self.agents[agent_type] = PlanAgentState(agent_type, "idle", model)
        await self._send(agent_type)

    async def status(self, agent_type: str, status: str, task: str | None = None) -> None:
        async with self.lock:
            state = self.agents.get(agent_type)
            if state is not None:
                state.status, state.current_task = status, task
                state.last_heartbeat = datetime.utcnow()
        await self._send(agent_type)

    async def metrics(self, agent_type: str, values: dict[str, float]) -> None:
        async with self.lock:
            state = self.agents.get(agent_type)
            if state is not None:
                state.metrics.update(values)  # overwrites counters, as the plan does
        await self._send(agent_type)

    async def _send(self, agent_type: str) -> None:
        state = self.agents.get(agent_type)
        if state is not None:
            await self.out.broadcast({"type": "agent_update", "data": asdict(state)}, "agents")


class PlanQueue:
    def __init__(self, out: CountingBroadcaster) -> None:
        self.out = out
        self.history: deque[dict[str, Any]] = deque(maxlen=1000)
        self.active: dict[str, dict[str, Any]] = {}

    async def enqueued(self, job_id: str, kind: str) -> None:
        self.active[job_id] = {"type": kind, "enqueued_at": datetime.utcnow(), "status": "queued"}
        await self._send()

    async def started(self, job_id: str, agent: str) -> None:
        job = self.active.get(job_id)
        if job is not None:
            job.update(started_at=datetime.utcnow(), status="processing", agent_type=agent)
        await self._send()

    async def completed(self, job_id: str, success: bool = True) -> None:
        job = self.active.pop(job_id, None)
        if job is not None:
            job["completed_at"] = datetime.utcnow()
            job["success"] = success
            self.history.append(job)
        await self._send()

    async def _send(self) -> None:
        queued = sum(1 for j in self.active.values() if j["status"] == "queued")
        processing = sum(1 for j in self.active.values() if j["status"] == "processing")
        recent = list(self.history)[-100:]
        waits = [
            (j["started_at"] - j["enqueued_at"]).total_seconds()
            for j in recent
            if "started_at" in j
        ]
        cutoff = datetime.utcnow() - timedelta(hours=1)
        await self.out.broadcast(
            {
                "type": "queue_metrics",
                "data": {
                    "queue_length": queued,
                    "processing": processing,
                    "avg_wait_time": sum(waits) / len(waits) if waits else 0,
                    "completed_last_hour": sum(
                        1 for j in self.history if j.get("completed_at", datetime.min) > cutoff
                    ),
                },
            },
            "metrics",
        )


PLAN_NODES = {
    "request_planner": ("RP", "orchestrator", (200, 100)),
    "code_planner": ("CP", "planner", (400, 200)),
    "coding_agent": ("CA", "executor", (600, 200)),
    "rag_service": ("RAG", "service", (300, 350)),
    "git_operations": ("Git", "service", (500, 350)),
}
PLAN_EDGES = [
    ("request_planner", "code_planner", 1.0, "delegates"),
    ("request_planner", "rag_service", 0.5, "queries"),
    ("code_planner", "coding_agent", 1.0, "assigns"),
    ("coding_agent", "git_operations", 0.8, "uses"),
    ("rag_service", "git_operations", 0.3, "indexes"),
]


class PlanFlowTracker:
    def __init__(self, out: CountingBroadcaster, decay_delay: float = 2.0) -> None:
        self.out = out
        self.decay_delay = decay_delay
        self.active: defaultdict[tuple[str, str], float] = defaultdict(float)
        self.history: deque[dict[str, Any]] = deque(maxlen=10_000)
        self.tasks: set[asyncio.Task[None]] = set()

    async def track(self, source: str, target: str, kind: str) -> None:
        key = (source, target)
        self.active[key] += 1
        self.history.append(
            {"from": source, "to": target, "type": kind, "timestamp": datetime.utcnow()}
        )
        await self._send()
        task = asyncio.create_task(self._decay(key))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _decay(self, key: tuple[str, str]) -> None:
        await asyncio.sleep(self.decay_delay)
        self.active[key] = max(0, self.active[key] - 1)
        if self.active[key] == 0:
            del self.active[key]
        await self._send()

    def _graph(self) -> dict[str, Any]:
        nodes = [
            {"id": n, "label": label, "type": kind, "x": pos[0], "y": pos[1]}
            for n, (label, kind, pos) in PLAN_NODES.items()
        ]
        edges = []
        for s, t, w, kind in PLAN_EDGES:
            edge: dict[str, Any] = {"source": s, "target": t, "type": kind, "weight": w}
            if (s, t) in self.active:
                edge.update(flow=self.active[(s, t)], active=True)
            edges.append(edge)
        return {"nodes": nodes, "edges": edges}

    def _stats(self) -> dict[str, Any]:
        cutoff = datetime.utcnow() - timedelta(minutes=1)
        recent = [f for f in self.history if f["timestamp"] > cutoff]
        counts: defaultdict[tuple[str, str], int] = defaultdict(int)
        for f in recent:
            counts[(f["from"], f["to"])] += 1
        busiest = max(counts.items(), key=lambda kv: kv[1])[0] if counts else None
        return {
            "total_messages": len(recent),
            "active_edges": len(self.active),
            "busiest_edge": busiest,
        }

    async def _send(self) -> None:
        data = self._graph()
        data["stats"] = self._stats()
        await self.out.broadcast({"type": "graph_update", "data": data}, "graph")

    async def cancel(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
