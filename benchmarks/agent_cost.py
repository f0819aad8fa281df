"""Section 6: what ``publish_threadsafe`` costs an agent thread while the loop is busy.

A Hub runs on an asyncio loop in one thread; an agent thread calls ``hub.publish_threadsafe``
(a task-started event with a short task text), timing each call with ``perf_counter_ns``, either
in bursts of 20 calls every millisecond (a chatty agent: most calls find a wake-up of the loop
already pending) or one call every 2 ms (a steady agent: most calls come after the loop drained
the buffer, so they are the ones that wake it), while the loop is

* blocked: a callback that sleeps 50 ms at a time, back to back (the loop never answers, the GIL
  is free), or
* busy: a callback that burns CPU in pure Python for 50 ms at a time (the agent thread competes
  for the GIL: Python switches threads every ``sys.getswitchinterval()``).

"Never waits on the loop": the slowest call is compared with the loop's 50 ms stalls, and the
events published during the stalls must all be applied once the loop is free again. Side by
side, an agent that hands each event to the loop and waits for it
(``asyncio.run_coroutine_threadsafe(...).result()``, the usual way to call async code from a
thread) is timed the same way.
"""

from __future__ import annotations

import asyncio
import queue
import sys
import threading
import time
from typing import Any

from ._report import Section, percentile

BUDGET_P99_US = 20.0
STALL = 0.05


def _loop_thread(mode: str, seconds: float, agent: Any) -> dict[str, Any]:
    """Run the hub's loop in its own thread, stalled by ``mode``, while ``agent(hub, loop)``
    runs in the calling thread; returns the agent's result plus what the hub applied."""
    from codeur_widgets.core.hub import Hub

    ready = threading.Event()
    finish = threading.Event()
    box: dict[str, Any] = {}

    def stall() -> None:
        end = time.perf_counter() + STALL
        if mode == "blocked":
            time.sleep(STALL)
        else:
            x = 0
            while time.perf_counter() < end:
                x += 1
        if not finish.is_set():
            box["loop"].call_soon(stall)

    async def main() -> None:
        hub = Hub(collect_system=False, thread_buffer=1_000_000)
        hub.start()
        box["hub"], box["loop"] = hub, asyncio.get_running_loop()
        applied = [0]
        hub.bus.subscribe("agent.task.started", lambda e: applied.__setitem__(0, applied[0] + 1))
        box["applied"] = applied
        box["loop"].call_soon(stall)
        ready.set()
        while not finish.is_set():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)  # the loop is free: the inbox drains
        box["health"] = hub.health()
        await hub.aclose()

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    ready.wait(10)
    try:
        result = agent(box["hub"], box["loop"], seconds)
    finally:
        finish.set()
        thread.join(30)
    result["applied"] = box["applied"][0]
    result["health"] = box.get("health", {})
    return result


def _threadsafe_agent(hub: Any, loop: Any, seconds: float) -> dict[str, Any]:
    publish = hub.publish_threadsafe
    clock = time.perf_counter_ns
    times: list[int] = []
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        for _ in range(20):
            t0 = clock()
            publish("agent.task.started", "coding_agent", task="Implement #42", task_id=f"t{n}")
            times.append(clock() - t0)
            n += 1
        time.sleep(0.001)
    return {"calls": n, "ns": times}


def _steady_agent(hub: Any, loop: Any, seconds: float) -> dict[str, Any]:
    publish = hub.publish_threadsafe
    clock = time.perf_counter_ns
    times: list[int] = []
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        t0 = clock()
        publish("agent.task.started", "coding_agent", task="Implement #42", task_id=f"t{n}")
        times.append(clock() - t0)
        n += 1
        time.sleep(0.002)
    return {"calls": n, "ns": times}


def _stdlib_queue_agent(hub: Any, loop: Any, seconds: float) -> dict[str, Any]:
    """The floor: the standard library's thread hand-off, at the steady agent's cadence."""
    box: queue.Queue[tuple[str, str, dict[str, str]]] = queue.Queue()
    put = box.put_nowait
    clock = time.perf_counter_ns
    times: list[int] = []
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        t0 = clock()
        put(("agent.task.started", "coding_agent", {"task": "Implement #42", "task_id": f"t{n}"}))
        times.append(clock() - t0)
        n += 1
        time.sleep(0.002)
    return {"calls": n, "ns": times, "floor": True}


def _waiting_agent(hub: Any, loop: Any, seconds: float) -> dict[str, Any]:
    async def apply(n: int) -> None:
        hub.publish("agent.task.started", "coding_agent", task="Implement #42", task_id=f"w{n}")

    clock = time.perf_counter_ns
    times: list[int] = []
    end = time.monotonic() + min(seconds, 2.0)
    n = 0
    while time.monotonic() < end:
        t0 = clock()
        asyncio.run_coroutine_threadsafe(apply(n), loop).result(timeout=10)
        times.append(clock() - t0)
        n += 1
    return {"calls": n, "ns": times}


def _us(x: float) -> str:
    return f"{x:.1f} µs" if x < 1000 else f"{x / 1000:.1f} ms"


AGENTS = (
    ("publish_threadsafe, bursts of 20 / ms", _threadsafe_agent),
    ("publish_threadsafe, one call / 2 ms", _steady_agent),
    ("floor: stdlib queue.Queue.put_nowait, one call / 2 ms", _stdlib_queue_agent),
    ("run_coroutine_threadsafe().result()", _waiting_agent),
)
STEADY_VS_FLOOR = 2.0
"""A steady agent's p99 may be at most this many times the stdlib hand-off's, same run."""


def run(ctx: Any) -> Section:
    seconds = 2.0 if ctx.quick else 5.0
    section = Section(
        "agent", "6. Agent-side cost of publish_threadsafe (loop stalled 50 ms at a time)"
    )
    t = section.table(
        "loop", "agent's call", "calls", "p50", "p99", "max", "applied after", "dropped",
    )  # fmt: skip
    burst_p99 = 0.0
    steady_ratio = 0.0
    waited = False
    for mode in ("blocked", "busy"):
        p99s: dict[str, float] = {}
        for label, agent in AGENTS:
            r = _loop_thread(mode, seconds, agent)
            us = [x / 1000 for x in r["ns"]]
            p50, p99, top = percentile(us, 50), percentile(us, 99), max(us, default=0.0)
            name = agent.__name__.strip("_")
            p99s[name] = p99
            floor = r.get("floor", False)
            t.add(
                f"{mode} ({'sleep' if mode == 'blocked' else 'pure-Python CPU'})", label,
                f"{r['calls']:,}", _us(p50), _us(p99), _us(top),
                "—" if floor else f"{r['applied']:,}", r["health"].get("dropped", "?"),
            )  # fmt: skip
            section.data[f"{mode}_{name}"] = {
                "p50": p50, "p99": p99, "max_us": top, "calls": r["calls"],
                "applied": r["applied"],
            }  # fmt: skip
            if agent in (_threadsafe_agent, _steady_agent):
                # waiting on the loop would show as calls as slow as its stalls
                waited = waited or top / 1000 >= STALL * 1000 * 0.8 or r["applied"] < r["calls"]
        burst_p99 = max(burst_p99, p99s["threadsafe_agent"])
        ratio = p99s["steady_agent"] / max(p99s["stdlib_queue_agent"], 1e-9)
        section.data[f"{mode}_steady_vs_floor"] = ratio
        steady_ratio = max(steady_ratio, ratio)
    section.notes.append(
        "the agent's call only appends to the hub's buffer: the hub's waker thread, not the "
        "agent, wakes the loop (loop.call_soon_threadsafe, whose self-pipe send releases the GIL)"
    )
    section.notes.append(
        f"the GIL switch interval is {sys.getswitchinterval() * 1000:.0f} ms: under 'busy' a call "
        "that Python preempts mid-way waits that long for the GIL (not for the loop)"
    )
    section.notes.append(
        "a call every 2 ms finds the CPU's caches cold (the thread slept, other threads ran): on "
        "a shared VM any Python call then costs tens of µs at p99, the standard library's own "
        "thread hand-off included (the 'floor' rows, same cadence, same run); the steady agent is "
        "therefore judged against that floor, the continuous one against the absolute budget"
    )
    section.budget(
        "agent: publish_threadsafe p99, agent publishing continuously (loop blocked or busy)",
        f"< {BUDGET_P99_US:.0f} µs", _us(burst_p99), burst_p99 < BUDGET_P99_US,
    )  # fmt: skip
    section.budget(
        "agent: publish_threadsafe p99, one call / 2 ms, vs stdlib Queue.put_nowait (same run)",
        f"<= {STEADY_VS_FLOOR:.0f}×", f"{steady_ratio:.2f}×", steady_ratio <= STEADY_VS_FLOOR,
    )  # fmt: skip
    section.budget(
        "agent: the agent thread never waits on the loop",
        "max call << 50 ms stall; every event applied", "waited" if waited else "never waited",
        not waited,
    )  # fmt: skip
    return section
