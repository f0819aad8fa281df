"""A seeded, time-scaled simulator of Codeur jobs, driven only through the public agent API.

One job goes user → request_planner (with RAG queries) → code_planner → coding_agent (with git
commands) → done, publishing the same events real agents would: tasks, tokens and cost, messages
between agents (flows), job lifecycle and log lines. Inside the tasks it makes the spans of a
trace (:mod:`codeur_widgets.core.spans`) with ``llm_call``, ``tool_call`` and ``retrieval``: the
planners' LLM calls with their prompts and answers (streamed: a first token, then the rest), the
RAG service's vector searches, the coding agent's LLM calls and tools (``apply_patch``,
``run_tests``) and git's commands (``git commit``…); now and then an LLM call is slow (a provider
queueing), and a ``git push`` is rejected once, then pulled and pushed again (a red span in a
job that still succeeds). Costs come from the hub's price table (``genai-prices``).
``time_scale=10`` runs ten times faster than real time; the same ``seed`` gives the same
sequence of events (timestamps and ids aside).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import random
from collections import Counter
from typing import TYPE_CHECKING, Any

from ..core.events import Event
from ..core.tasks import wait_cancelled

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from ..core.agent import AgentHandle
    from ..core.hub import Hub

__all__ = ["DEFAULT_AGENTS", "FAILURES", "USER", "Simulator"]

DEFAULT_AGENTS: dict[str, tuple[str, str]] = {
    "request_planner": ("orchestrator", "gpt-4o"),
    "code_planner": ("planner", "claude-sonnet-4"),
    "coding_agent": ("executor", "gpt-4o"),
    "rag_service": ("service", "text-embedding-3-small"),
    "git_operations": ("service", "git"),
}
"""name → (role, model) of the Codeur pipeline's agents."""

USER = "user"  # the graph's source node; part of the default topology

FAILURES: dict[str, Exception] = {
    "request_planner": ConnectionError("LLM provider returned 503 Service Unavailable"),
    "code_planner": ValueError("plan did not validate against the repository layout"),
    "coding_agent": TimeoutError("LLM call timed out after 60 s"),
    "rag_service": ConnectionError("vector index unreachable"),
    "git_operations": RuntimeError("git push rejected: non-fast-forward"),
}
"""The exception each agent's injected failure raises (a fresh copy each time)."""

SLOW_CALLS = 0.08
"""Share of LLM calls that are slow (their first token comes 4 to 8 times later)."""
PUSH_REJECTED = 0.15
"""Share of ``git push`` commands rejected once (then pulled, rebased and pushed again)."""

_SYSTEM = {
    "request_planner": "You are Codeur's request planner. Turn the user's request into a "
    "precise change request for the code planner. Use the repository context given.",
    "code_planner": "You are Codeur's code planner. Write a numbered implementation plan "
    "(files, functions, tests) for the change request, using the context given.",
    "coding_agent": "You are Codeur's coding agent. Implement the plan step given as a unified "
    "diff against the files shown. Keep unrelated code unchanged.",
}
_REQUESTS = (
    "Add retry with exponential backoff to the HTTP client used by the sync service.",
    "The CSV export drops rows whose description contains a newline; fix it and add a test.",
    "Expose the job queue depth as a Prometheus gauge on /metrics.",
    "Replace the hand-written argument parsing in cli.py with argparse subcommands.",
    "Cache the repository index between runs; invalidate it when HEAD moves.",
)
_GIT_OUTPUT = {
    "status": "On branch main\nChanges to be committed:\n  modified: src/...",
    "diff": "diff --git a/src/... b/src/...\n@@ -1,4 +1,6 @@",
    "commit": "[main 3f2c1ab] Implement the change\n 2 files changed, 41 insertions(+)",
    "push": "To origin\n   9d1e2f0..3f2c1ab  HEAD -> main",
}
_FILES = ("src/sync/http.py", "src/export/csv.py", "src/metrics.py", "src/cli.py", "src/index.py")


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
        self.hub = hub
        self.seed = seed
        self.time_scale = time_scale
        self.rng = random.Random(seed)
        spec = agents or DEFAULT_AGENTS
        missing = set(DEFAULT_AGENTS) - set(spec)
        if missing:
            raise ValueError(f"the simulated pipeline needs agents {sorted(missing)}")
        self.agents: dict[str, AgentHandle] = {
            name: hub.agent(name, model=model, role=role) for name, (role, model) in spec.items()
        }
        self._failing: Counter[str] = Counter()
        self._jobs = itertools.count(1)
        # Strong references: the loop keeps only weak ones, and a job must not vanish mid-run.
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._stopping: set[asyncio.Task[Any]] = set()
        # The asyncio tasks (jobs) each agent is working for: an admin "cancel" cancels them.
        self._working: dict[str, set[asyncio.Task[Any]]] = {name: set() for name in self.agents}
        self.jobs_started = 0
        self.jobs_completed = 0
        self.jobs_failed = 0
        self.jobs_cancelled = 0
        self.paused: set[str] = set()
        for name, handle in self.agents.items():
            handle.on_command(functools.partial(self._obey, name))

    def __repr__(self) -> str:
        state = "running" if self.running else "idle"
        return (
            f"<Simulator {state} ×{self._time_scale:g}: {self.jobs_started} jobs started, "
            f"{self.jobs_completed} completed, {self.jobs_failed} failed>"
        )

    # -- control ----------------------------------------------------------------------------------
    @property
    def time_scale(self) -> float:
        """Speed-up factor of every simulated wait; may be changed while running."""
        return self._time_scale

    @time_scale.setter
    def time_scale(self, value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"time_scale must be a number > 0, got {value!r}")
        self._time_scale = float(value)

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop` (background jobs are being started)."""
        return self._runner is not None and not self._runner.done()

    def inject_error(self, agent: str, times: int = 1) -> None:
        """Make ``agent``'s next ``times`` tasks fail with a realistic exception.

        The exception (e.g. ``TimeoutError("LLM call timed out after 60 s")`` for the coding
        agent, see :data:`FAILURES`) escapes the agent's task, so it is recorded as a failed task
        and an error, and the job completes with ``success: False``.
        """
        if agent not in self.agents:
            raise KeyError(f"unknown agent {agent!r}; known: {sorted(self.agents)}")
        if times < 1:
            raise ValueError("times must be >= 1")
        self._failing[agent] += times

    def _obey(self, agent: str, command: str, args: dict[str, Any]) -> None:
        """Follow an ``admin.command`` sent to one of the simulated agents."""
        if command == "pause":
            self.paused.add(agent)
        elif command == "resume":
            self.paused.discard(agent)
        elif command == "cancel":
            for task in list(self._working[agent]):
                task.cancel()  # the job publishes its own "cancelled" events
        elif command == "restart":
            self.paused.discard(agent)
            for task in list(self._working[agent]):
                task.cancel()
            self.agents[agent].status("idle")

    async def _sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of simulated time (real time divided by ``time_scale``)."""
        await asyncio.sleep(seconds / self.time_scale)

    def _think(self, low: float, high: float) -> float:
        return self.rng.uniform(low, high)

    # -- one job ----------------------------------------------------------------------------------
    async def run_job(
        self, job_id: str | None = None, kind: str = "code_generation"
    ) -> dict[str, Any]:
        """Take one job through the whole pipeline.

        Returns ``{"job_id", "success": True, "steps"}``, or ``{"job_id", "success": False,
        "error"}`` when a task failed (see :meth:`inject_error`). Cancelling it publishes
        ``job.completed`` with ``status: "cancelled"``.
        """
        job_id = job_id or f"job-{next(self._jobs)}"
        hub = self.hub
        rp, cp = self.agents["request_planner"], self.agents["code_planner"]
        ca = self.agents["coding_agent"]
        self.jobs_started += 1
        request = self.rng.choice(_REQUESTS)
        hub.publish_threadsafe("job.enqueued", data={"job_id": job_id, "kind": kind})
        hub.publish_threadsafe("agent.message", USER, data={"target": rp.name, "kind": "request"})
        await self._sleep(self._think(0.1, 0.8))
        hub.publish_threadsafe("job.started", rp.name, data={"job_id": job_id})
        try:
            async with rp.task(f"Plan request {job_id}", job_id=job_id) as t, self._busy(rp.name):
                await self._maybe_fail(rp.name)
                t.log(f"received {kind} request {job_id}")
                context = [await self._rag_query(rp, job_id, request)]
                for _ in range(self.rng.randint(0, 2)):
                    context.append(await self._rag_query(rp, job_id, f"{request} (tests)"))
                change = f"Change request for {job_id}: {request} Touch {', '.join(context)}."
                await self._llm(rp, request, change, (600, 1800, 80, 400), context)
                rp.send(cp.name, "plan_request", job_id=job_id)
            async with (
                cp.task(f"Create plan for {job_id}", job_id=job_id) as t,
                self._busy(cp.name),
            ):
                await self._maybe_fail(cp.name)
                context = [await self._rag_query(cp, job_id, change)]
                steps = self.rng.randint(2, 5)
                plan = "\n".join(
                    f"{i + 1}. {verb} in {self.rng.choice(_FILES)}"
                    for i, verb in enumerate(
                        self.rng.choice(["Add a helper", "Change the call", "Add a test",
                                         "Update the docstring", "Handle the error case"])
                        for _ in range(steps)
                    )
                )  # fmt: skip
                await self._llm(cp, change, plan, (1200, 3000, 200, 900), context, low=1.0)
                t.log(f"plan for {job_id} has {steps} steps")
                cp.send(ca.name, "task_assignment", job_id=job_id, steps=steps)
            async with ca.task(f"Implement {job_id}", job_id=job_id) as t, self._busy(ca.name):
                for step in range(steps):
                    line = plan.splitlines()[step]
                    diff = f"--- a/{_FILES[step % len(_FILES)]}\n+++ b/...\n@@ step {step + 1} @@"
                    # An injected failure of the coding agent is its LLM call timing out.
                    await self._llm(ca, line, diff, (800, 2500, 150, 1200), fail=step == 0)
                    if self.rng.random() < 0.3:
                        await self._rag_query(ca, job_id, line)
                    async with ca.tool_call("apply_patch", {"step": step + 1, "diff": diff}) as p:
                        await self._sleep(self._think(0.05, 0.2))
                        p.result({"applied": True, "files": 1})
                    t.log(f"step {step + 1}/{steps} of {job_id} done")
                async with ca.tool_call("run_tests", {"args": ["-q", "tests"]}) as p:
                    await self._sleep(self._think(0.3, 1.2))
                    p.result(f"{self.rng.randint(40, 300)} passed")
                for _ in range(self.rng.randint(1, 3)):
                    await self._git(ca, job_id)
        except asyncio.CancelledError:
            self.jobs_cancelled += 1
            hub.publish_threadsafe(
                "job.completed", data={"job_id": job_id, "success": False, "status": "cancelled"}
            )
            raise
        except Exception as exc:
            self.jobs_failed += 1
            rp.log(f"{job_id} failed: {type(exc).__name__}: {exc}", level="ERROR", job_id=job_id)
            hub.publish_threadsafe(
                "job.completed", data={"job_id": job_id, "success": False, "status": "failed"}
            )
            return {"job_id": job_id, "success": False, "error": str(exc)}
        self.jobs_completed += 1
        ca.send(USER, "result", job_id=job_id)
        hub.publish_threadsafe("job.completed", data={"job_id": job_id, "success": True})
        return {"job_id": job_id, "success": True, "steps": steps}

    async def _llm(
        self,
        agent: AgentHandle,
        prompt: str,
        answer: str,
        usage: tuple[int, int, int, int],
        context: list[str] | None = None,
        *,
        low: float = 0.3,
        fail: bool = False,
    ) -> None:
        """One streamed LLM call of ``agent`` (its model): messages in, ``answer`` out."""
        messages = [
            {"role": "system", "content": _SYSTEM.get(agent.name, "You are a helpful agent.")},
            {"role": "user", "content": prompt},
        ]
        if context:
            messages.insert(1, {"role": "system", "content": "Context: " + "; ".join(context)})
        slow = self.rng.random() < SLOW_CALLS
        await self._hold(agent.name)  # a paused agent (by a person or a budget) spends nothing
        async with agent.llm_call(model=agent.model, messages=messages) as c:
            if fail:
                self._fail_now(agent.name)
            ttft = self._think(0.2, 0.8) * (self.rng.uniform(4.0, 8.0) if slow else 1.0)
            await self._sleep(ttft)
            c.first_token()
            await self._sleep(self._think(low, low * 3))
            c.output({"role": "assistant", "content": answer})
            prompt_tokens, completion_tokens, _ = self._usage(*usage)
            c.tokens(prompt=prompt_tokens, completion=completion_tokens)

    def _usage(self, p_lo: int, p_hi: int, c_lo: int, c_hi: int) -> tuple[int, int, float]:
        prompt = self.rng.randint(p_lo, p_hi)
        completion = self.rng.randint(c_lo, c_hi)
        # Roughly gpt-4o-class prices: $2.50 / 1M prompt, $10 / 1M completion tokens.
        return prompt, completion, round(prompt * 2.5e-6 + completion * 1e-5, 6)

    async def _hold(self, agent: str) -> None:
        """Wait while ``agent`` is paused: an admin "pause" (a person's, or a budget alert's)
        holds its next task and its next LLM call, so a paused agent spends nothing more."""
        while agent in self.paused:
            await self._sleep(0.5)

    async def _maybe_fail(self, agent: str) -> None:
        await self._hold(agent)
        self._fail_now(agent)

    def _fail_now(self, agent: str) -> None:
        if self._failing[agent] > 0:
            self._failing[agent] -= 1
            template = FAILURES.get(agent, RuntimeError("simulated failure"))
            error = type(template)(*template.args)  # a fresh exception: no shared traceback
            self.agents[agent].log(f"{type(error).__name__}: {error}", level="ERROR")
            raise error

    @contextlib.asynccontextmanager
    async def _busy(self, agent: str) -> AsyncIterator[None]:
        """While inside, an admin "cancel" for ``agent`` cancels the job running this code."""
        task = asyncio.current_task()
        if task is None:
            yield
            return
        self._working[agent].add(task)
        try:
            yield
        finally:
            self._working[agent].discard(task)

    async def _rag_query(self, asker: AgentHandle, job_id: str, query: str) -> str:
        """``asker`` asks the RAG service for context; returns the file it points to."""
        rag = self.agents["rag_service"]
        asker.send(rag.name, "query", job_id=job_id)
        found = self.rng.sample(_FILES, 2)
        async with (
            rag.task(f"Retrieve context for {job_id}", job_id=job_id) as t,
            self._busy(rag.name),
        ):
            await self._maybe_fail(rag.name)
            async with rag.retrieval(query, name="vector search", attributes={"top_k": 2}) as r:
                await self._sleep(self._think(0.1, 0.5))
                r.output([{"path": path, "score": round(self.rng.uniform(0.6, 0.95), 3)}
                          for path in found])  # fmt: skip
            t.tokens(self.rng.randint(50, 300), 0, 0.00001)  # the query's embedding
        rag.send(asker.name, "context", job_id=job_id)
        if self.rng.random() < 0.2:
            rag.send("git_operations", "index", job_id=job_id)
        return found[0]

    async def _git(self, ca: AgentHandle, job_id: str) -> None:
        git = self.agents["git_operations"]
        command = self.rng.choice(["status", "diff", "commit", "push"])
        ca.send(git.name, "git_command", job_id=job_id, command=command)
        async with git.task(f"git {command} ({job_id})", job_id=job_id), self._busy(git.name):
            await self._maybe_fail(git.name)
            if command == "push" and self.rng.random() < PUSH_REJECTED:
                # Rejected once (a red span), then pulled, rebased and pushed again.
                with contextlib.suppress(RuntimeError):
                    async with git.tool_call("git push", {"args": ["origin", "HEAD"]}):
                        await self._sleep(self._think(0.1, 0.4))
                        raise RuntimeError("git push rejected: non-fast-forward")
                async with git.tool_call("git pull", {"args": ["--rebase"]}) as g:
                    await self._sleep(self._think(0.1, 0.4))
                    g.result("Successfully rebased and updated refs/heads/main.")
            args = {"commit": ["-m", f"Implement {job_id}"], "push": ["origin", "HEAD"]}
            async with git.tool_call(f"git {command}", {"args": args.get(command, [])}) as g:
                await self._sleep(self._think(0.05, 0.4))
                g.result(_GIT_OUTPUT[command])
        git.send(ca.name, "git_result", job_id=job_id)

    # -- background load --------------------------------------------------------------------------
    def start(self, jobs_per_minute: float = 30.0, concurrency: int = 2) -> Simulator:
        """Run jobs in the background on the running loop until :meth:`stop`.

        Jobs arrive at random (exponential gaps averaging ``60 / jobs_per_minute`` simulated
        seconds), at most ``concurrency`` at a time. Starts the hub if it is not running.
        Idempotent while running; returns self.
        """
        if not jobs_per_minute > 0 or concurrency < 1:
            raise ValueError("jobs_per_minute must be > 0 and concurrency >= 1")
        if self.running:
            return self
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "Simulator.start() needs a running asyncio loop: call it from a notebook cell "
                "or a coroutine (or `await sim.run_job()` for a single job)"
            ) from None
        if not self.hub.running:
            self.hub.start()
        self._runner = loop.create_task(
            self._run_forever(jobs_per_minute, concurrency), name="codeur_widgets.sim.runner"
        )
        return self

    async def _run_forever(self, jobs_per_minute: float, concurrency: int) -> None:
        slots = asyncio.Semaphore(concurrency)
        mean_gap = 60.0 / jobs_per_minute
        loop = asyncio.get_running_loop()
        while True:
            await slots.acquire()
            task = loop.create_task(self.run_job(), name="codeur_widgets.sim.job")
            self._tasks.add(task)
            task.add_done_callback(functools.partial(self._job_done, slots))
            await self._sleep(self.rng.expovariate(1.0 / mean_gap))

    def _job_done(self, slots: asyncio.Semaphore, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._stopping.discard(task)
        slots.release()

    def stop(self) -> None:
        """Stop starting jobs and cancel the ones in flight. Idempotent.

        :attr:`running` is False as soon as this returns; ``await aclose()`` also waits until
        the cancelled jobs have published their ``cancelled`` events.
        """
        runner, self._runner = self._runner, None
        pending = [runner] if runner is not None else []
        pending += self._tasks
        self._tasks = set()
        for task in pending:
            if not task.done():
                task.cancel()
                self._stopping.add(task)

    async def aclose(self) -> None:
        """Stop and wait for the cancelled tasks to finish."""
        self.stop()
        await wait_cancelled(self._stopping)

    async def flood(self, rate: float, seconds: float, batch: int = 1000) -> int:
        """Publish a realistic mix at ``rate`` events/s for ``seconds``; returns the count.

        The mix cycles through flows, task start/finish, tokens, log lines, job lifecycle,
        status and heartbeats of the simulated agents. Events go through ``hub.publish_many``
        in batches of at most ``batch``, with an ``await asyncio.sleep`` between batches, so the
        dashboard keeps rendering while the flood runs. Time is real time (not scaled).
        """
        if not rate > 0 or not seconds > 0 or batch < 1:
            raise ValueError("rate and seconds must be > 0 and batch >= 1")
        loop = asyncio.get_running_loop()
        total = int(rate * seconds)
        start = loop.time()
        sent = 0
        while sent < total:
            # Catch up with the schedule (the loop may have been busy), one batch at most.
            due = min(total, max(sent + 1, int((loop.time() - start) * rate) + 1), sent + batch)
            events = [self._flood_event(i) for i in range(sent, due)]
            self.hub.publish_many(events)
            sent = due
            await asyncio.sleep(max(0.0, start + sent / rate - loop.time()))
        return sent

    _FLOOD_EDGES = (
        (USER, "request_planner", "request"),
        ("request_planner", "rag_service", "query"),
        ("rag_service", "request_planner", "context"),
        ("request_planner", "code_planner", "plan_request"),
        ("code_planner", "coding_agent", "task_assignment"),
        ("coding_agent", "git_operations", "git_command"),
        ("git_operations", "coding_agent", "git_result"),
    )

    def _flood_event(self, i: int) -> Event:
        """Event ``i`` of a flood: cycles of ten that leave every store consistent."""
        cycle, step = divmod(i, 10)
        names = list(self.agents)
        agent: str | None = names[cycle % len(names)]
        job_id = f"flood-{cycle}"
        data: dict[str, Any]
        if step == 0:
            agent, target, kind = self._FLOOD_EDGES[cycle % len(self._FLOOD_EDGES)]
            topic, data = "agent.message", {"target": target, "kind": kind}
        elif step == 1:
            topic, agent, data = "job.enqueued", None, {"job_id": job_id, "kind": "flood"}
        elif step == 2:
            topic, data = "job.started", {"job_id": job_id}
        elif step == 3:
            topic = "agent.task.started"
            data = {"task": f"flood task {cycle}", "task_id": job_id, "job_id": job_id}
        elif step == 4:
            topic = "agent.tokens"
            data = {"prompt": 120 + cycle % 50, "completion": 30, "cost_usd": 0.0006}
        elif step == 5:
            topic = "log"
            data = {"level": "INFO", "message": f"flood {job_id} event {i}", "logger": "codeur.sim"}
        elif step == 6:
            topic = "agent.task.completed"
            data = {"task_id": job_id, "job_id": job_id, "duration": 0.01}
        elif step == 7:
            topic, agent, data = "job.completed", None, {"job_id": job_id, "success": True}
        elif step == 8:
            topic, data = "agent.status", {"status": "idle"}
        else:
            topic, data = "agent.heartbeat", {}
        return Event.create(topic, agent, data, clock=self.hub.clock)
