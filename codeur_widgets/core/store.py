"""The base class of every store: a version counter, an injected clock, a snapshot."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from .clock import Clock, wall_clock
from .events import Event


class Store:
    """A pure-Python aggregate fed by the bus and read by views.

    Subclasses set ``name`` and ``topics``, implement :meth:`apply` (O(1) per event) and
    :meth:`snapshot` (JSON-serialisable, small), and call :meth:`touch` whenever something a view
    could show has changed. The render tick compares :attr:`version` to decide what to send.
    """

    name: ClassVar[str] = "store"
    topics: ClassVar[tuple[str, ...]] = ()

    def __init__(self, clock: Clock = wall_clock) -> None:
        self.clock = clock
        self.version = 0

    def touch(self) -> None:
        """Mark the store as changed (views will be refreshed on the next tick)."""
        self.version += 1

    def apply(self, event: Event) -> None:
        """Fold one event into the store."""
        raise NotImplementedError

    def routes(self) -> dict[str, Callable[[Event], None]] | None:
        """Optional: ``{exact topic: handler}`` for the hub to subscribe instead of
        :meth:`apply` (one call less per event on a hot path); each handler must do what
        ``apply`` does for its topic, or hand the event to a batch that the store folds in
        before anything reads it, :attr:`version` included (the trace store does). None (the
        default): ``apply`` on every pattern of :attr:`topics`."""
        return None

    def snapshot(self) -> dict[str, Any]:
        """A JSON-serialisable view of the current state."""
        raise NotImplementedError

    def tick(self, now: float) -> None:
        """Called by the hub about once a second for time-driven changes (staleness, expiry)."""
