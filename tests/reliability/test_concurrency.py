"""Concurrency: exact counts with every kind of publisher at once, and ``hub.stop()`` under load
(issue 8, "Concurrency").

Publishers: 16 threads (``publish_threadsafe``, agent handles' ``with a.task(...)``, logging),
asyncio tasks on the hub's loop (``hub.publish``), and an agent *process* publishing through a
real redis-server with ``codeur_widgets.emit.Emitter`` read by the hub's Redis source. The stores
must then hold exactly what was sent: not one event lost, none applied twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from codeur_widgets.core.hub import Hub

pytestmark = pytest.mark.timeout(180)

THREADS = 16
PER_THREAD = 1_500
TASKS = 8
PER_TASK = 1_000
PROCESS_EVENTS = 6_000
WORKER = Path(__file__).resolve().parents[1] / "integration" / "emitter_worker.py"


def tokens(hub: Hub) -> dict[str, int]:
    return {a["name"]: int(a["prompt_tokens"]) for a in hub.agents.snapshot()["agents"]}


def test_threads_tasks_and_a_process_publish_at_once_with_exact_counts(
    make_redis: Callable[..., Any],
) -> None:
    """Injected: at the same time, 16 threads each publishing 1,500 token events, 150 tasks
    through an agent handle, 150 jobs and 150 log records (via ``logging``); 8 asyncio tasks
    each publishing 1,000 token events and 100 jobs; one subprocess emitting 6,000 events
    through redis-server into the hub's Redis source. Must hold, exactly: each agent's
    ``prompt_tokens``; each thread agent's ``tasks_completed``; the queue's ``completed``; the
    log tail's ``total``; ``bus.accepted`` == the sum of all of it; nothing dropped, rejected
    or failed; the source applied and acknowledged every entry once."""
    server = make_redis()
    stream = f"conc:{uuid.uuid4().hex[:8]}"
    url = f"{server.url}?stream={stream}"

    async def main() -> None:
        from codeur_widgets.transports.redis_streams import RedisStreamSource

        source = RedisStreamSource(url, group="conc", block_ms=100, count=1000)
        hub = Hub(
            collect_system=False,
            sources=[source],
            thread_buffer=1_000_000,
            heartbeat_interval=3600.0,  # no automatic heartbeats: the count must be exact
        )
        logger = logging.getLogger(f"conc.{uuid.uuid4().hex[:6]}")
        logger.propagate = False
        start_gate = threading.Event()
        errors: list[BaseException] = []

        def thread_body(i: int) -> None:
            try:
                start_gate.wait(10)
                handle = hub.agent(f"thread-{i}", role="executor")
                for k in range(PER_THREAD):
                    hub.publish_threadsafe("agent.tokens", f"thread-{i}", prompt=1, completion=2)
                    if k % 10 == 0:
                        with handle.task(f"task {k}", job_id=f"t{i}-{k}"):
                            pass
                        hub.publish_threadsafe("job.enqueued", job_id=f"t{i}-{k}")
                        hub.publish_threadsafe("job.completed", job_id=f"t{i}-{k}")
                        logger.info("thread %d line %d", i, k)
            except BaseException as exc:
                errors.append(exc)

        async def task_body(i: int) -> None:
            for k in range(PER_TASK):
                hub.publish("agent.tokens", f"task-{i}", prompt=1, completion=0)
                if k % 10 == 0:
                    hub.publish("job.enqueued", job_id=f"a{i}-{k}")
                    hub.publish("job.completed", job_id=f"a{i}-{k}")
                    await asyncio.sleep(0)

        async with hub:
            hub.capture_logging(logger, level="INFO", source="threads")
            registered = hub.bus.accepted  # agent.registered of nothing yet: 0
            proc = subprocess.Popen(
                [sys.executable, str(WORKER), url, "0", str(PROCESS_EVENTS)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            threads = [threading.Thread(target=thread_body, args=(i,)) for i in range(THREADS)]
            for t in threads:
                t.start()
            start_gate.set()
            await asyncio.gather(*(task_body(i) for i in range(TASKS)))
            await asyncio.to_thread(lambda: [t.join(60) for t in threads])
            out, err = await asyncio.to_thread(proc.communicate, timeout=60)
            assert proc.returncode == 0, err
            emitter_health = json.loads(out.strip().splitlines()[-1])
            assert emitter_health["sent"] == PROCESS_EVENTS and emitter_health["dropped"] == 0

            deadline = time.monotonic() + 60
            while tokens(hub).get("worker-0", 0) < PROCESS_EVENTS and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # would let a duplicate arrive, if there were one
            hub.flush()
            assert not errors, errors

            counts = tokens(hub)
            assert counts["worker-0"] == PROCESS_EVENTS
            for i in range(THREADS):
                assert counts[f"thread-{i}"] == PER_THREAD, (i, counts)
            for i in range(TASKS):
                assert counts[f"task-{i}"] == PER_TASK, (i, counts)
            agents = {a["name"]: a for a in hub.agents.snapshot()["agents"]}
            per_thread_tasks = PER_THREAD // 10
            for i in range(THREADS):
                assert agents[f"thread-{i}"]["tasks_completed"] == per_thread_tasks
            jobs = THREADS * per_thread_tasks + TASKS * (PER_TASK // 10)
            assert hub.queue.snapshot()["completed"] == jobs
            assert hub.logs.snapshot()["total"] == THREADS * per_thread_tasks

            health = hub.health()
            assert health["dropped"] == 0 and health["rejected"] == 0, health
            assert health["handler_errors"] == 0 and health["buffered"] == 0, health
            src = health["sources"][0]
            assert src["applied"] == PROCESS_EVENTS, src
            assert src["duplicates"] == 0 and src["malformed"] == 0, src
            assert src["acked"] == src["read"], src
            # accepted = thread events (tokens + task start/complete + registration + jobs +
            # logs) + task events + what the source applied.
            thread_events = THREADS * (
                PER_THREAD + 1 + per_thread_tasks * (2 + 2 + 1)
            )  # tokens, registered, (task started/completed, job enqueued/completed, log)
            task_events = TASKS * (PER_TASK + 2 * (PER_TASK // 10))
            expected = registered + thread_events + task_events + src["applied"]
            assert hub.bus.accepted == expected, (hub.bus.accepted, expected)

    asyncio.run(asyncio.wait_for(main(), 150))


def test_stop_under_load_applies_and_records_everything_accepted_before_it(
    tmp_path: Path,
) -> None:
    """Injected: ``hub.stop()`` while 16 threads and 4 asyncio tasks publish as fast as they
    can, with history on. Must hold: every event whose ``publish`` returned before ``stop()``
    was called is in the stores when ``stop()`` returns; events published during and after the
    stop are not lost either (applied directly, or by the next ``flush()``); the history file
    holds exactly the events the hub accepted; nothing dropped."""
    history = tmp_path / "stop.sqlite"

    async def main() -> None:
        hub = Hub(collect_system=False, history=str(history), thread_buffer=2_000_000)
        running = threading.Event()
        running.set()
        done = [0] * THREADS

        def spam(i: int) -> None:
            name = f"thread-{i}"
            while running.is_set():
                hub.publish_threadsafe("agent.tokens", name, prompt=1, completion=0)
                done[i] += 1  # counted only once publish returned (accepted)
                if done[i] % 50 == 0:
                    time.sleep(0.01)  # heavy load, within what the history can queue
            for _ in range(200):  # and some more after the stop
                hub.publish_threadsafe("agent.tokens", name, prompt=1, completion=0)
                done[i] += 1

        task_done = [0] * 4

        async def spam_task(i: int) -> None:
            while True:
                hub.publish("agent.tokens", f"task-{i}", prompt=1, completion=0)
                task_done[i] += 1
                if task_done[i] % 50 == 0:
                    await asyncio.sleep(0.005)

        hub.start()
        threads = [threading.Thread(target=spam, args=(i,)) for i in range(THREADS)]
        for t in threads:
            t.start()
        tasks = [asyncio.get_running_loop().create_task(spam_task(i)) for i in range(4)]
        await asyncio.sleep(1.0)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        before = list(done)  # publish calls that had returned before stop() was called
        hub.stop()
        counts = tokens(hub)
        for i in range(THREADS):
            assert counts.get(f"thread-{i}", 0) >= before[i], (i, counts, before)
        for i in range(4):
            assert counts[f"task-{i}"] == task_done[i]
        running.clear()
        await asyncio.to_thread(lambda: [t.join(30) for t in threads])
        assert sum(before) > 1_000, "the threads were really publishing"
        hub.flush()  # what a thread put in the buffer while stop() ran (no loop any more)
        counts = tokens(hub)
        for i in range(THREADS):
            assert counts[f"thread-{i}"] == done[i], (i, counts[f"thread-{i}"], done[i])
        health = hub.health()
        assert health["dropped"] == 0 and health["buffered"] == 0, health
        assert hub.history is not None
        assert hub.history.flush(timeout=30)
        accepted = hub.bus.accepted
        recorded = hub.history.health()
        hub.history.close()
        with sqlite3.connect(history) as conn:
            (rows,) = conn.execute("SELECT count(*) FROM events").fetchone()
        assert rows + recorded["dropped"] == accepted, (rows, accepted, recorded)
        assert recorded["dropped"] == 0, recorded

    asyncio.run(asyncio.wait_for(main(), 120))
