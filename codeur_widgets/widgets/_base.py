"""The base of every single-panel widget: one ``hub.watch``, frames become traits.

A widget never computes: the hub's render tick hands it snapshots of the stores it watches, at
most ``max_hz`` times a second and only when one of them changed; :meth:`HubWidget._state` maps
them to trait values, which are set inside ``hold_sync()`` so that a frame is one comm message.
Time-dependent values (ages, elapsed times, flow decay) are advanced by the browser.

A widget brings its hub to life: creating or displaying one on a hub that is not started starts
it on the running asyncio loop of this thread (a notebook cell has one), see :func:`bring_to_life`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import anywidget
import ipywidgets

from ._bundle import Bundle

if TYPE_CHECKING:
    from ..core.hub import Hub, Watch

__all__ = [
    "MAX_HZ",
    "HubWidget",
    "WatchedView",
    "bring_to_life",
    "close_models",
    "descendants",
    "resolve_hub",
    "swap_watch",
    "watch_hz",
]

MAX_HZ = 10.0
"""Frames per second a widget accepts at most: the comm budget is 10 messages/s per widget."""

HUB_SLACK = 0.9
"""The hub calls a watch once 90 % of its interval has passed (slack for timer jitter), so a
widget asks ``hub.watch`` for ``rate * HUB_SLACK`` to keep its frames a full ``1 / rate`` apart."""


def watch_hz(rate: float) -> float:
    """The ``max_hz`` to ask of ``hub.watch`` for at most ``rate`` frames in any second."""
    return rate * HUB_SLACK


Frame = dict[str, dict[str, Any]]


def descendants(root: Any) -> list[ipywidgets.Widget]:
    """Every open widget model reachable from ``root`` (a widget, or a list or dict of them),
    ``root`` included: layout and style, children, the parts of a bqplot figure, the panels of a
    composite (through traits and attributes)."""
    seen: dict[str, ipywidgets.Widget] = {}
    todo: list[Any] = [root]
    while todo:
        item = todo.pop()
        if isinstance(item, (list, tuple)):
            todo.extend(item)
        elif isinstance(item, dict):
            todo.extend(item.values())
        elif isinstance(item, ipywidgets.Widget) and item.comm is not None:
            if item.model_id in seen:
                continue
            seen[item.model_id] = item
            todo.extend(getattr(item, name, None) for name in item.trait_names() if name != "comm")
            todo.extend(v for v in vars(item).values() if isinstance(v, ipywidgets.Widget))
    return list(seen.values())


def swap_watch(
    widget: Any, old: Watch | None, hub: Hub, stores: tuple[str, ...], max_hz: float
) -> Watch:
    """Move ``widget``'s registration from ``old`` to ``hub`` (keeping its pause); the new watch
    calls ``widget._on_frame``. Raises if the widget is closed (``old`` is None)."""
    if old is None:
        raise RuntimeError(f"{type(widget).__name__} is closed")
    old.close()
    new = hub.watch(stores, widget._on_frame, max_hz=watch_hz(max_hz))
    new.paused = old.paused
    return new


def close_models(root: ipywidgets.Widget, close_root: Callable[[], None]) -> None:
    """Run ``close_root()`` (the widget's own close), then close every model it had created.

    ipywidgets keeps each model in a registry with an open comm until ``close()``: a widget that
    closed only itself would leave its Layout, children and bqplot parts behind (a leak per
    widget displayed, found by tests/reliability/test_leaks.py).
    """
    models = descendants(root)
    close_root()
    for model in models:
        if model is not root:
            model.close()


def resolve_hub(hub: Hub | None) -> Hub:
    """``hub``, or the process-wide default hub (created and started on first use)."""
    if hub is not None:
        return hub
    from ..core.hub import default_hub  # the default hub exists only once someone asks for it

    return default_hub()


def bring_to_life(hub: Hub) -> bool:
    """Start ``hub`` if it is stopped and this thread runs an asyncio loop; True if it runs.

    The rule every widget follows when it is created or displayed: a dashboard on a hub nobody
    started would otherwise never move. A hub rebuilt from history (``hub.past`` set) shows a
    past moment and is never started; without a running loop (a plain script) nothing happens
    and the header says how to start the hub.
    """
    if hub.running:
        return True
    if getattr(hub, "past", None) is not None:
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    hub.start()
    return True


class WatchedView:
    """``closed`` and ``paused`` for a widget fed by one :class:`Watch` held in ``_watch``."""

    _watch: Watch | None
    _hub: Hub

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        # Displayed (again) on a hub stopped since it was created: start it as on creation.
        if getattr(self, "_watch", None) is not None:
            bring_to_life(self._hub)
        return super()._repr_mimebundle_(**kwargs)  # type: ignore[misc]

    @property
    def closed(self) -> bool:
        """True once ``close()`` has detached the widget from its hub."""
        return self._watch is None

    @property
    def paused(self) -> bool:
        """While true the widget keeps its last frame (the hub goes on ingesting)."""
        return self._watch is not None and self._watch.paused

    @paused.setter
    def paused(self, value: bool) -> None:
        if self._watch is not None:
            self._watch.paused = bool(value)


class HubWidget(WatchedView, anywidget.AnyWidget):
    """An anywidget fed by exactly one :meth:`Hub.watch` registration.

    Subclasses set ``_esm = Bundle("<module name>")``, ``_stores`` (the store names to watch) and
    implement :meth:`_state`. ``close()`` detaches the watch.

    Creating or displaying one on a hub that is not started starts the hub on the running
    asyncio loop (a notebook cell's); a hub rebuilt from history is never started.
    """

    _esm = Bundle("__abstract__")
    _stores: ClassVar[tuple[str, ...]] = ()
    _max_hz: ClassVar[float] = MAX_HZ

    def __init__(self, hub: Hub | None = None, **kwargs: Any) -> None:
        self._hub = resolve_hub(hub)
        self._watch: Watch | None = None
        bring_to_life(self._hub)
        # The first state travels with the comm-open message, so a new view is never empty.
        frame = {name: self._hub.stores[name].snapshot() for name in self._stores}
        state = self._state(frame, kwargs, initial=True)
        state.update(kwargs)
        super().__init__(**state)
        self._watch = self._hub.watch(self._stores, self._on_frame, max_hz=watch_hz(self._max_hz))

    @property
    def hub(self) -> Hub:
        """The hub this widget watches."""
        return self._hub

    def rebind(self, hub: Hub) -> None:
        """Show ``hub`` from now on, e.g. a past state rebuilt from history, or live again.

        The new state is sent at once (one message): a rebuilt hub is never started, so its
        render tick would never run. Pausing carries over.
        """
        if hub is self._hub:
            return
        self._watch = swap_watch(self, self._watch, hub, self._stores, self._max_hz)
        self._hub = hub
        self._on_frame({name: hub.stores[name].snapshot() for name in self._stores})

    def _state(
        self, frame: Frame, traits: Mapping[str, Any], *, initial: bool = False
    ) -> dict[str, Any]:
        """Trait values for a frame.

        ``traits`` holds the constructor's trait values, not set yet when ``initial`` is true
        (the state computed before the comm opens); read traits through :meth:`_trait`.
        """
        raise NotImplementedError

    def _trait(self, traits: Mapping[str, Any], name: str) -> Any:
        """A trait's value, preferring one passed to the constructor that is not set yet."""
        return traits[name] if name in traits else getattr(self, name)

    def _on_frame(self, frame: Frame) -> None:
        if self._watch is None:
            return
        with self.hold_sync():  # one comm message per frame, carrying only the traits that changed
            for name, value in self._state(frame, {}).items():
                setattr(self, name, value)

    def close(self) -> None:
        """Detach from the hub and close the comm (idempotent)."""
        watch = getattr(self, "_watch", None)
        if watch is not None:
            self._watch = None
            watch.close()
        close_models(self, super().close)
