"""Scale-out demo: agents in three separate processes publish to Redis; a notebook watches.

    python scripts/demo_redis.py                 # until Ctrl-C (at most --duration seconds)
    python scripts/demo_redis.py --check 8       # self-test: read for 8 s in-process, summarise

It starts a throwaway ``redis-server`` on a free loopback port, then three agent processes of a
fake Codeur pipeline (request planner; code planner + RAG service; coding agent + git
operations). They use only :mod:`codeur_widgets.emit` (no Jupyter, networkx or psutil) and agree
on a job schedule by the clock, so each job flows through all three: enqueued, planned, coded,
committed, completed (about one in ten fails). It prints the cell to paste into a notebook.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from codeur_widgets.core.agent import AgentHandle
    from codeur_widgets.emit import Emitter

STREAM = "codeur:events"
PROCESSES = {
    "request_planner": ("request_planner",),
    "code_planner": ("code_planner", "rag_service"),
    "coding_agent": ("coding_agent", "git_operations"),
}
ROLES = {
    "request_planner": ("orchestrator", "gpt-4o"),
    "code_planner": ("planner", "gpt-4o"),
    "coding_agent": ("executor", "claude-3-5-sonnet"),
    "rag_service": ("service", None),
    "git_operations": ("service", None),
}


def run_agents(process: str, url: str, t0: float, period: float, duration: float) -> int:
    """One agent process: play its part of every job on the shared schedule."""
    from codeur_widgets.emit import Emitter

    emitter = Emitter(url, maxlen=200_000)
    handles: dict[str, AgentHandle] = {}
    for name in PROCESSES[process]:
        role, model = ROLES[name]
        handles[name] = emitter.agent(name, model=model, role=role)
    log = logging.getLogger(f"demo.{process}")
    emitter.capture_logging(log, level="INFO", source=process)
    rng = random.Random(process)
    offset = {"request_planner": 0.0, "code_planner": 0.3, "coding_agent": 0.55}[process]
    end = time.time() + duration
    job = max(0, int((time.time() - t0) / period))
    # One job per period until the duration is over (bounded by the clock and by the count).
    for _ in range(int(duration / period) + 2):
        start = t0 + job * period + offset * period
        if start > end:
            break
        time.sleep(max(0.0, start - time.time()))
        job_id = f"job-{job}"
        try:
            play(process, handles, emitter, job_id, job, period, rng, log)
        except Exception as exc:  # a demo agent keeps going, like a real one would
            log.exception("job %s failed: %s", job_id, exc)
        job += 1
    emitter.close(timeout=2.0)
    return 0


def play(
    process: str,
    handles: dict[str, AgentHandle],
    emitter: Emitter,
    job_id: str,
    job: int,
    period: float,
    rng: random.Random,
    log: logging.Logger,
) -> None:
    """The work of ``process`` on one job (sleeps stand for LLM calls)."""
    work = period * 0.2
    if process == "request_planner":
        rp = handles["request_planner"]
        emitter.publish("agent.message", "user", target="request_planner", kind="request")
        emitter.publish("job.enqueued", job_id=job_id, kind="code_generation")
        with rp.task(f"Plan request #{job}", job_id=job_id) as t:
            rp.send("rag_service", "query")
            time.sleep(work * rng.uniform(0.5, 1.0))
            t.tokens(prompt=rng.randint(300, 900), completion=rng.randint(80, 200), cost_usd=0.002)
        rp.send("code_planner", "plan_request", job_id=job_id)
        log.info("request %s planned", job_id)
    elif process == "code_planner":
        cp, rag = handles["code_planner"], handles["rag_service"]
        emitter.publish("job.started", "code_planner", job_id=job_id)
        with cp.task(f"Plan code for #{job}", job_id=job_id) as t:
            cp.send("rag_service", "query")
            with rag.task("Retrieve context", job_id=job_id):
                time.sleep(work * 0.3)
            time.sleep(work * rng.uniform(0.5, 1.0))
            t.tokens(prompt=rng.randint(800, 2000), completion=rng.randint(200, 500), cost_usd=0.01)
        cp.send("coding_agent", "task_assignment", job_id=job_id)
        log.info("code plan for %s ready", job_id)
    else:
        ca, git = handles["coding_agent"], handles["git_operations"]
        ok = rng.random() > 0.1
        try:
            with ca.task(f"Implement #{job}", job_id=job_id) as t:
                ca.send("rag_service", "query")
                time.sleep(work * rng.uniform(0.5, 1.0))
                t.tokens(
                    prompt=rng.randint(1500, 4000), completion=rng.randint(400, 1200), cost_usd=0.03
                )
                if not ok:
                    raise RuntimeError(f"tests failed for {job_id}")
                ca.send("git_operations", "git_command")
                with git.task("git commit", job_id=job_id):
                    time.sleep(work * 0.2)
        except RuntimeError as exc:
            log.warning("%s", exc)
        emitter.publish("job.completed", "coding_agent", job_id=job_id, success=ok)


def check(url: str, seconds: float) -> int:
    """Read the stream in-process for ``seconds`` and print what the dashboard would show."""
    from codeur_widgets.core.hub import Hub

    async def main() -> int:
        hub = Hub(sources=[f"{url}?stream={STREAM}&group=demo-check"], collect_system=False)
        hub.start()
        await asyncio.sleep(seconds)
        snap = hub.snapshot()
        await hub.aclose()
        agents = {a["name"]: a["tasks_completed"] for a in snap["agents"]["agents"]}
        queue = snap["queue"]
        source = snap["health"]["sources"][0]
        print(f"agents (tasks completed): {agents}")
        print(f"jobs: completed {queue['completed']}, failed {queue['failed']}")
        print(f"events applied {source['applied']}, lag {source['lag_ms']}")
        expected = {name for names in PROCESSES.values() for name in names}
        return 0 if expected <= set(agents) and source["applied"] > 0 else 1

    return asyncio.run(main())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=3600.0, help="seconds (default 1 h)")
    parser.add_argument("--jobs-per-minute", type=float, default=20.0)
    parser.add_argument("--check", type=float, metavar="SECONDS", help="self-test, then exit")
    parser.add_argument("--agent", choices=sorted(PROCESSES), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--t0", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    period = 60.0 / args.jobs_per_minute
    if args.agent:
        return run_agents(args.agent, args.url, args.t0, period, args.duration)

    from codeur_widgets.transports.redis_server import RedisServer

    duration = min(args.duration, args.check + 5.0) if args.check else args.duration
    with RedisServer() as server:
        t0 = time.time() + 0.5
        url = f"{server.url}?stream={STREAM}"
        agents = [
            subprocess.Popen(
                [sys.executable, __file__, "--agent", name, "--url", url,
                 "--t0", str(t0), "--duration", str(duration),
                 "--jobs-per-minute", str(args.jobs_per_minute)]
            )
            for name in PROCESSES
        ]  # fmt: skip
        try:
            if args.check:
                return check(server.url, args.check)
            print(
                f"\nRedis is running at {server.url} (stream {STREAM!r}); three agent processes "
                f"publish a job every {period:.1f} s.\nOpen a notebook (make demo) and run:\n\n"
                "    from codeur_widgets import Hub, Dashboard\n"
                f'    hub = Hub(sources=["{server.url}?stream={STREAM}"])\n'
                "    hub.start()\n"
                "    Dashboard(hub)\n\n"
                f"Ctrl-C stops the agents and Redis (or after {duration:.0f} s).\n",
                flush=True,
            )
            deadline = time.monotonic() + duration + 5.0
            while time.monotonic() < deadline and any(a.poll() is None for a in agents):
                time.sleep(0.5)
        except KeyboardInterrupt:
            print("stopping")
        finally:
            for a in agents:
                if a.poll() is None:
                    a.terminate()
            for a in agents:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    a.wait(5)
                if a.poll() is None:
                    a.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
