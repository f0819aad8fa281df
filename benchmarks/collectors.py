"""Section 8: the system collector against what users run today, in the same run.

* CPU: one sample of :class:`SystemSampler` (``collect_async`` as the hub's sampler runs it: each
  collector in a worker thread; and the synchronous ``collect``) against
  ``psutil.cpu_percent(interval=1)`` called in a coroutine, as the plan's collector does. For
  each, the time one sample takes and how long the asyncio loop was blocked meanwhile (the
  longest gap seen by a 1 ms ticker task running beside it).
* GPU: one reading through NVML (nvidia-ml-py) against GPUtil (which runs ``nvidia-smi``), each
  where it works on this machine; without a GPU the rows say so and why.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ._report import Section, percentile


def _in_thread(fn: Callable[[], Any]) -> Any:
    """Run ``asyncio.run``-using ``fn`` in a fresh thread (no loop can be running there)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # re-raised in the caller
            box["error"] = exc

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


async def _timed(sample: Callable[[], Awaitable[Any]], n: int) -> dict[str, float]:
    """Per-sample time and the loop's longest stall while ``n`` samples are taken."""
    stop = False
    worst = 0.0

    async def ticker() -> None:
        nonlocal worst
        last = time.perf_counter()
        while not stop:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            worst = max(worst, now - last - 0.001)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        await sample()
        times.append(time.perf_counter() - t0)
        await asyncio.sleep(0.01)
    stop = True
    await task
    return {
        "n": n,
        "median_ms": statistics.median(times) * 1000,
        "p99_ms": percentile([t * 1000 for t in times], 99),
        "loop_blocked_ms": worst * 1000,
    }


def cpu_rows(quick: bool) -> dict[str, dict[str, float]]:
    import psutil

    from codeur_widgets.core.system import SystemSampler

    async def main() -> dict[str, dict[str, float]]:
        sampler = SystemSampler()
        sampler.collect()  # primes psutil's counters

        async def ours_async() -> None:
            await sampler.collect_async()

        async def ours_sync() -> None:
            sampler.collect()

        async def plan() -> None:
            psutil.cpu_percent(interval=1)  # the plan's collector, inside its async loop

        rows = {
            "SystemSampler.collect_async (hub's sampler)": await _timed(ours_async, 50),
            "SystemSampler.collect (synchronous)": await _timed(ours_sync, 200),
            "plan: psutil.cpu_percent(interval=1) in a coroutine": await _timed(
                plan, 2 if quick else 3
            ),
        }
        sampler.close()
        return rows

    result: dict[str, dict[str, float]] = _in_thread(lambda: asyncio.run(main()))
    return result


def gpu_rows(n: int = 20) -> dict[str, dict[str, Any]]:
    """NVML and GPUtil, each only where it works here."""
    from codeur_widgets.core.gpu import GpuCollector

    rows: dict[str, dict[str, Any]] = {}
    for backend in ("nvml", "gputil"):
        label = "NVML (nvidia-ml-py)" if backend == "nvml" else "GPUtil (nvidia-smi)"
        try:
            gpu = GpuCollector(backend)
        except Exception as exc:  # an unknown backend name or a broken install
            rows[label] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        if gpu.backend != backend:
            rows[label] = {"error": f"no GPU ({gpu.reason or 'backend unavailable'})"}
            gpu.shutdown()
            continue
        times = []
        readings: list[dict[str, Any]] = []
        for _ in range(n):
            t0 = time.perf_counter()
            readings = gpu.collect()
            times.append(time.perf_counter() - t0)
        gpu.shutdown()
        rows[label] = {
            "n": n,
            "median_ms": statistics.median(times) * 1000,
            "p99_ms": percentile([t * 1000 for t in times], 99),
            "gpus": len(readings),
            "needs_thread": gpu.needs_thread,
        }
    return rows


def run(ctx: Any) -> Section:
    section = Section("collectors", "8. Collectors: per-sample cost against what users run today")
    cpu = cpu_rows(ctx.quick)
    t = section.table("CPU sample", "samples", "median", "p99", "loop blocked (longest)")
    for label, r in cpu.items():
        t.add(label, r["n"], f"{r['median_ms']:.2f} ms", f"{r['p99_ms']:.2f} ms",
              f"{r['loop_blocked_ms']:.1f} ms")  # fmt: skip
    plan = cpu["plan: psutil.cpu_percent(interval=1) in a coroutine"]
    ours = cpu["SystemSampler.collect_async (hub's sampler)"]
    ratio = plan["loop_blocked_ms"] / max(ours["loop_blocked_ms"], 0.01)
    section.notes.append(
        f"the plan's sample blocks the loop {ratio:,.0f}× longer than the hub's "
        f"({plan['loop_blocked_ms']:.0f} ms vs {ours['loop_blocked_ms']:.1f} ms)"
    )
    gpu = gpu_rows()
    t = section.table("GPU reading", "samples", "median", "p99", "GPUs", "in a worker thread")
    for label, r in gpu.items():
        if "error" in r:
            t.add(label, "–", r["error"], "–", 0, "–")
        else:
            t.add(label, r["n"], f"{r['median_ms']:.2f} ms", f"{r['p99_ms']:.2f} ms", r["gpus"],
                  "yes" if r["needs_thread"] else "no")  # fmt: skip
    section.budget(
        "collectors: the hub's CPU sample blocks the loop less than the plan's",
        "< 1/100 of the plan's",
        f"{ours['loop_blocked_ms']:.1f} ms vs {plan['loop_blocked_ms']:.0f} ms",
        ours["loop_blocked_ms"] * 100 < plan["loop_blocked_ms"],
    )  # fmt: skip
    section.data.update(cpu=cpu, gpu=gpu)
    return section
