"""Faults are contained, visible in ``hub.health()``, and the rest keeps working (issue 8).

Each test injects one fault into a *running* hub (real asyncio loop, real render tick, real
sampler threads, real redis-server) while in-process agents keep publishing, and checks three
things: the fault is contained (no exception escapes, the hub's tasks live on), it is visible in
``hub.health()`` (what the dashboard's header shows), and nothing else stopped: render frames and
samples keep coming and every event accepted is applied.
"""

from __future__ import annotations

import asyncio
import threading
import time
import types
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from codeur_widgets.core.hub import Hub

pytestmark = pytest.mark.timeout(120)


def run(main: Callable[[], Coroutine[Any, Any, None]], timeout: float = 60.0) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(main(), timeout)

    asyncio.run(bounded())


async def until(predicate: Callable[[], bool], timeout: float, what: Callable[[], Any]) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s: {what()}")
        await asyncio.sleep(0.02)


class Publisher:
    """An in-process agent publishing one token event per loop turn until stopped."""

    def __init__(self, hub: Hub, name: str = "steady") -> None:
        self.hub = hub
        self.name = name
        self.sent = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.hub.publish("agent.tokens", self.name, prompt=1, completion=0)
            self.sent += 1
            await asyncio.sleep(0.005)

    def start(self) -> Publisher:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def applied(self) -> int:
        for agent in self.hub.agents.snapshot()["agents"]:
            if agent["name"] == self.name:
                return int(agent["prompt_tokens"])
        return 0


# -- collectors ------------------------------------------------------------------------------------
def test_a_hanging_and_a_raising_collector_are_contained_and_reported() -> None:
    """Injected: the ``memory`` collector hangs (blocks until released) and the ``freq`` one
    raises on every call, in a hub sampling every 0.1 s. Must hold: the loop never waits on them
    (render frames and the other collectors keep coming); ``memory`` is reported timed out once,
    then skipped while stuck, with exactly one thread for it (no pile-up); its stale values are
    cleared after ``stale_after``; ``freq`` counts every error; all events published meanwhile
    are applied; once released, ``memory`` recovers."""
    release = threading.Event()
    entered = threading.Event()

    async def main() -> None:
        hub = Hub(sample_interval=0.1, render_hz=20)
        sampler = hub.system
        sampler.collector_timeout = 0.3
        sampler.stale_after = 0.8
        real_memory = sampler._read_memory

        def hanging_memory() -> dict[str, Any]:
            if not release.is_set():
                entered.set()
                release.wait(30)
            return real_memory()

        def raising_freq() -> dict[str, Any]:
            raise OSError("cpufreq: no such device")

        frames: list[float] = []
        hub.watch(["agents"], lambda frame: frames.append(time.monotonic()), max_hz=20)
        async with hub:
            agent = Publisher(hub).start()
            await until(lambda: sampler.latest is not None, 10, sampler.collectors_health)
            good_mem = sampler.latest["mem_percent"] if sampler.latest else None
            assert good_mem is not None
            sampler._read_memory = hanging_memory  # type: ignore[method-assign]
            sampler._read_freq = raising_freq  # type: ignore[method-assign]
            versions = sampler.version
            t0 = time.monotonic()
            await until(lambda: sampler.collectors_health()["memory"]["skipped"] >= 5, 10,
                        sampler.collectors_health)  # fmt: skip
            stuck_for = time.monotonic() - t0
            health = hub.health()
            memory = health["collectors"]["memory"]
            assert entered.is_set()
            assert memory["ok"] is False and memory["timeouts"] == 1, memory
            assert memory["last_error"]["type"] == "TimeoutError", memory
            assert memory["stuck_s"] is not None and memory["stuck_s"] > 0, memory
            # This sampler's own worker (idle workers of other tests' samplers may still run)
            worker = sampler._workers["memory"]
            assert worker.threads_started == 1 and worker.alive, "no 2nd thread for a stuck one"
            assert sampler.worker_threads() <= 5
            freq = health["collectors"]["freq"]
            assert freq["ok"] is False and freq["errors"] >= 3, freq
            assert freq["last_error"]["type"] == "OSError", freq
            assert health["collectors"]["cpu"]["ok"] and health["collectors"]["process"]["ok"]
            # Samples kept coming (the others' values), and the loop was never blocked.
            assert sampler.version - versions >= 5
            assert sampler.latest is not None and sampler.latest["rss"] is not None
            # Margins for a loaded CI machine: a collector blocking the loop would stop frames
            # altogether and make the lag at least the 30 s the hang lasts.
            assert len([f for f in frames if f >= t0]) >= stuck_for * 2, "frames kept coming"
            assert health["loop_lag_ms"] < 1500, health["loop_lag_ms"]
            # Past stale_after the frozen memory numbers are cleared, not shown as current.
            await until(
                lambda: sampler.latest is not None and sampler.latest["mem_percent"] is None,
                5,
                lambda: sampler.latest,
            )
            release.set()
            await until(lambda: sampler.collectors_health()["memory"]["ok"], 10,
                        sampler.collectors_health)  # fmt: skip
            await until(
                lambda: sampler.latest is not None and sampler.latest["mem_percent"] is not None,
                5,
                lambda: sampler.latest,
            )
            await agent.stop()
            hub.flush()
            assert agent.applied() == agent.sent, "every event published meanwhile was applied"
            assert hub.health()["task_restarts"] == {}

    try:
        run(main)
    finally:
        release.set()


# -- NVML ------------------------------------------------------------------------------------------
class NVMLError(Exception):
    def __init__(self, value: int, text: str) -> None:
        super().__init__(text)
        self.value = value


class UnloadableNVML(types.ModuleType):
    """A ``pynvml`` whose library can disappear: after :meth:`unload` every call raises
    ``NVMLError`` (Uninitialized / LibraryNotFound), as when the driver is unloaded mid-run."""

    NVMLError = NVMLError
    NVML_ERROR_NOT_SUPPORTED = 3
    NVML_TEMPERATURE_GPU = 0

    def __init__(self) -> None:
        super().__init__("pynvml")
        self.loaded = True
        self.inits = 0

    def _check(self) -> None:
        if not self.loaded:
            raise NVMLError(12, "NVML Shared Library Not Found")

    def nvmlInit(self) -> None:
        self._check()
        self.inits += 1

    def nvmlShutdown(self) -> None:
        self._check()

    def nvmlDeviceGetCount(self) -> int:
        self._check()
        return 2

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        self._check()
        return i

    def nvmlDeviceGetName(self, handle: int) -> str:
        self._check()
        return f"FakeGPU {handle}"

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> Any:
        self._check()
        return types.SimpleNamespace(gpu=50 + handle, memory=1)

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> Any:
        self._check()
        return types.SimpleNamespace(used=2**30, total=2**34)

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        self._check()
        return 40


def test_nvml_disappearing_mid_run_is_contained_rows_vanish_and_it_comes_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Injected: NVML (a fake ``pynvml``: no GPU here) unloads mid-run: every call raises
    ``NVMLError``, re-initialisation too. Must hold: the hub keeps sampling and rendering; the
    ``gpu`` collector is reported degraded with the error; the GPU rows vanish after ``hold``;
    NVML is re-tried with backoff; when it comes back the rows return (``recoveries`` == 1)."""
    fake = UnloadableNVML()
    monkeypatch.setitem(__import__("sys").modules, "pynvml", fake)

    async def main() -> None:
        hub = Hub(sample_interval=0.1, render_hz=20)
        gpu = hub.system.gpu  # created now, with the fake
        assert gpu.backend == "nvml"
        gpu.retry_initial, gpu.retry_max, gpu.hold = 0.2, 0.4, 0.5
        frames: list[dict[str, Any]] = []
        hub.watch(["system"], frames.append, max_hz=20)

        def gpus() -> int:
            latest = hub.system.latest
            return len(latest["gpus"]) if latest else -1

        async with hub:
            agent = Publisher(hub).start()
            await until(lambda: gpus() == 2, 10, lambda: hub.system.latest)
            fake.loaded = False
            inits = fake.inits
            await until(lambda: gpus() == 0, 10, lambda: hub.health()["collectors"]["gpu"])
            state = hub.health()["collectors"]["gpu"]
            assert state["ok"] is False and state["degraded"] is True, state
            assert "Library Not Found" in state["last_error"]["message"], state
            assert hub.system.latest is not None and hub.system.latest["cpu"] is not None
            await until(lambda: frames[-1]["system"]["latest"]["gpus"] == [], 5, lambda: None)
            assert frames[-1]["system"]["series"]["gpu_load"] == []  # no frozen series either
            await asyncio.sleep(1.0)
            errors = hub.health()["collectors"]["gpu"]["errors"]
            assert errors >= 2, "re-initialisation was tried again (and failed, counted)"
            fake.loaded = True
            await until(lambda: gpus() == 2, 10, lambda: hub.health()["collectors"]["gpu"])
            assert fake.inits > inits
            state = hub.health()["collectors"]["gpu"]
            assert state["ok"] is True and state["degraded"] is False, state
            assert gpu.recoveries == 1
            await agent.stop()
            hub.flush()
            assert agent.applied() == agent.sent

    run(main)


def test_a_gpu_reading_hung_in_nvml_never_blocks_stop() -> None:
    """Injected: a GPU reading that hangs inside the collector (holding its lock), then
    ``hub.stop()``. Must hold: the GPU is reported timed out while the others go on, and
    ``stop()`` returns at once (it does not wait on the hung NVML call, which releases NVML
    itself when it returns)."""
    from codeur_widgets.core.gpu import GpuCollector

    release = threading.Event()

    class HungNvml(GpuCollector):
        def __init__(self) -> None:
            super().__init__("none")
            self.backend = "nvml"

        def _collect_nvml(self) -> list[dict[str, Any]]:
            release.wait(30)
            return []

    async def main() -> None:
        hub = Hub(sample_interval=0.1)
        hub.system._gpu = HungNvml()
        hub.system._owns_gpu = True
        hub.system.gpu_timeout = 0.3
        async with hub:
            await until(lambda: hub.health()["collectors"]["gpu"]["timeouts"] == 1, 10,
                        lambda: hub.health()["collectors"])  # fmt: skip
            assert hub.health()["collectors"]["cpu"]["ok"]
            start = time.monotonic()
            hub.stop()
            assert time.monotonic() - start < 1.0, "stop() waited on a hung GPU reading"
        release.set()

    try:
        run(main)
    finally:
        release.set()


# -- render tick -----------------------------------------------------------------------------------
def test_keyboard_interrupt_during_a_render_tick_is_contained_in_a_running_hub() -> None:
    """Injected: a view whose callback raises ``KeyboardInterrupt`` (Ctrl-C landing during a
    render tick) three times while events flow. Must hold: the render task lives on (no
    restart needed), ``render_interrupts`` == 3, the interrupted view is redrawn with the current
    state, the other view is unaffected, and every event is applied."""

    async def main() -> None:
        hub = Hub(collect_system=False, render_hz=20)
        interrupts = 3
        seen: list[int] = []
        other: list[int] = []

        def fragile(frame: dict[str, Any]) -> None:
            nonlocal interrupts
            if interrupts:
                interrupts -= 1
                raise KeyboardInterrupt
            seen.append(len(frame["agents"]["agents"]))

        hub.watch(["agents"], fragile, max_hz=20)
        hub.watch(["agents"], lambda f: other.append(len(f["agents"]["agents"])), max_hz=20)
        async with hub:
            agent = Publisher(hub).start()
            await until(lambda: len(seen) >= 5, 10, lambda: (seen, hub.health()))
            hub.agent("late_agent")
            await until(lambda: seen[-1] == 2, 5, lambda: seen)  # redrawn, current state
            health = hub.health()
            assert health["render_interrupts"] == 3, health
            assert health["task_restarts"] == {}, health
            assert health["running"] is True
            assert len(other) >= len(seen), "the other view missed no frame"
            await agent.stop()
            hub.flush()
            assert agent.applied() == agent.sent

    run(main)


# -- Redis -----------------------------------------------------------------------------------------
def test_redis_killed_is_visible_in_health_and_the_rest_keeps_working(
    make_redis: Callable[..., Any],
) -> None:
    """Injected: ``kill -9`` of the redis-server a hub reads from (``appendfsync always``), while
    an Emitter keeps publishing; restarted 1 s later. Must hold: during the outage
    ``health()["sources"][0]`` says disconnected with the error (password-free), in-process
    events keep being applied and frames keep coming; after the restart every event the emitter
    published is applied exactly once (nothing acknowledged lost, nothing twice)."""
    from codeur_widgets.emit import Emitter
    from codeur_widgets.transports.redis_streams import RedisStreamSource

    server = make_redis(appendfsync="always")
    stream = f"faults:{uuid.uuid4().hex[:8]}"
    url = f"{server.url}?stream={stream}"

    async def main() -> None:
        source = RedisStreamSource(url, group="faults", block_ms=100, count=500)
        hub = Hub(collect_system=False, sources=[source], render_hz=20)
        frames: list[float] = []
        hub.watch(["agents"], lambda f: frames.append(time.monotonic()), max_hz=20)
        emitter = Emitter(url, backoff=(0.05, 0.3), buffer=100_000)
        stop_emitting = threading.Event()
        emitted = 0

        def emit() -> None:
            nonlocal emitted
            while not stop_emitting.is_set():
                emitter.publish("agent.tokens", "remote", prompt=1, completion=0)
                emitted += 1
                time.sleep(0.001)

        def remote() -> int:
            for a in hub.agents.snapshot()["agents"]:
                if a["name"] == "remote":
                    return int(a["prompt_tokens"])
            return 0

        async with hub:
            local = Publisher(hub, "local").start()
            thread = threading.Thread(target=emit, daemon=True)
            thread.start()
            try:
                await until(lambda: remote() >= 200, 20, source.health)
                await asyncio.to_thread(server.stop, True)  # kill -9
                await until(lambda: not source.health()["connected"], 10, source.health)
                t0, local_before = time.monotonic(), local.applied()
                await asyncio.sleep(1.0)
                health = hub.health()["sources"][0]
                assert health["connected"] is False and health["errors"] >= 1, health
                assert health["state"] in ("reconnecting", "connecting"), health
                assert health["last_error"], health
                assert local.applied() > local_before + 20, "in-process events kept flowing"
                assert len([f for f in frames if f >= t0]) >= 5, "frames kept coming"
                await asyncio.to_thread(server.start)
            finally:
                stop_emitting.set()
                await asyncio.to_thread(thread.join, 10)
            assert await asyncio.to_thread(emitter.flush, 30), emitter.health()
            await until(lambda: remote() == emitted, 30, lambda: (remote(), emitted,
                        source.health()))  # fmt: skip
            await asyncio.sleep(0.5)
            assert remote() == emitted, "applied exactly once"
            assert source.health()["connected"] is True and source.reconnects >= 1
            await local.stop()
        emitter.close(timeout=2)

    run(main, timeout=90)
