"""A seeded, time-scaled simulator of Codeur jobs, driven only through the public agent API.

One job goes user → request_planner (with RAG queries) → code_planner → coding_agent (with git
commands) → done, publishing the same events real agents would: tasks, tokens and cost, messages
between agents (flows), job lifecycle and log lines. ``time_scale=10`` runs ten times faster than
real time; the same ``seed`` gives the same sequence of events (timestamps and ids aside).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import random
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..core.agent import AgentHandle
    from ..core.hub import Hub

__all__ = ["DEFAULT_AGENTS", "Simulator"]

DEFAULT_AGENTS: dict[str, tuple[str, str]] = {
    "request_planner": ("orchestrator", "gpt-4o"),
    "code_planner": ("planner", "claude-sonnet"),
    "coding_agent": ("executor", "gpt-4o"),
    "rag_service": ("service", "text-embedding-3-small"),
    "git_operations": ("service", "git"),
}
"""name → (role, model) of the Codeur pipeline's agents."""

USER = "user"  # the graph's source node; part of the default topology

FAILURES = {
    "request_planner": TimeoutError("LLM call timed out after 60 s"),
    "code_planner": ValueError("plan did not validate against the repository layout"),
    "coding_agent": RuntimeError("tests failed after applying the patch"),
    "rag_service": ConnectionError("vector index unreachable"),
    "git_operations": RuntimeError("git push rejected: non-fast-forward"),
}


class InjectedError(Exception):
    """Raised inside a simulated task by :meth:`Simulator.inject_error`."""


class Simulator:
    """Drives a :class:`~codeur_widgets.core.hub.Hub` with realistic Codeur activity.

    Args:
        hub: the hub to publish to.
        seed: makes every choice (durations, token counts, branches) reproducible.
        time_scale: speed-up factor for all simulated waits (10 = ten times faster).
        agents: ``{name: (role, model)}``; defaults to :data:`DEFAULT_AGENTS`.
    """

    def __init__(
        self,
        hub: Hub,
        seed: int | None = None,
        time_scale: float = 1.0,
        agents: dict[str, tuple[str, str]] | None = None,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        self.hub = hub
        self.seed = seed
        self.time_scale = float(time_scale)
        self.rng = random.Random(seed)
        spec = agents or DEFAULT_AGENTS
        missing = set(DEFAULT_AGENTS) - set(spec)
        if missing:
            raise ValueError(f"the simulated pipeline needs agents {sorted(missing)}")
        self.agents: dict[str, AgentHandle] = {
            name: hub.agent(name, model=model, role=role) for name, (role, model) in spec.items()
        }
        self._failing: set[str] = set()
        self._jobs = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: asyncio.Task[None] | None = None
        self.jobs_started = 0
        self.jobs_completed = 0
        self.jobs_failed = 0
        self.paused: set[str] = set()
        for name, handle in self.agents.items():
            handle.on_command(functools.partial(self._obey, name))

    # -- control ----------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._runner is not None and not self._runner.done()

    def inject_error(self, agent: str) -> None:
        """Make ``agent``'s next task fail with a realistic exception."""
        if agent not in self.agents:
            raise KeyError(f"unknown agent {agent!r}; known: {sorted(self.agents)}")
        self._failing.add(agent)

    def _obey(self, agent: str, command: str, args: dict[str, Any]) -> None:
        """Follow an ``admin.command`` sent to one of the simulated agents."""
        if command == "pause":
            self.paused.add(agent)
        elif command == "resume":
            self.paused.discard(agent)
        elif command == "restart":
            self.paused.discard(agent)
            self.agents[agent].status("idle")

    async def _sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self.time_scale)

    def _think(self, low: float, high: float) -> float:
        return self.rng.uniform(low, high)

    # -- one job ----------------------------------------------------------------------------------
    async def run_job(self, job_id: str | None = None, kind: str = "code_generation") -> dict:
        """Take one job through the whole pipeline; returns a summary dict."""
        job_id = job_id or f"job-{next(self._jobs)}"
        hub = self.hub
        rp, cp = self.agents["request_planner"], self.agents["code_planner"]
        ca = self.agents["coding_agent"]
        self.jobs_started += 1
        hub.publish_threadsafe("job.enqueued", data={"job_id": job_id, "kind": kind})
        hub.publish_threadsafe("agent.message", USER, data={"target": rp.name, "kind": "request"})
        await self._sleep(self._think(0.1, 0.8))
        hub.publish_threadsafe("job.started", rp.name, data={"job_id": job_id})
        try:
            async with rp.task(f"Plan request {job_id}", job_id=job_id) as t:
                await self._maybe_fail(rp.name)
                for _ in range(self.rng.randint(1, 3)):
                    await self._rag_query(rp, job_id)
                t.tokens(*self._usage(600, 1800, 80, 400))
                rp.send(cp.name, "plan_request", job_id=job_id)
            async with cp.task(f"Create plan for {job_id}", job_id=job_id) as t:
                await self._maybe_fail(cp.name)
                await self._rag_query(cp, job_id)
                await self._sleep(self._think(1.0, 3.0))
                steps = self.rng.randint(2, 5)
                t.tokens(*self._usage(1200, 3000, 200, 900))
                t.log(f"plan for {job_id} has {steps} steps")
                cp.send(ca.name, "task_assignment", job_id=job_id, steps=steps)
            async with ca.task(f"Implement {job_id}", job_id=job_id) as t:
                await self._maybe_fail(ca.name)
                for step in range(steps):
                    await self._sleep(self._think(0.5, 2.0))
                    t.tokens(*self._usage(800, 2500, 150, 1200))
                    if self.rng.random() < 0.3:
                        await self._rag_query(ca, job_id)
                    t.log(f"step {step + 1}/{steps} of {job_id} done")
                for _ in range(self.rng.randint(1, 3)):
                    await self._git(ca, job_id)
        except asyncio.CancelledError:
            hub.publish_threadsafe(
                "job.completed", data={"job_id": job_id, "success": False, "status": "cancelled"}
            )
            raise
        except Exception as exc:
            self.jobs_failed += 1
            hub.publish_threadsafe(
                "log",
                "coding_agent" if isinstance(exc, InjectedError) else None,
                data={"level": "ERROR", "message": f"{job_id} failed: {exc}", "logger": "codeur"},
            )
            hub.publish_threadsafe(
                "job.completed", data={"job_id": job_id, "success": False, "status": "failed"}
            )
            return {"job_id": job_id, "success": False, "error": str(exc)}
        self.jobs_completed += 1
        ca.send(USER, "result", job_id=job_id)
        hub.publish_threadsafe("job.completed", data={"job_id": job_id, "success": True})
        return {"job_id": job_id, "success": True, "steps": steps}

    def _usage(self, p_lo: int, p_hi: int, c_lo: int, c_hi: int) -> tuple[int, int, float]:
        prompt = self.rng.randint(p_lo, p_hi)
        completion = self.rng.randint(c_lo, c_hi)
        # Roughly gpt-4o-class prices: $2.50 / 1M prompt, $10 / 1M completion tokens.
        return prompt, completion, round(prompt * 2.5e-6 + completion * 1e-5, 6)

    async def _maybe_fail(self, agent: str) -> None:
        while agent in self.paused:  # an admin "pause" holds the agent's next task
            await self._sleep(0.5)
        if agent in self._failing:
            self._failing.discard(agent)
            error = FAILURES.get(agent, RuntimeError("simulated failure"))
            raise type(error)(*error.args)

    async def _rag_query(self, asker: AgentHandle, job_id: str) -> None:
        rag = self.agents["rag_service"]
        asker.send(rag.name, "query", job_id=job_id)
        async with rag.task(f"Retrieve context for {job_id}", job_id=job_id) as t:
            await self._maybe_fail(rag.name)
            await self._sleep(self._think(0.1, 0.5))
            t.tokens(self.rng.randint(50, 300), 0, 0.00001)
        rag.send(asker.name, "context", job_id=job_id)
        if self.rng.random() < 0.2:
            rag.send("git_operations", "index", job_id=job_id)

    async def _git(self, ca: AgentHandle, job_id: str) -> None:
        git = self.agents["git_operations"]
        command = self.rng.choice(["status", "diff", "commit", "push"])
        ca.send(git.name, "git_command", job_id=job_id, command=command)
        async with git.task(f"git {command} ({job_id})", job_id=job_id):
            await self._maybe_fail(git.name)
            await self._sleep(self._think(0.05, 0.4))
        git.send(ca.name, "git_result", job_id=job_id)

    # -- background load --------------------------------------------------------------------------
    def start(self, jobs_per_minute: float = 30.0, concurrency: int = 2) -> Simulator:
        """Run jobs in the background on the running loop until :meth:`stop` (idempotent)."""
        if jobs_per_minute <= 0 or concurrency < 1:
            raise ValueError("jobs_per_minute must be > 0 and concurrency >= 1")
        if self.running:
            return self
        loop = asyncio.get_running_loop()  # a notebook cell has one; raises clearly otherwise
        if not self.hub.running:
            self.hub.start()
        self._runner = loop.create_task(self._run_forever(jobs_per_minute, concurrency))
        return self

    async def _run_forever(self, jobs_per_minute: float, concurrency: int) -> None:
        slots = asyncio.Semaphore(concurrency)
        mean_gap = 60.0 / jobs_per_minute
        while True:
            await slots.acquire()
            task = asyncio.get_running_loop().create_task(self.run_job())
            self._tasks.add(task)
            task.add_done_callback(functools.partial(self._job_done, slots))
            await self._sleep(self.rng.expovariate(1.0 / mean_gap))

    def _job_done(self, slots: asyncio.Semaphore, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        slots.release()

    def stop(self) -> None:
        """Stop starting jobs and cancel the ones in flight (idempotent)."""
        if self._runner is not None:
            self._runner.cancel()
        for task in list(self._tasks):
            task.cancel()

    async def aclose(self) -> None:
        """Stop and wait for the cancelled tasks to finish."""
        pending = [t for t in [self._runner, *self._tasks] if t is not None]
        self.stop()
        await asyncio.gather(*pending, return_exceptions=True)
        self._runner = None

    async def flood(self, rate: float, seconds: float, batch: int = 1000) -> int:
        """Publish a realistic mix at ``rate`` events/s for ``seconds``; returns the count.

        Uses ``hub.publish_many`` in batches and yields to the loop between them, so the
        dashboard keeps rendering while the flood runs. Time is real time (not scaled).
        """
        from ..core.events import Event

        if rate <= 0 or seconds <= 0:
            raise ValueError("rate and seconds must be > 0")
        loop = asyncio.get_running_loop()
        names = list(self.agents)
        edges = [
            (USER, "request_planner", "request"),
            ("request_planner", "rag_service", "query"),
            ("request_planner", "code_planner", "plan_request"),
            ("code_planner", "coding_agent", "task_assignment"),
            ("coding_agent", "git_operations", "git_command"),
        ]
        clock = self.hub.clock
        start = loop.time()
        sent = 0
        job = 0
        total = int(rate * seconds)
        while sent < total:
            due = min(total, int((loop.time() - start) * rate) + batch)
            events: list[Event] = []
            while sent + len(events) < due:
                i = sent + len(events)
                agent = names[i % len(names)]
                kind = i % 6
                if kind == 0:
                    source, target, what = edges[i % len(edges)]
                    events.append(
                        Event.create(
                            "agent.message", source, {"target": target, "kind": what}, clock=clock
                        )
                    )
                elif kind == 1:
                    events.append(
                        Event.create(
                            "agent.tokens",
                            agent,
                            {"prompt": 100, "completion": 20, "cost_usd": 0.0001},
                            clock=clock,
                        )
                    )
                elif kind == 2:
                    events.append(
                        Event.create(
                            "log", agent, {"level": "INFO", "message": f"flood {i}"}, clock=clock
                        )
                    )
                elif kind == 3:
                    job += 1
                    events.append(
                        Event.create("job.enqueued", None, {"job_id": f"flood-{job}"}, clock=clock)
                    )
                elif kind == 4:
                    events.append(
                        Event.create(
                            "job.completed",
                            None,
                            {"job_id": f"flood-{job}", "success": True},
                            clock=clock,
                        )
                    )
                else:
                    events.append(Event.create("agent.heartbeat", agent, clock=clock))
            self.hub.publish_many(events)
            sent += len(events)
            # Sleep until the next batch is due (yields to the render tick and the kernel).
            wait = start + sent / rate - loop.time()
            await asyncio.sleep(max(0.0, wait))
        return sent
