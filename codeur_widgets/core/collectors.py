"""Custom collectors: your own numbers (a model server's queue, a GPU pool, a job broker) on the
dashboard, sampled like the built-in system metrics.

``hub.add_collector("vllm", read_vllm, interval=5)`` registers ``read_vllm``: a function (or an
``async`` one) that returns a dict of numbers, ``{"requests_running": 3, "kv_cache_pct": 41.5}``.
The hub calls it every ``interval`` seconds with the isolation of the built-in collectors
(:mod:`codeur_widgets.core.system`):

* it runs in its **own worker thread** (an ``async`` function runs there too, on that thread's
  own event loop), so a slow or blocking reading never stalls the hub's loop or the others;
* it has a **deadline** (``timeout``, default ``min(interval, 10)`` s): a late reading is counted
  as a timeout, and while the call is still stuck no second one is started (skipped, counted);
* an exception or a **bad return value** (not a dict, a string or NaN as a value, a bad metric
  name, too many metrics) is counted as an error with a message saying what was wrong, shown in
  ``hub.health()["collectors"][name]`` and the dashboard's header, never raised into the hub;
* the **last good values are kept**: the store shows them, with their age, until a reading
  succeeds again.

Each good reading is published as one ``metrics.custom`` event, ``{"collector": name, "values":
{metric: number}}``, so history stores it, a restarted hub shows it, and it can come from another
process through Redis like any event. The :class:`CustomMetrics` store (``hub.stores["custom"]``)
folds those events into windowed series that :class:`~codeur_widgets.SystemMetrics` plots.

:func:`prometheus` builds a collector that reads a Prometheus text endpoint (vLLM, TGI, Ollama
exporters...); see ``docs/collectors.md``.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import numbers
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .clock import Clock, wall_clock
from .events import Event
from .store import Store
from .system import COLLECTORS, _Health, _pick, _Worker

__all__ = [
    "MAX_METRICS",
    "TOPIC",
    "CustomCollector",
    "CustomMetrics",
    "check_name",
    "check_reading",
    "prometheus",
]

TOPIC = "metrics.custom"
"""The topic of a custom collector's reading: data ``{"collector": name, "values": {...}}``."""
MAX_METRICS = 64
"""Numbers one reading may return (more is a bad reading: pick the ones to plot)."""
MAX_SERIES = 256
"""Series the store keeps in all (collectors × metrics); readings beyond are counted, not kept."""
MAX_POINTS = 3_600
"""Points kept per series (an hour at one reading a second)."""
MAX_METRIC_NAME = 200
_MAX_ABS = 1e18
_NAME_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_SNAPSHOT_BUDGET = 56_000  # bytes of series in a snapshot (the rest: health, latest values)
_MIN_POINTS = 10


def check_name(name: object) -> str:
    """A collector's name: 1 to 64 letters, digits, ``_``, ``.`` or ``-``, not a built-in one."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ValueError(
            f"collector name {name!r}: use 1 to 64 letters, digits, '_', '.' or '-' "
            "(e.g. 'vllm' or 'queue.redis')"
        )
    if name in COLLECTORS:
        raise ValueError(
            f"collector name {name!r} is a built-in collector's ({', '.join(COLLECTORS)})"
        )
    return name


def check_reading(name: str, values: object) -> dict[str, float]:
    """What a collector returned, as ``{metric: float}``; raises ``TypeError``/``ValueError``
    saying what is wrong (the hub counts it as the collector's error)."""
    if not isinstance(values, Mapping):
        raise TypeError(
            f"collector {name!r} returned {type(values).__name__}, not a dict of numbers "
            "(e.g. {'requests_running': 3})"
        )
    if len(values) > MAX_METRICS:
        raise ValueError(
            f"collector {name!r} returned {len(values)} numbers, more than {MAX_METRICS}: "
            "return only the ones to plot"
        )
    out: dict[str, float] = {}
    for key, value in values.items():
        if not isinstance(key, str) or not key or len(key) > MAX_METRIC_NAME:
            raise ValueError(
                f"collector {name!r}: metric name {key!r} must be a string of 1 to "
                f"{MAX_METRIC_NAME} characters"
            )
        if not key.isprintable():
            raise ValueError(
                f"collector {name!r}: metric name {key!r} has non-printable characters"
            )
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            shown = repr(value)
            shown = shown if len(shown) <= 40 else shown[:40] + "…"
            raise TypeError(
                f"collector {name!r}: {key!r} is {type(value).__name__} {shown}, not a number"
            )
        number = float(value)
        if not math.isfinite(number) or abs(number) > _MAX_ABS:
            raise ValueError(f"collector {name!r}: {key!r} is {number!r}, not a finite number")
        out[key] = number
    return out


def _call(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in the worker thread; an awaitable result is run on this thread's own loop."""
    result = fn()
    if inspect.isawaitable(result):

        async def wait() -> Any:
            return await result

        return asyncio.run(wait())
    return result


class CustomCollector:
    """One collector: its function, schedule, worker thread and health (see the module's
    docstring; ``hub.add_collector`` makes and registers one). Raises ``ValueError`` or
    ``TypeError`` for a bad name, function, interval or timeout."""

    def __init__(
        self, name: str, fn: Callable[[], Any], interval: float = 5.0, timeout: float | None = None
    ) -> None:
        check_name(name)
        if not callable(fn):
            raise TypeError(f"collector {name!r}: fn must be callable, got {type(fn).__name__}")
        if isinstance(interval, bool) or not isinstance(interval, (int, float)):
            raise TypeError(f"collector {name!r}: interval must be a number of seconds")
        if not 0.01 <= interval <= 86_400:
            raise ValueError(f"collector {name!r}: interval must be 0.01 to 86400 s")
        if timeout is not None and not 0 < timeout <= 3_600:
            raise ValueError(f"collector {name!r}: timeout must be > 0 s (at most 3600)")
        self.name = name
        self.fn = fn
        self.interval = float(interval)
        self.timeout = float(timeout) if timeout is not None else min(self.interval, 10.0)
        self.health = _Health(name)
        self.worker = _Worker(f"custom:{name}", idle_exit=max(30.0, 3.0 * self.interval))
        self.last_values: dict[str, float] | None = None
        self.readings = 0

    def health_dict(self) -> dict[str, Any]:
        """Like a built-in collector's health, plus ``interval``, ``readings`` and
        ``last_ok_ts`` (hub-clock time of the last good reading)."""
        out = self.health.as_dict()
        out["stuck_s"] = (
            round(time.monotonic() - self.worker.started_at, 1)
            if self.worker.busy and not self.health.ok
            else None
        )
        out.update(
            custom=True,
            interval=self.interval,
            readings=self.readings,
            last_ok_ts=self.health.ok_at,
        )
        return out

    async def read(self, now: float) -> dict[str, float] | None:
        """One reading in the worker thread, within the deadline; the checked values, or None
        (failed, late, or skipped while an earlier call is stuck). Never raises (except
        ``CancelledError``)."""
        health = self.health
        if self.worker.busy:
            health.skipped += 1
            return None
        fn = self.fn
        future = asyncio.wrap_future(self.worker.submit(lambda: _call(fn)))
        try:
            await asyncio.wait({future}, timeout=self.timeout)
        except asyncio.CancelledError:
            future.cancel()
            raise
        if not future.done():
            future.cancel()  # the thread's call goes on; its result is dropped
            health.timeouts += 1
            health.failed(
                TimeoutError(f"collector {self.name!r} did not answer within {self.timeout:g} s"),
                now,
            )
            return None
        exc = future.exception()
        if exc is not None:
            health.failed(exc, now)
            return None
        try:
            values = check_reading(self.name, future.result())
        except (TypeError, ValueError) as bad:
            health.failed(bad, now)
            return None
        health.succeeded(now)
        self.readings += 1
        self.last_values = values
        return values

    def close(self) -> None:
        self.worker.close()


class _Series:
    __slots__ = ("collector", "metric", "points")

    def __init__(self, collector: str, metric: str) -> None:
        self.collector = collector
        self.metric = metric
        self.points: deque[tuple[float, float]] = deque(maxlen=MAX_POINTS)


class CustomMetrics(Store):
    """The ``custom`` store: registered custom collectors, and the series of their readings.

    It folds ``metrics.custom`` events (from this hub's collectors, history, or other processes)
    into one windowed series per (collector, metric), at most :data:`MAX_SERIES` in all.

    Args:
        clock: unix seconds.
        window: seconds of points kept (default an hour).
    """

    name = "custom"
    topics = (TOPIC,)

    def __init__(self, clock: Clock = wall_clock, window: float = 3600.0) -> None:
        super().__init__(clock)
        if not window > 0:
            raise ValueError("window must be > 0")
        self.window = float(window)
        self.collectors: dict[str, CustomCollector] = {}
        self._series: dict[tuple[str, str], _Series] = {}
        self.latest: dict[str, dict[str, Any]] = {}  # collector -> {"ts", "values"}
        self.bad_readings = 0
        self.dropped_series = 0

    # -- registration --------------------------------------------------------------------------
    def add(self, collector: CustomCollector) -> CustomCollector:
        """Register ``collector`` (see :meth:`Hub.add_collector <codeur_widgets.core.hub.Hub.
        add_collector>`); raises ``ValueError`` when its name is taken."""
        name = collector.name
        if name in self.collectors:
            raise ValueError(f"a collector named {name!r} is already registered")
        self.collectors[name] = collector
        self.touch()
        return collector

    def remove(self, name: str) -> CustomCollector:
        """Unregister a collector (its series stay until they age out); KeyError if unknown."""
        collector = self.collectors.pop(name)
        collector.close()
        self.touch()
        return collector

    def close(self) -> None:
        """Let every collector's worker thread exit (they start again on the next reading)."""
        for collector in self.collectors.values():
            collector.close()

    def collectors_health(self) -> dict[str, dict[str, Any]]:
        """``{name: health}`` of the registered collectors (merged into ``hub.health()``)."""
        return {name: c.health_dict() for name, c in self.collectors.items()}

    # -- store -----------------------------------------------------------------------------------
    def apply(self, event: Event) -> None:
        """Fold a reading: O(number of metrics). A malformed one is counted in ``bad_readings``."""
        data = event.data
        name = data.get("collector") if isinstance(data, dict) else None
        values = data.get("values") if isinstance(data, dict) else None
        try:
            check_name(name)
            clean = check_reading(str(name), values)
        except (TypeError, ValueError):
            self.bad_readings += 1
            return
        assert isinstance(name, str)
        ts = event.ts
        for metric, value in clean.items():
            key = (name, metric)
            series = self._series.get(key)
            if series is None:
                if len(self._series) >= MAX_SERIES:
                    self.dropped_series += 1
                    continue
                series = self._series[key] = _Series(name, metric)
            points = series.points
            if points and ts < points[-1][0]:
                continue  # late: a series stays ordered in time
            points.append((ts, value))
        self.latest[name] = {"ts": ts, "values": clean}
        self._trim(ts)
        self.touch()

    def _trim(self, now: float) -> bool:
        oldest = now - self.window
        trimmed = False
        for key, series in list(self._series.items()):
            points = series.points
            while points and points[0][0] < oldest:
                points.popleft()
                trimmed = True
            if not points:
                del self._series[key]
        return trimmed

    def tick(self, now: float) -> None:
        """Drop points older than the window."""
        if self._trim(now):
            self.touch()

    def series_names(self) -> list[tuple[str, str]]:
        """(collector, metric) of every series kept, in the order they appeared."""
        return list(self._series)

    def snapshot(self) -> dict[str, Any]:
        """``{"version", "now", "window", "series": [{"collector", "metric", "ts", "values"}...],
        "latest", "collectors", "rejected"}``; points are decimated (newest kept) to stay under
        64 KB."""
        all_series = list(self._series.values())
        per_point = 24  # bytes: a rounded timestamp and a value, roughly
        m = max(_MIN_POINTS, _SNAPSHOT_BUDGET // max(1, per_point * len(all_series)))
        series = []
        for s in all_series:
            points = list(s.points)
            picked = [points[i] for i in _pick(len(points), m)]
            series.append(
                {
                    "collector": s.collector,
                    "metric": s.metric,
                    "ts": [round(t, 3) for t, _ in picked],
                    "values": [v for _, v in picked],
                }
            )
        return {
            "version": self.version,
            "now": self.clock(),
            "window": self.window,
            "series": series,
            "latest": dict(self.latest),
            "collectors": self.collectors_health(),
            "rejected": {"readings": self.bad_readings, "series": self.dropped_series},
        }


# -- Prometheus ---------------------------------------------------------------------------------
def _sample_key(name: str, labels: Mapping[str, str]) -> str:
    if not labels:
        return name
    return name + "{" + ",".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}"


def prometheus(
    url: str,
    *,
    metrics: Iterable[str] | None = None,
    timeout: float = 2.0,
) -> Callable[[], dict[str, float]]:
    """A collector reading a Prometheus text endpoint (``/metrics`` of vLLM, TGI, an exporter).

    Each call fetches ``url`` (``http``/``https`` only) and parses it with ``prometheus_client``'s
    parser (``pip install prometheus-client``). The numbers are the samples of gauges, counters
    and untyped metrics, and the ``_sum``/``_count`` of histograms and summaries (buckets and
    quantiles are left out), keyed ``name`` or ``name{label=value,...}``; non-finite ones are
    left out. ``metrics`` keeps only the families (or samples) with these names: an endpoint
    that exposes more than :data:`MAX_METRICS` numbers needs it.

    ``hub.add_collector("vllm", prometheus("http://localhost:8000/metrics",
    metrics=["vllm:num_requests_running"]), interval=5)``
    """
    import urllib.request  # here: importing the hub must not pay for http.client

    from prometheus_client.parser import text_string_to_metric_families

    if not url.lower().startswith(("http://", "https://")):
        raise ValueError(f"prometheus(): {url!r} is not an http:// or https:// URL")
    wanted = None if metrics is None else frozenset(metrics)

    def read() -> dict[str, float]:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            text = response.read(8 << 20).decode("utf-8", "replace")
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            summary = family.type in ("histogram", "summary", "gaugehistogram")
            for sample in family.samples:
                if wanted is not None and family.name not in wanted and sample.name not in wanted:
                    continue
                if summary and not sample.name.endswith(("_sum", "_count", "_gsum", "_gcount")):
                    continue
                value = float(sample.value)
                if math.isfinite(value):
                    out[_sample_key(sample.name, sample.labels)] = value
        if len(out) > MAX_METRICS:
            raise ValueError(
                f"{url} exposes {len(out)} numbers, more than {MAX_METRICS}: pass "
                f"metrics=[...] (families such as {', '.join(sorted(out)[:3])})"
            )
        return out

    return read
