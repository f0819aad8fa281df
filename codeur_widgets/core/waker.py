"""Waking the hub's loop for events buffered by other threads, without costing the agents.

Scheduling a callback from another thread (``loop.call_soon_threadsafe``) writes to the loop's
self-pipe. That ``send`` releases the GIL, and when the loop's thread is busy in Python the
publishing thread then waits up to ``sys.getswitchinterval()`` (5 ms) to get it back: an agent
that publishes steadily, one event every few milliseconds, saw a p99 call time of 5 ms this way
(``python -m benchmarks --only agent``). So agents never make that call. A :class:`LoopWaker`
thread does it for them:

* while events flow it polls the buffer every :data:`POLL_INTERVAL` seconds and schedules one
  drain when something is waiting (a few milliseconds of latency, far below a render frame);
* after :data:`PARK_AFTER` seconds without events it parks on a :class:`threading.Event`, so an
  idle hub costs nothing; the next publisher sets the event (only then, once) to unpark it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

__all__ = ["PARK_AFTER", "POLL_INTERVAL", "LoopWaker"]

POLL_INTERVAL = 0.002
"""Seconds between two looks at the buffer while events flow."""

PARK_AFTER = 1.0
"""Seconds without buffered events after which the waker sleeps until the next one."""


class LoopWaker:
    """A daemon thread that schedules ``drain`` on ``loop`` when ``pending()`` is true.

    ``poke()`` is what a publishing thread calls after buffering an event: a flag check, and a
    :meth:`threading.Event.set` only when the waker is parked.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        pending: Callable[[], bool],
        drain: Callable[[], None],
        *,
        name: str = "codeur_widgets.hub.waker",
    ) -> None:
        self._loop = loop
        self._pending = pending
        self._drain = drain
        self._scheduled = False
        self.parked = False
        """True while the thread sleeps until the next :meth:`poke` (a plain attribute, not a
        property: publishers read it on every wake-up)."""
        self._unpark = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> LoopWaker:
        self._thread.start()
        return self

    def stop(self, wait: float = 0.5) -> None:
        """End the thread, waiting at most ``wait`` seconds (it ends within
        :data:`POLL_INTERVAL`: it never waits on the loop), so that a stopped hub is not kept
        alive by its waker."""
        self._stopping = True
        self._unpark.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(wait)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def poke(self) -> None:
        """Called by a publishing thread after buffering: unpark the waker if it sleeps."""
        if self.parked:
            self._unpark.set()

    def _run_drain(self) -> None:
        # On the loop: allow the next schedule first, so events buffered while draining are
        # seen by the waker's next look.
        self._scheduled = False
        self._drain()

    def _run(self) -> None:
        last_seen = time.monotonic()
        while not self._stopping:
            if self._pending():
                last_seen = time.monotonic()
                if not self._scheduled:
                    self._scheduled = True
                    try:
                        self._loop.call_soon_threadsafe(self._run_drain)
                    except RuntimeError:  # the loop is closed: nothing left to wake
                        return
            elif time.monotonic() - last_seen > PARK_AFTER:
                self._park()
                last_seen = time.monotonic()
                continue
            time.sleep(POLL_INTERVAL)

    def _park(self) -> None:
        self.parked = True
        # Look again after raising the flag: an event buffered just before it was raised saw
        # the flag down and did not set the event.
        if not self._pending() and not self._stopping:
            self._unpark.wait(timeout=PARK_AFTER * 10)
        self._unpark.clear()
        self.parked = False
