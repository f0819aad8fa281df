"""The Hub: one bus, the stores, the periodic tasks, and the single render tick.

A Hub is plain Python: it never imports Jupyter. Widgets register with :meth:`Hub.watch` and are
called at most ``render_hz`` times a second with fresh snapshots of the stores that changed, so
comm traffic depends on the frame rate, never on the event rate (DESIGN sections 1 and 6).

Typical use in a notebook cell (a running asyncio loop is available there)::

    hub = Hub()
    Dashboard(hub)   # a widget created on a stopped hub starts it on the kernel's loop
    a = hub.agent("coding_agent", model="gpt-4o", role="executor")
    with a.task("Implement #42"):
        ...

Without a widget, ``hub.start()`` starts it. In a script, create and start it inside
``asyncio.run(...)``; ``async with Hub() as hub:`` starts and stops it. A hub rebuilt from
history (``hub.history.rebuild(...)``) holds a past moment: its :attr:`Hub.past` is set and it is
never started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from threading import get_ident as _get_ident
from typing import Any, Protocol

import networkx as nx

from .agent import AgentHandle
from .alerts import Alerts
from .bus import EventBus, ThreadInbox
from .clock import Clock, wall_clock
from .collectors import TOPIC as CUSTOM_TOPIC
from .collectors import CustomCollector, CustomMetrics
from .events import _ID_COUNTER as _ID
from .events import (
    _ID_PREFIX,
    _MAX_TS_SECONDS,
    MAX_ID,
    Event,
    InvalidEvent,
    Publisher,
    clean_data,
)
from .events import _valid_agents as _seen_agents
from .events import _valid_topics as _seen_topics
from .flows import FlowTracker
from .graph import AgentGraph
from .history import History
from .hooks import get_hook
from .logs import LogBuffer, LogHandler, capture_logging
from .prices import Prices
from .queue import QueueStats
from .registry import AgentRegistry
from .sources import open_source
from .spans import strip_content
from .store import Store
from .system import SystemSampler
from .tasks import wait_cancelled
from .traces import TraceStore
from .usage import UsageWindows
from .waker import LoopWaker

__all__ = ["Hub", "Source", "Watch", "default_hub"]

log = logging.getLogger("codeur_widgets.hub")

DRAIN_BATCH = 5_000
"""Events applied per loop callback when draining the thread inbox (keeps the loop responsive)."""

_RATE_SLACK = 0.9
"""A watch may be called when 90 % of its interval has passed: timers fire a little early or late,
and a strict comparison would halve the frame rate whenever a tick came in a hair early."""

SYSTEM_WINDOW = 3600.0
"""Seconds of system samples kept in memory: the longest live window the dashboard offers."""

HISTORY_FLUSH_TIMEOUT = 5.0
"""Seconds :meth:`Hub.stop` waits for the history to write what was accepted."""

IDLE_TICK = 0.2
"""Seconds between render ticks when nothing has changed for a while (adaptive frame rate)."""


class Source(Protocol):
    """Something that feeds a hub from outside the process (e.g. a Redis stream reader).

    ``start(hub)`` spawns its own task(s) on the running loop and hands what it reads to
    ``hub.ingest`` (untrusted input: never raises) or ``hub.publish_many``; ``stop()`` cancels,
    ``aclose()`` waits for the end; ``health()`` is a small JSON-serialisable dict whose text never
    contains credentials.
    """

    def start(self, hub: Hub) -> None: ...

    def stop(self) -> None: ...

    async def aclose(self) -> None: ...

    def health(self) -> dict[str, Any]: ...


class Watch:
    """A view's registration with the render tick. :meth:`close` detaches it."""

    __slots__ = (
        "_hub",
        "_last_call",
        "_seen",
        "callback",
        "closed",
        "min_interval",
        "names",
        "paused",
    )

    def __init__(
        self,
        hub: Hub,
        names: tuple[str, ...],
        callback: Callable[[dict[str, dict[str, Any]]], None],
        max_hz: float,
    ) -> None:
        self._hub = hub
        self.names = names
        self.callback = callback
        self.min_interval = 1.0 / max_hz if max_hz > 0 else 0.0
        self._seen: tuple[int, ...] | None = None
        self._last_call = float("-inf")
        self.closed = False
        # While paused the tick skips this view without marking what it skipped as seen, so the
        # first tick after resuming brings it up to date.
        self.paused = False

    def close(self) -> None:
        """Stop receiving frames (idempotent)."""
        if not self.closed:
            self.closed = True
            self._hub._unwatch(self)

    def invalidate(self) -> None:
        """Force the next tick to call back even if no store moved (e.g. a filter changed)."""
        self._seen = None


class Hub(Publisher):
    """The in-process event hub: bus, stores, periodic tasks and the render tick.

    A hub does nothing on its own until it is started on a running asyncio loop: ``hub.start()``,
    or simply displaying a widget on it in a notebook (creating or displaying any widget of this
    package on a stopped hub starts it on the kernel's running loop; a hub rebuilt from history,
    whose :attr:`past` is set, is never started).

    Args:
        clock: unix-seconds clock, injected for tests (a ``FakeClock``).
        topology: ``"codeur"`` (default), ``"empty"``, a :class:`networkx.DiGraph` or a dict with
            ``nodes``/``edges`` lists; agents and edges seen in events are added automatically.
        render_hz: maximum frames per second sent to views (default 10).
        sample_interval: seconds between system samples (default 1).
        heartbeat_timeout: seconds without a sign of life before an agent is marked offline.
        heartbeat_interval: seconds between automatic heartbeats of :meth:`agent` handles.
        log_capacity: lines kept by the log ring buffer.
        thread_buffer: events buffered from other threads before the oldest are dropped.
        flow_half_life: seconds for a graph edge's flow intensity to halve.
        collect_system: sample CPU/memory/GPU while running (default True).
        sources: event sources read while the hub runs: :class:`Source` objects or URLs such as
            ``"redis://localhost:6379/0?stream=codeur:events"`` (see ``codeur_widgets.transports``).
        history: ``None`` (default: nothing stored, no overhead), a SQLite file path, or a
            :class:`~codeur_widgets.core.history.History`. Every accepted event (system samples
            included) is then stored, in batches written by a worker thread. A file that already
            holds events is replayed into the stores first, so a hub opened after a kernel restart
            shows the previous run's agents, jobs, logs and metrics (without storing them again).
            :meth:`stop` waits (bounded) until what was accepted is written; the file stays open
            for a restart and is closed at exit or by ``hub.history.close()``. A file that cannot
            be used raises :class:`~codeur_widgets.core.history.HistoryError`; a write that fails
            later leaves the hub live, with ``health()["history"]["degraded"]`` set.
        capture_content: what span content (prompts, answers, tool arguments and results) is
            kept: ``None`` (default) keeps what is produced in this kernel (the agent API, the
            simulator) and drops it from events read from the network (sources, :meth:`ingest`,
            ``publish_many(..., remote=True)``); ``True`` keeps all, ``False`` none.
        prices: USD per million tokens by model, ``{"my-model": (input, output)}`` or a
            :class:`~codeur_widgets.core.prices.Prices`; models without one are priced from the
            ``genai-prices`` table, else their cost is unknown (``hub.prices.set(...)`` later).
        default_alerts: start with the default alert rules (stale agent, error burst, loop lag,
            dropped events, history degraded, source disconnected); see ``hub.alerts`` and
            docs/alerts.md. Rules are evaluated only while the hub runs.
    """

    def __init__(
        self,
        *,
        clock: Clock = wall_clock,
        topology: str | nx.DiGraph | Mapping[str, Any] = "codeur",
        render_hz: float = 10.0,
        sample_interval: float = 1.0,
        heartbeat_timeout: float = 30.0,
        heartbeat_interval: float = 5.0,
        log_capacity: int = 10_000,
        thread_buffer: int = 100_000,
        flow_half_life: float = 2.0,
        collect_system: bool = True,
        sources: Iterable[str | Source] = (),
        history: str | os.PathLike[str] | History | None = None,
        capture_content: bool | None = None,
        prices: Prices | Mapping[str, Any] | None = None,
        default_alerts: bool = True,
    ) -> None:
        if render_hz <= 0:
            raise ValueError("render_hz must be > 0")
        if sample_interval <= 0 or heartbeat_interval <= 0 or heartbeat_timeout <= 0:
            raise ValueError("intervals and timeouts must be > 0")
        self.clock = clock
        self.render_hz = float(render_hz)
        self.sample_interval = float(sample_interval)
        self.heartbeat_interval = float(heartbeat_interval)
        self.collect_system = collect_system
        self.bus = EventBus(clock)
        if capture_content not in (None, True, False):
            raise ValueError("capture_content must be None, True or False")
        self.prices = prices if isinstance(prices, Prices) else Prices(prices)

        self.agents = AgentRegistry(clock=clock, stale_after=heartbeat_timeout, prices=self.prices)
        self.queue = QueueStats(clock=clock)
        self.graph = AgentGraph(topology=topology, clock=clock)
        self.flows = FlowTracker(clock=clock, half_life=flow_half_life)
        self.logs = LogBuffer(clock=clock, capacity=log_capacity)
        self.system = SystemSampler(clock=clock, interval=sample_interval, window=SYSTEM_WINDOW)
        self.custom = CustomMetrics(clock=clock, window=SYSTEM_WINDOW)
        self.traces = TraceStore(
            clock=clock,
            prices=self.prices,
            capture_content=capture_content,
            job_of=self.agents.job_of,
        )
        self.traces.on_error = self.bus.report_error  # an event failing in a folded batch
        self._capture_content = capture_content
        self.stores: dict[str, Store] = {}
        for store in (
            self.agents,
            self.queue,
            self.graph,
            self.flows,
            self.logs,
            self.system,
            self.custom,
            self.traces,
        ):
            self.add_store(store)
        # Alerts: windowed usage sums (nothing per event: sampled from the registry's and the
        # trace store's counters once a tick) and the rules, evaluated on the housekeeping tick
        # (the alerts store's tick); see core/usage.py and core/alerts.py.
        self.usage = UsageWindows(clock=clock, registry=self.agents, traces=self.traces)
        self.add_store(self.usage)
        self.alerts = Alerts(self, defaults=default_alerts)
        self.add_store(self.alerts)

        self.sources: list[Source] = [self._open_source(s) for s in sources]
        self._inbox = ThreadInbox(thread_buffer, self._wake_from_thread)
        self._waker: LoopWaker | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._watches: list[Watch] = []
        self._handles: weakref.WeakSet[AgentHandle] = weakref.WeakSet()
        self._log_handlers: list[tuple[logging.Logger, LogHandler]] = []
        self._render_errors = 0
        self._render_interrupts = 0
        self._task_restarts: dict[str, int] = {}
        self._collector_tasks: dict[str, asyncio.Task[None]] = {}
        self._render_reported: set[type] = set()
        self._loop_lag = 0.0
        self._rate = 0.0
        self._rate_mark = (0, 0.0)
        self._last_change = 0.0
        self._stopping: set[asyncio.Task[None]] = set()
        self._direct_lock = threading.Lock()
        #: ``None`` for a live hub; for a hub rebuilt from history (``History.rebuild``), the
        #: moment it holds: ``{"since", "until", "events"}`` (unix seconds, events applied).
        #: Such a hub is never started: it stays frozen at ``until``.
        self.past: dict[str, Any] | None = None

        self.history: History | None = None
        if history is not None:
            self.history = (
                history if isinstance(history, History) else History(history, clock=clock)
            )
            # The previous run first, straight into the stores; the recorder is subscribed only
            # afterwards, so restored events are not written again.
            self.history.restored = self.history.restore(self)
            now = clock()
            for restored in self.stores.values():
                try:
                    restored.tick(now)  # agents silent since the last run are marked stale now
                except Exception as exc:
                    self.bus.report_error(restored.tick, "history.restore", exc)
            self.bus.subscribe("*", self.history.record)
        self.alerts.baseline()  # a restored run's error counts are not new errors

    # -- stores --------------------------------------------------------------------------------
    def add_store(self, store: Store) -> None:
        """Register a store: it receives events on its topics and can be watched by name."""
        if store.name in self.stores:
            raise ValueError(f"a store named {store.name!r} is already registered")
        self.stores[store.name] = store
        routes = store.routes()
        if routes is not None:
            for topic, handler in routes.items():
                self.bus.subscribe(topic, handler)
            return
        for pattern in store.topics:
            self.bus.subscribe(pattern, store.apply)

    @property
    def capture_content(self) -> bool | None:
        """Span content kept: None (this kernel's only), True (all) or False (none)."""
        return self._capture_content

    @capture_content.setter
    def capture_content(self, value: bool | None) -> None:
        if value not in (None, True, False):
            raise ValueError("capture_content must be None, True or False")
        self._capture_content = value
        self.traces.capture_content = value

    @staticmethod
    def _open_source(source: str | Source) -> Source:
        if isinstance(source, str):
            # Resolved through the source registry (filled by transports' entry points), so the
            # core imports no transport and optional dependencies load only when a URL asks.
            return open_source(source)
        return source

    def add_source(self, source: str | Source) -> Source:
        """Add a :class:`Source` (or a source URL) after construction; started at once if the hub
        runs, else by :meth:`start`. Returns the source."""
        opened = self._open_source(source)
        self.sources.append(opened)
        if self._tasks and self._loop is not None:
            if self._loop_thread == threading.get_ident():
                opened.start(self)
            else:  # sources start on the loop (they create their tasks there)
                self._loop.call_soon_threadsafe(opened.start, self)
        return opened

    @property
    def loop_thread(self) -> int | None:
        """The ident of the thread running the hub's loop; None while it is stopped."""
        return self._loop_thread

    def instrument_otel(self, tracer_provider: Any = None, **options: Any) -> Any:
        """Show every agent that an OpenTelemetry SDK in this process traces, live.

        Adds a span processor (``codeur_widgets.otel.HubSpanProcessor``) to ``tracer_provider``,
        else to the SDK tracer provider installed globally, else to a new one that it installs;
        returns the processor. ``options`` go to the processor (``capture_content``, ``hold``).
        Frameworks that emit OpenTelemetry spans (pydantic-ai, LangChain and the OpenAI Agents
        SDK through OpenInference, ...) then fill the cards, the graph and the queue with no
        change to their code. Needs ``pip install 'codeur-widgets[otel]'``.

        The core does not import the OpenTelemetry code: the ``instrument_otel`` hook is
        declared by an entry point (see ``core/hooks.py``).
        """
        hook = get_hook("instrument_otel", "pip install 'codeur-widgets[otel]'")
        return hook(self, tracer_provider=tracer_provider, **options)

    # -- publishing ----------------------------------------------------------------------------
    # publish(topic, agent, *, data, ts, id, trace_id, span_id, **fields): see Publisher.

    def _accept(self, event: Event) -> None:
        """Dispatch now on the loop's thread (or with no loop); buffer from other threads."""
        owner = self._loop_thread
        if owner == threading.get_ident():
            if self._inbox._items:
                self.flush()  # keep order with events that other threads published earlier
            self.bus.dispatch(event)
        elif owner is None:
            # Not started (a script, a test): apply now; the lock makes threads take turns.
            with self._direct_lock:
                self.bus.dispatch(event)
        else:
            self._inbox.put(event)

    def publish_event(self, event: Event) -> Event:
        """Apply an already validated :class:`Event`."""
        if not isinstance(event, Event):
            raise InvalidEvent("event", f"must be an Event, got {type(event).__name__}")
        self.bus.dispatch(event)
        return event

    def publish_many(
        self, events: Iterable[Event | Mapping[str, Any]], *, remote: bool = False
    ) -> int:
        """Validate then apply several events (Event objects or dicts) in order.

        All-or-nothing: if any item is invalid, :class:`InvalidEvent` is raised (its message says
        which item) and none is applied. Returns the number applied. ``remote``: the events were
        read from the network (a source), so span content is dropped unless
        ``capture_content`` is True.
        """
        batch: list[Event] = []
        for i, item in enumerate(events):
            if isinstance(item, Event):
                batch.append(item)
                continue
            try:
                batch.append(Event.from_dict(item, clock=self.clock))
            except InvalidEvent as exc:
                raise InvalidEvent(exc.field, f"item {i}: {exc.reason}") from None
        if remote and self._capture_content is not True:
            batch = [strip_content(e) for e in batch]
        if self._inbox._items:
            self.flush()
        return self.bus.dispatch_many(batch)

    def ingest(self, raw: object) -> Event | None:
        """Apply untrusted input (a transport's dict); never raises, counts rejects.

        Input from the network: span content is dropped unless ``capture_content`` is True.
        """
        event = self.bus.parse(raw)
        if event is None:
            return None
        if self._capture_content is not True:
            event = strip_content(event)
        self.bus.dispatch(event)
        return event

    def publish_threadsafe(
        self,
        topic: str,
        agent: str | None = None,
        *,
        data: Mapping[str, Any] | None = None,
        ts: float | str | None = None,
        trace_id: str | None = None,
        span_id: str | None = None,
        **fields: Any,
    ) -> Event:
        """Publish from any thread without ever waiting on the event loop.

        The event is validated in the caller (so a mistake raises there) and stamped now. On the
        loop's own thread it is applied at once; elsewhere it goes into a bounded buffer that the
        loop drains in batches (when full, the oldest is dropped and counted in ``health()``).
        This is :meth:`publish`'s own routing, spelled out for code that runs off the loop.
        """
        # An agent thread pays for every call with cold caches (the loop's thread ran in between),
        # and then each function it enters costs microseconds, not nanoseconds. So the common
        # case (a topic and agent already seen, stamped now) is spelled out here: Event.create's
        # fast path and new_event_id() inlined, and the buffer entered directly, not via
        # _accept(). In the agent section of `python -m benchmarks` this took p99 from about
        # 1.3x the stdlib Queue.put_nowait beside it to about 1.0x (see benchmarks/README.md).
        if fields:
            data = {**data, **fields} if data else fields
        if (
            type(topic) is str
            and topic in _seen_topics
            and (agent is None or (type(agent) is str and agent in _seen_agents))
            # Span ids and times from the agent API (spans, tasks) take the fast path too:
            # the same checks as Event.create's, for the values it accepts unchanged.
            and (
                trace_id is None
                or (type(trace_id) is str and 0 < len(trace_id) <= MAX_ID and trace_id.isascii())
            )
            and (
                span_id is None
                or (type(span_id) is str and 0 < len(span_id) <= MAX_ID and span_id.isascii())
            )
            and (ts is None or (type(ts) is float and 0.0 <= ts <= _MAX_TS_SECONDS))
        ):
            event = Event(
                topic,
                agent,
                clean_data(data),
                self.clock() if ts is None else ts,
                f"{_ID_PREFIX}-{next(_ID)}",
                trace_id,
                span_id,
            )
        else:
            event = Event.create(
                topic, agent, data, ts=ts, trace_id=trace_id, span_id=span_id, clock=self.clock
            )
        owner = self._loop_thread
        if owner is None or owner == _get_ident():
            self._accept(event)
            return event
        self._inbox.put(event)
        return event

    def _wake_from_thread(self) -> None:
        # Runs in the publishing thread: no syscall here (see core/waker.py), just a poke.
        waker = self._waker
        if waker is None or self._loop is None:
            self._inbox.wake_failed()  # drained when the hub starts, or by flush()
        elif waker.parked:  # LoopWaker.poke() inlined: the common case is one attribute read
            waker.poke()

    def _has_buffered(self) -> bool:
        return bool(self._inbox._items)

    def _drain_inbox(self) -> None:
        batch = self._inbox.take(DRAIN_BATCH)
        self.bus.dispatch_many(batch)
        if len(batch) == DRAIN_BATCH and self._loop is not None:
            self._loop.call_soon(self._drain_inbox)  # yield to other callbacks between batches

    def flush(self) -> int:
        """Apply everything buffered from other threads now (call on the loop's thread)."""
        n = 0
        while True:
            batch = self._inbox.take(DRAIN_BATCH)
            if not batch:
                return n
            n += self.bus.dispatch_many(batch)

    # -- custom collectors -----------------------------------------------------------------------
    def add_collector(
        self,
        name: str,
        fn: Callable[[], Any],
        *,
        interval: float = 5.0,
        timeout: float | None = None,
    ) -> CustomCollector:
        """Sample your own numbers every ``interval`` seconds, beside the system metrics.

        ``fn()`` (or ``async def fn()``) returns a dict of numbers, e.g. ``{"requests_running":
        3, "kv_cache_pct": 41.5}``. It runs in its own worker thread with a deadline
        (``timeout``, default ``min(interval, 10)`` s), like the built-in collectors: an
        exception, a late answer or a bad value (not a dict, a string, NaN) is counted in
        ``health()["collectors"][name]`` and shown in the dashboard's header, never raised
        here; the last good values stay shown. Each good reading is a ``metrics.custom`` event
        (so history stores it) and a series of ``SystemMetrics``. ``name``: 1 to 64 letters,
        digits, ``_ . -``, not a built-in collector's; raises ``ValueError`` otherwise. Returns
        the collector (see :mod:`codeur_widgets.core.collectors`, and
        :func:`~codeur_widgets.core.collectors.prometheus` for a Prometheus endpoint).
        """
        collector = self.custom.add(CustomCollector(name, fn, interval, timeout))
        if self._tasks:
            self._start_collector(name)
        return collector

    def remove_collector(self, name: str) -> None:
        """Stop sampling collector ``name`` (its series stay until they age out); ``KeyError``
        if no collector has that name."""
        self.custom.remove(name)
        task = self._collector_tasks.pop(name, None)
        if task is not None:
            self._tasks.discard(task)
            task.cancel()
            self._stopping.add(task)

    def _start_collector(self, name: str) -> None:
        self._collector_tasks[name] = self._spawn(
            lambda: self._collector_loop(name), f"collector:{name}"
        )

    async def _collector_loop(self, name: str) -> None:
        collector = self.custom.collectors[name]
        while True:
            try:
                values = await collector.read(self.clock())
                if values is not None:
                    self.publish(CUSTOM_TOPIC, data={"collector": name, "values": values})
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # read() isolates the collector; this is a bug guard
                self.bus.report_error(self._collector_loop, CUSTOM_TOPIC, exc)
            await asyncio.sleep(collector.interval)

    # -- agents and logging --------------------------------------------------------------------
    def agent(
        self,
        name: str,
        model: str | None = None,
        role: str | None = None,
        **kwargs: Any,
    ) -> AgentHandle:
        """Register an agent and return its handle (tasks, tokens, flows, heartbeats)."""
        return AgentHandle(self, name, model=model, role=role, **kwargs)

    def _register_handle(self, handle: AgentHandle) -> None:
        self._handles.add(handle)

    def _unregister_handle(self, handle: AgentHandle) -> None:
        self._handles.discard(handle)

    def capture_logging(
        self,
        logger: str | logging.Logger | None = None,
        level: int | str = "INFO",
        source: str | None = None,
    ) -> LogHandler:
        """Send records of ``logger`` (root if None) at ``level`` and above to the log tail."""

        def publish(topic: str, agent: str | None, data: dict[str, Any]) -> None:
            self.publish_threadsafe(topic, agent, data=data)

        handler = capture_logging(publish, logger=logger, level=level, source=source, owner=self)
        target = logger if isinstance(logger, logging.Logger) else logging.getLogger(logger)
        if all(h is not handler for _, h in self._log_handlers):
            self._log_handlers.append((target, handler))
        return handler

    # -- render tick ---------------------------------------------------------------------------
    def watch(
        self,
        names: Sequence[str],
        callback: Callable[[dict[str, dict[str, Any]]], None],
        *,
        max_hz: float | None = None,
    ) -> Watch:
        """Call ``callback({name: snapshot})`` on render ticks where a named store changed.

        The first tick after registering always calls back, so a new view gets the current state.
        """
        names = tuple(names)
        unknown = [n for n in names if n not in self.stores]
        if unknown:
            raise KeyError(f"unknown store(s) {unknown}; known: {sorted(self.stores)}")
        w = Watch(self, names, callback, max_hz if max_hz is not None else self.render_hz)
        self._watches.append(w)
        return w

    def _unwatch(self, w: Watch) -> None:
        with contextlib.suppress(ValueError):
            self._watches.remove(w)

    @property
    def watches(self) -> list[Watch]:
        return list(self._watches)

    def render_now(self, now: float | None = None) -> int:
        """Run one render tick synchronously; returns how many views were called."""
        if self._inbox._items:
            self.flush()
        mono = now if now is not None else time.monotonic()
        cache: dict[str, dict[str, Any]] = {}
        called = 0
        for w in list(self._watches):
            if w.paused:
                continue
            versions = tuple(self.stores[n].version for n in w.names)
            if versions == w._seen or mono - w._last_call < w.min_interval * _RATE_SLACK:
                continue
            # Marked seen before the call, so a callback may invalidate() itself for next tick.
            w._seen = versions
            w._last_call = mono
            try:
                frame = {}
                for n in w.names:
                    snap = cache.get(n)
                    if snap is None:
                        snap = cache[n] = self.stores[n].snapshot()
                    frame[n] = snap
                w.callback(frame)
            except Exception as exc:
                self._render_failed(w, exc)
            except KeyboardInterrupt:
                # Ctrl-C / "interrupt kernel" landed while a view was drawing. It was meant for
                # the user's cell, not for the dashboard: contain it so the render task lives on,
                # count it in health(), and redraw this view on the next tick.
                self._render_interrupts += 1
                w._seen = None
                log.warning("a KeyboardInterrupt hit a render tick; the view will be redrawn")
            called += 1
        if called:
            self._last_change = mono
        return called

    def _render_failed(self, w: Watch, exc: Exception) -> None:
        self._render_errors += 1
        if type(exc) not in self._render_reported:
            self._render_reported.add(type(exc))
            log.error("a view failed during a render tick (%r)", w.callback, exc_info=exc)

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return bool(self._tasks)

    def start(self) -> Hub:
        """Start the periodic tasks on the running asyncio loop (idempotent); returns self.

        Raises ``RuntimeError`` without a running loop, and for a hub rebuilt from history
        (:attr:`past` set): it shows a past moment and must stay frozen.
        """
        if self._tasks:
            return self
        if self.past is not None:
            raise RuntimeError(
                "this hub was rebuilt from history and shows a past moment: it is never started "
                "(start the live hub instead)"
            )
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "Hub.start() needs a running asyncio event loop: call it from a notebook cell, "
                "or inside a coroutine run by asyncio.run(...)"
            ) from None
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self.flush()
        self._waker = LoopWaker(loop, self._has_buffered, self._drain_inbox).start()
        self.prices.warm()  # the price table's import, off the loop
        self._spawn(self._render_loop, "render")
        self._spawn(self._housekeeping_loop, "housekeeping")
        if self.collect_system:
            self._spawn(self._sampler_loop, "sampler")
        for name in self.custom.collectors:
            self._start_collector(name)
        for source in self.sources:
            source.start(self)
        return self

    def _spawn(self, factory: Callable[[], Any], name: str) -> asyncio.Task[None]:
        assert self._loop is not None
        task = self._loop.create_task(factory(), name=f"codeur_widgets.hub.{name}")
        self._tasks.add(task)  # strong reference: the loop keeps only weak ones
        task.add_done_callback(lambda t: self._task_ended(t, factory, name))
        return task

    def _task_ended(self, task: asyncio.Task[None], factory: Callable[[], Any], name: str) -> None:
        """Supervision: a periodic task that dies while the hub runs is restarted and counted.

        The loops catch their own errors, so this only happens on a bug or an interrupt that
        escaped (``KeyboardInterrupt`` raised between two awaits); the dashboard must outlive it.
        """
        if task not in self._tasks or task.cancelled():
            return  # stopped on purpose
        self._tasks.discard(task)
        exc = task.exception()
        self._task_restarts[name] = self._task_restarts.get(name, 0) + 1
        log.error("hub task %r ended unexpectedly (%r); restarting it", name, exc)
        if self._loop is not None and not self._loop.is_closed():
            restarted = self._spawn(factory, name)
            if name.startswith("collector:"):
                self._collector_tasks[name.partition(":")[2]] = restarted

    def stop(self) -> None:
        """Cancel the periodic tasks and apply everything already buffered. Idempotent."""
        tasks, self._tasks = self._tasks, set()
        for task in tasks:
            task.cancel()
        waker, self._waker = self._waker, None
        if waker is not None:
            waker.stop()
        self._stopping |= tasks
        for source in self.sources:
            source.stop()
        if self._loop_thread in (None, threading.get_ident()):
            self.flush()
        for _, handler in self._log_handlers:
            handler.detach()  # also restores the logger's level if capture lowered it
        self._log_handlers.clear()
        self.system.close()  # releases NVML; the next sample re-opens it
        self.custom.close()
        self._collector_tasks.clear()
        if self.history is not None and not self.history.closed:
            # Bounded: a failing disk must not hang the caller (shorter when writes already
            # fail); what is left stays queued and the worker keeps retrying.
            degraded = self.history.degraded
            self.history.flush(
                timeout=HISTORY_FLUSH_TIMEOUT / 10 if degraded else HISTORY_FLUSH_TIMEOUT
            )
        self._loop = None
        self._loop_thread = None

    async def aclose(self) -> None:
        """Stop and wait until the tasks have finished (no pending-task warnings)."""
        self.stop()
        await wait_cancelled(self._stopping)
        for source in self.sources:
            await source.aclose()

    async def __aenter__(self) -> Hub:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _render_loop(self) -> None:
        period = 1.0 / self.render_hz
        while True:
            now = time.monotonic()
            self.render_now(now)
            # Adaptive: full rate while things change, a slower idle tick otherwise.
            idle = now - self._last_change > 1.0
            await asyncio.sleep(max(period, IDLE_TICK) if idle else period)

    async def _housekeeping_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_beat = loop.time() + self.heartbeat_interval
        while True:
            before = loop.time()
            await asyncio.sleep(1.0)
            after = loop.time()
            self._loop_lag = max(0.0, after - before - 1.0)
            self._update_rate(after)
            now = self.clock()
            for store in self.stores.values():
                try:
                    store.tick(now)
                except Exception as exc:
                    self.bus.report_error(store.tick, "hub.tick", exc)
            if after >= next_beat:
                next_beat = after + self.heartbeat_interval
                for handle in list(self._handles):
                    handle._beat()

    async def _sampler_loop(self) -> None:
        while True:
            try:
                sample = await self.system.collect_async()
                self.publish("system.sample", data=sample)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # collectors isolate their own errors; this is a bug guard
                self.bus.report_error(self._sampler_loop, "system.sample", exc)
            await asyncio.sleep(self.sample_interval)

    def _update_rate(self, mono: float) -> None:
        count, when = self._rate_mark
        accepted = self.bus.accepted
        if when:
            elapsed = mono - when
            if elapsed > 0:
                self._rate = (accepted - count) / elapsed
        self._rate_mark = (accepted, mono)

    # -- reading -------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Every store's snapshot plus health: JSON-serialisable."""
        if self._inbox._items and self._loop_thread in (None, threading.get_ident()):
            self.flush()
        out: dict[str, Any] = {name: store.snapshot() for name, store in self.stores.items()}
        out["health"] = self.health()
        return out

    def health(self) -> dict[str, Any]:
        """How the hub itself is doing: is it running, keeping up, rejecting or dropping?"""
        collectors = {**self.system.collectors_health(), **self.custom.collectors_health()}
        return {
            "running": self.running,
            "loop_lag_ms": round(self._loop_lag * 1000.0, 1),
            "events_per_second": round(self._rate, 1),
            "accepted": self.bus.accepted,
            "rejected": self.bus.rejected,
            "rejected_samples": list(self.bus.rejected_samples)[-5:],
            "dropped": self._inbox.dropped,
            "buffered": len(self._inbox),
            "handler_errors": self.bus.handler_errors,
            "render_errors": self._render_errors,
            "render_interrupts": self._render_interrupts,
            "task_restarts": dict(self._task_restarts),
            "collectors": collectors,
            "stale_agents": self.agents.stale_agents(),
            "agents": self.agents.counters(),
            "views": len(self._watches),
            "sources": [source.health() for source in self.sources],
            "history": None if self.history is None else self.history.health(),
            "alerts": self.alerts.health(),
            "past": None if self.past is None else dict(self.past),
        }

    def __repr__(self) -> str:
        if self.past is not None:
            span = span_text(self.past.get("since"), self.past.get("until"))
            return f"<Hub past {span}: {self.past.get('events', 0)} events>"
        state = "running" if self.running else "stopped"
        return f"<Hub {state}: {self.bus.accepted} events>"


def span_text(since: Any, until: Any) -> str:
    """A time range in local time: ``2026-12-05 12:00:00–12:05:00`` (the end's date only when it
    differs; ``?`` for an unknown end)."""

    def ok(ts: Any) -> bool:
        return not isinstance(ts, bool) and isinstance(ts, (int, float))

    start = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if ok(since) else "?"
    if not ok(until):
        return f"{start}–?"
    end_fmt = "%H:%M:%S"
    if not ok(since) or time.localtime(since)[:3] != time.localtime(until)[:3]:
        end_fmt = "%Y-%m-%d %H:%M:%S"
    return f"{start}–{time.strftime(end_fmt, time.localtime(until))}"


_default_hub: Hub | None = None
_default_lock = threading.Lock()


def default_hub() -> Hub:
    """The process-wide hub used by ``Dashboard()`` without arguments, created on first use.

    It is started as soon as it is asked for from a running event loop (a notebook cell).
    """
    global _default_hub
    with _default_lock:
        if _default_hub is None:
            _default_hub = Hub()
        hub = _default_hub
    with contextlib.suppress(RuntimeError):
        hub.start()
    return hub
