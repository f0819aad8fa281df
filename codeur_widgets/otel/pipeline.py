"""Moving spans from the threads that see them to the hub's loop, where they are correlated.

A framework calls the span processor on its own threads; the OTLP receivers decode requests on
theirs. Neither may wait on the kernel's loop, and the correlator is not thread-safe. So both put
``(function, argument)`` pairs into a :class:`SpanPipeline`: one ``deque.append`` (atomic under
the GIL, no lock) and, only when the hub's :class:`~codeur_widgets.core.waker.LoopWaker` sleeps,
one ``Event.set``. The waker schedules :meth:`SpanPipeline._drain` on the loop, which calls the
functions (convert, normalise, correlate) and applies the events with ``hub.publish_many``, in
slices of :data:`DRAIN_SLICE` seconds so the loop stays responsive.

A pipeline is a hub :class:`~codeur_widgets.core.hub.Source`: ``hub.start()`` starts its waker
and a housekeeping task (held spans released on time, heartbeats for agents whose span is open);
before the hub runs, and after it stopped, work is done at once in the calling thread, under a
lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..core.events import Event
from ..core.gcpause import paused_gc
from ..core.waker import LoopWaker
from .correlate import DEFAULT_HOLD, Correlator

if TYPE_CHECKING:
    from ..core.hub import Hub

__all__ = ["DRAIN_SLICE", "MAX_PENDING", "SpanPipeline"]

log = logging.getLogger("codeur_widgets.otel")

DRAIN_SLICE = 0.02
"""Seconds of work per loop callback before yielding to the loop's other callbacks."""
MAX_PENDING = 200_000
"""Items waiting for the loop before the oldest are dropped (processor) or requests refused
(receivers answer 503 / UNAVAILABLE, and exporters retry)."""
HEARTBEAT_EVERY = 5.0


class SpanPipeline:
    """Span work handed from any thread to the hub's loop (see the module docstring)."""

    def __init__(
        self,
        hub: Hub | None,
        *,
        capture_content: bool,
        hold: float = DEFAULT_HOLD,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.hub = hub
        self.correlator = Correlator(self._emit, capture_content=capture_content, hold=hold)
        self.max_pending = max_pending
        self._items: deque[tuple[Callable[[Any], Any], Any]] = deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waker: LoopWaker | None = None
        self._task: asyncio.Task[None] | None = None
        self.errors = 0
        self.dropped = 0
        self.events = 0
        self._reported: set[type] = set()

    # -- from any thread -----------------------------------------------------------------------
    def put(self, fn: Callable[[Any], Any], arg: Any) -> None:
        """Have ``fn(arg)`` run on the hub's loop (now, in this thread, when it does not run)."""
        if self._loop is None:
            hub = self.hub
            owner = hub.loop_thread if hub is not None else None
            if owner is None or owner == threading.get_ident():
                self._run_now(fn, arg)
                return
            # The hub runs on another thread and this pipeline is about to start there: wait.
        items = self._items
        items.append((fn, arg))
        if len(items) > self.max_pending:
            self._trim()
        waker = self._waker
        if waker is not None and waker.parked:
            waker.poke()

    def backlog(self) -> int:
        """Items waiting for the loop."""
        return len(self._items)

    def accepting(self) -> bool:
        """False while the backlog is full (receivers then ask exporters to retry later)."""
        return len(self._items) < self.max_pending

    def _trim(self) -> None:
        with self._lock:
            while len(self._items) > self.max_pending:
                try:
                    self._items.popleft()
                except IndexError:
                    break
                self.dropped += 1

    def _run_now(self, fn: Callable[[Any], Any], arg: Any) -> None:
        with self._lock:
            self._call(fn, arg)

    def _call(self, fn: Callable[[Any], Any], arg: Any) -> None:
        try:
            fn(arg)
        except Exception as exc:  # never into the framework, never out of the loop
            self.errors += 1
            if type(exc) not in self._reported:
                self._reported.add(type(exc))
                log.error("OpenTelemetry span handling failed (reported once)", exc_info=exc)

    # -- on the loop ---------------------------------------------------------------------------
    def _emit(self, events: list[Event]) -> None:
        if self.hub is None or not events:
            return
        self.events += len(events)
        self.hub.publish_many(events)

    def _drain(self) -> None:
        with paused_gc():  # a slice's records, nodes and events are no cyclic garbage
            self._drain_slice()

    def _drain_slice(self) -> None:
        items = self._items
        deadline = time.perf_counter() + DRAIN_SLICE
        call = self._call
        while items:
            try:
                fn, arg = items.popleft()
            except IndexError:
                break
            call(fn, arg)
            if time.perf_counter() > deadline:
                if items and self._loop is not None:
                    self._loop.call_soon(self._drain)
                return

    def flush(self) -> None:
        """Do everything waiting now, and release held spans whose time is up (loop thread or
        a stopped hub)."""
        with self._lock:
            while self._items:
                try:
                    fn, arg = self._items.popleft()
                except IndexError:
                    break
                self._call(fn, arg)
            self._call(lambda _: self.correlator.sweep(), None)

    def release_all(self) -> None:
        """Release every held span now (end of a run, a test)."""
        self.flush()
        with self._lock:
            self._call(lambda _: self.correlator.sweep(everything=True), None)

    # -- Source protocol -----------------------------------------------------------------------
    def start(self, hub: Hub) -> None:
        """Called by ``hub.start()`` on its running loop."""
        if self._loop is not None:
            return
        self.hub = hub
        loop = asyncio.get_running_loop()
        self.flush()
        self._waker = LoopWaker(
            loop, lambda: bool(self._items), self._drain, name="codeur_widgets.otel.waker"
        ).start()
        self._loop = loop
        self._task = loop.create_task(self._housekeeping(), name="codeur_widgets.otel.sweep")

    def stop(self) -> None:
        loop, self._loop = self._loop, None
        waker, self._waker = self._waker, None
        if waker is not None:
            waker.stop()
        if self._task is not None:
            self._task.cancel()
        if loop is None or self._on_thread(loop):
            self.flush()

    @staticmethod
    def _on_thread(loop: asyncio.AbstractEventLoop) -> bool:
        try:
            return asyncio.get_running_loop() is loop
        except RuntimeError:
            return False

    async def aclose(self) -> None:
        self.stop()
        task, self._task = self._task, None
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _housekeeping(self) -> None:
        last_beat = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            self._call(lambda _: self.correlator.sweep(), None)
            now = time.monotonic()
            if now - last_beat >= HEARTBEAT_EVERY and self.hub is not None:
                last_beat = now
                for agent in sorted(self.correlator.open_agents()):
                    with contextlib.suppress(Exception):
                        self.hub.publish("agent.heartbeat", agent)

    def health(self) -> dict[str, Any]:
        return {
            "backlog": len(self._items),
            "dropped": self.dropped,
            "errors": self.errors,
            "events": self.events,
            **self.correlator.counters(),
        }
