"""The event bus: glob-topic subscriptions with synchronous, isolated dispatch.

Dispatch is O(1) in the number of subscriptions for a topic already seen: the handlers matching a
topic are resolved once and cached until the subscriptions change. A handler that raises never
stops the others; its failures are counted and reported once through :mod:`logging`.

The bus also owns the *rejection* bookkeeping for untrusted input (:meth:`EventBus.ingest`): a
transport hands it raw dicts, and whatever is invalid is counted and a short sample kept for
inspection, never raised into the reader.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from .clock import Clock, wall_clock
from .events import Event, InvalidEvent

__all__ = ["EventBus", "Handler", "Subscription", "ThreadInbox"]

log = logging.getLogger("codeur_widgets.bus")

Handler = Callable[[Event], Any]

REJECT_SAMPLES = 50
REJECT_SAMPLE_BYTES = 200


class Subscription:
    """A live subscription; :meth:`close` removes it."""

    __slots__ = ("_bus", "handler", "pattern")

    def __init__(self, bus: EventBus, pattern: str, handler: Handler) -> None:
        self._bus = bus
        self.pattern = pattern
        self.handler = handler

    def close(self) -> None:
        self._bus.unsubscribe(self)

    def __repr__(self) -> str:
        name = getattr(self.handler, "__qualname__", self.handler)
        return f"Subscription({self.pattern!r}, {name!r})"


class EventBus:
    """Synchronous publish/subscribe on dotted topics.

    Patterns use shell globs (:func:`fnmatch.fnmatchcase`): ``agent.*`` matches
    ``agent.task.started`` (``*`` spans dots), ``*`` matches everything, an exact topic matches
    itself.
    """

    def __init__(self, clock: Clock = wall_clock) -> None:
        self.clock = clock
        self._subs: list[Subscription] = []
        self._routes: dict[str, tuple[Handler, ...]] = {}
        self._reported: set[tuple[int, type]] = set()
        self.accepted = 0
        self.rejected = 0
        self.handler_errors = 0
        self.rejected_samples: deque[dict[str, str]] = deque(maxlen=REJECT_SAMPLES)

    # -- subscriptions -------------------------------------------------------------------------
    def subscribe(self, pattern: str, handler: Handler) -> Subscription:
        """Call ``handler(event)`` for every event whose topic matches ``pattern``."""
        if not isinstance(pattern, str) or not pattern:
            raise ValueError("pattern must be a non-empty string")
        if not callable(handler):
            raise TypeError("handler must be callable")
        sub = Subscription(self, pattern, handler)
        self._subs.append(sub)
        self._routes.clear()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Remove a subscription (no error if it is already gone)."""
        try:
            self._subs.remove(sub)
        except ValueError:
            return
        self._routes.clear()

    @property
    def subscriptions(self) -> list[Subscription]:
        return list(self._subs)

    def _route(self, topic: str) -> tuple[Handler, ...]:
        handlers = tuple(
            s.handler
            for s in self._subs
            if s.pattern == topic or s.pattern == "*" or fnmatch.fnmatchcase(topic, s.pattern)
        )
        # Topics are validated to a short alphabet, but a flood of distinct ones must not grow the
        # cache without bound.
        if len(self._routes) > 10_000:
            self._routes.clear()
        self._routes[topic] = handlers
        return handlers

    # -- dispatch ------------------------------------------------------------------------------
    def dispatch(self, event: Event) -> None:
        """Deliver a validated event to its handlers, isolating their failures."""
        self.accepted += 1
        handlers = self._routes.get(event.topic)
        if handlers is None:
            handlers = self._route(event.topic)
        for handler in handlers:
            try:
                handler(event)
            except Exception as exc:
                self.report_error(handler, event.topic, exc)

    def dispatch_many(self, events: Iterable[Event]) -> int:
        """Deliver several validated events in order; returns how many."""
        n = 0
        routes = self._routes
        for event in events:
            n += 1
            handlers = routes.get(event.topic)
            if handlers is None:
                handlers = self._route(event.topic)
                routes = self._routes
            for handler in handlers:
                try:
                    handler(event)
                except Exception as exc:
                    self.report_error(handler, event.topic, exc)
        self.accepted += n
        return n

    def report_error(self, where: object, topic: str, exc: BaseException) -> None:
        """Count a failure of ``where`` (a handler, a periodic job) and log it once per kind."""
        self.handler_errors += 1
        key = (id(where), type(exc))
        if key not in self._reported:
            self._reported.add(key)
            name = getattr(where, "__qualname__", repr(where))
            log.error(
                "%s failed on topic %r (reported once per handler and error type)",
                name,
                topic,
                exc_info=exc,
            )

    # -- untrusted input -----------------------------------------------------------------------
    def ingest(self, raw: object) -> Event | None:
        """Validate and dispatch input from outside the process. Never raises.

        Returns the event, or ``None`` when ``raw`` was rejected (counted in :attr:`rejected`, a
        sample of its first bytes kept in :attr:`rejected_samples`).
        """
        event = self.parse(raw)
        if event is not None:
            self.dispatch(event)
        return event

    def parse(self, raw: object) -> Event | None:
        """Validate input from outside the process without dispatching it. Never raises:
        ``None`` when ``raw`` was rejected (counted and sampled as by :meth:`ingest`)."""
        try:
            return raw if isinstance(raw, Event) else Event.from_dict(raw, clock=self.clock)
        except InvalidEvent as exc:
            self.reject(raw, exc.field, exc.reason)
            return None
        except Exception as exc:  # a hostile mapping whose methods raise, say
            self.reject(raw, "event", f"{type(exc).__name__}: {exc}")
            return None

    def reject(self, raw: object, field: str, reason: str) -> None:
        """Count one rejected input and keep a short, safe sample of it."""
        self.rejected += 1
        try:
            shown = repr(raw)
        except Exception:
            shown = f"<unprintable {type(raw).__name__}>"
        self.rejected_samples.append(
            {"field": field, "reason": reason[:200], "sample": shown[:REJECT_SAMPLE_BYTES]}
        )


class ThreadInbox:
    """A bounded, thread-safe buffer of events published from threads other than the loop's.

    ``put`` never waits on the loop, and in the common case takes no lock either: it is one
    ``deque.append`` (atomic under the GIL) and two checks, because an agent thread pays for
    every call with cold caches and each object it touches then costs (see the agent section of
    ``python -m benchmarks``). It asks for a wake-up only when none is pending (the hub's
    :class:`~.waker.LoopWaker` then schedules one drain per batch, never one per event, and the
    publisher makes no syscall).

    The bound: a ``put`` that finds more than ``capacity`` events waiting removes the oldest and
    counts each in :attr:`dropped`. Only that overload path takes a lock, shared by publishing
    threads and never held by the loop, so a publisher still never waits on the loop. Every event
    put is either taken or counted as dropped, exactly; while the loop and the publishers race,
    the buffer may hold a few events over ``capacity`` for a moment.
    """

    def __init__(self, capacity: int, wake: Callable[[], None]) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        # Never replaced: publishers append to it without a lock, so a swap could lose an event.
        self._items: deque[Event] = deque()
        self._trim_lock = threading.Lock()
        self._wake = wake
        self._wake_pending = False
        self.dropped = 0

    def put(self, event: Event) -> None:
        items = self._items
        items.append(event)
        if len(items) > self.capacity:
            self._trim()
        if not self._wake_pending:
            # Two publishers may both get here: one extra poke, which is harmless.
            self._wake_pending = True
            self._wake()

    def _trim(self) -> None:
        # Overload only. The loop may be taking events at the same time: both pop from the left,
        # each event goes to one of them, and only the ones popped here are counted as dropped.
        with self._trim_lock:
            items = self._items
            while len(items) > self.capacity:
                try:
                    items.popleft()
                except IndexError:  # the loop took the rest meanwhile
                    break
                self.dropped += 1

    def take(self, limit: int) -> list[Event]:
        """Remove and return up to ``limit`` events, oldest first (called by the loop)."""
        # First: a put from now on asks for a wake-up again, so none is left unannounced.
        self._wake_pending = False
        items = self._items
        popleft = items.popleft
        out: list[Event] = []
        append = out.append
        try:
            for _ in range(min(limit, len(items))):
                append(popleft())
        except IndexError:  # a publisher's trim took the last ones
            pass
        return out

    def wake_failed(self) -> None:
        """The wake-up could not be scheduled (no loop): allow the next put to try again."""
        self._wake_pending = False

    def __len__(self) -> int:
        return len(self._items)
