"""LoopWaker: events published from threads reach the loop, and the publishers never make the
wake-up syscall themselves (it would hand the GIL away, see core/waker.py)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from codeur_widgets.core import waker as waker_module
from codeur_widgets.core.hub import Hub


def test_thread_events_are_applied_promptly_and_only_the_waker_wakes_the_loop() -> None:
    callers: set[str] = set()

    async def main() -> tuple[int, float, bool]:
        hub = Hub(collect_system=False)
        loop = asyncio.get_running_loop()
        original = loop.call_soon_threadsafe

        def spy(*args: Any, **kwargs: Any) -> Any:
            callers.add(threading.current_thread().name)
            return original(*args, **kwargs)

        loop.call_soon_threadsafe = spy  # type: ignore[method-assign]
        async with hub:

            def agent() -> None:
                for i in range(2_000):
                    hub.publish("log", "a", data={"message": f"m{i}"})
                    if i % 100 == 0:
                        time.sleep(0.001)

            t0 = time.monotonic()
            worker = threading.Thread(target=agent, name="agent-thread")
            worker.start()
            await asyncio.to_thread(worker.join)
            while hub.logs.total < 2_000 and time.monotonic() - t0 < 5:
                await asyncio.sleep(0.001)
            latency = time.monotonic() - t0
            waker = hub._waker
            assert waker is not None
        await asyncio.sleep(0.05)
        return hub.logs.total, latency, waker.alive

    total, latency, alive_after_stop = asyncio.run(main())
    assert total == 2_000
    assert latency < 2.0
    # (asyncio's own executor threads call it too, to hand back to_thread results)
    assert "codeur_widgets.hub.waker" in callers and "agent-thread" not in callers, callers
    assert not alive_after_stop


def test_an_idle_waker_parks_and_the_next_event_unparks_it(monkeypatch: Any) -> None:
    monkeypatch.setattr(waker_module, "PARK_AFTER", 0.05)

    async def main() -> tuple[bool, int]:
        hub = Hub(collect_system=False)
        async with hub:
            waker = hub._waker
            assert waker is not None
            deadline = time.monotonic() + 2
            while not waker.parked and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            parked = waker.parked
            await asyncio.to_thread(hub.publish, "log", "a", data={"message": "wake up"})
            deadline = time.monotonic() + 2
            while hub.logs.total < 1 and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            return parked, hub.logs.total

    parked, total = asyncio.run(main())
    assert parked, "an idle waker must park (no polling while nothing happens)"
    assert total == 1
