"""System metrics: the ``system`` store and the sampler that feeds it.

:class:`SystemSampler` does two jobs that the hub wires together:

* :meth:`SystemSampler.collect` / :meth:`SystemSampler.collect_async` read CPU, memory, this
  process and the GPUs *without blocking the event loop*: ``psutil.cpu_percent(interval=None)``
  only, primed at construction so the first sample is already meaningful (DESIGN section 10,
  defect 1: the plan's ``cpu_percent(interval=1)`` froze the loop for a second per sample), and
  GPUtil (which runs ``nvidia-smi``) in a worker thread;
* :meth:`SystemSampler.apply` folds published ``system.sample`` events into windowed series that
  :meth:`SystemSampler.snapshot` serves to the views, decimated so it stays under 64 KB.

Each collector (``cpu``, ``freq``, ``memory``, ``process``, ``gpu``) is isolated: when one
raises, its error is counted and kept for :meth:`SystemSampler.collectors_health`, its last good
values stay in the sample for :attr:`SystemSampler.stale_after` seconds (then they are cleared, so
a broken collector never shows frozen numbers as current), and the others carry on.

In :meth:`SystemSampler.collect_async` (what the hub runs) every collector reads in its own
daemon worker thread, with a deadline: a collector that *hangs* (a stuck ``/proc`` read, NVML
waiting on a GPU that fell off the bus) is reported as timed out, skipped while its call is still
stuck (never a second thread for it, so threads cannot pile up), and the loop, the hub and the
other collectors keep going.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

import psutil

from .clock import Clock, wall_clock
from .events import Event
from .gpu import GpuCollector, describe
from .store import Store

__all__ = ["COLLECTORS", "SystemSampler"]

log = logging.getLogger("codeur_widgets.system")

COLLECTORS = ("cpu", "freq", "memory", "process", "gpu")
"""The independent collectors of a sample, as named in :meth:`SystemSampler.collectors_health`."""

MAX_POINTS = 900
"""Points per series in a snapshot at most (the window at 1 Hz)."""
SNAPSHOT_LIMIT = 64_000
"""Serialised bytes a snapshot may take (DESIGN section 6)."""
_MAIN_BUDGET = 45_000  # bytes for ts/cpu/mem/rss/threads and the GPU series
_PER_CORE_BUDGET = 14_000  # bytes for the per-core series, decimated further with many cores
_MIN_POINTS = 10
MAX_CORES = 1_024
"""Per-core values kept from one sample (more are cut and counted as bad)."""
MAX_GPUS = 64
"""GPUs kept from one sample (more are cut and counted as bad)."""
_MAX_NAME = 128

_SCALARS = (
    "cpu",
    "freq_mhz",
    "mem_percent",
    "mem_used",
    "mem_total",
    "swap_percent",
    "rss",
    "threads",
    "proc_cpu",
)
_GPU_NUMBERS = ("load", "mem_used", "mem_total", "temperature")
# The sample fields each collector provides.
_FIELDS: dict[str, tuple[str, ...]] = {
    "cpu": ("cpu", "per_core"),
    "freq": ("freq_mhz",),
    "memory": ("mem_percent", "mem_used", "mem_total", "swap_percent"),
    "process": ("rss", "threads", "proc_cpu"),
    "gpu": ("gpus",),
}


def _num(value: Any) -> float | None:
    """A finite number as float, or None (bools, strings, NaN and infinities are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    result = float(value)
    return result if math.isfinite(result) else None


_MAX_ABS = 1e18  # an exabyte: anything larger in a sample is garbage, not a measurement


def _sane(value: Any) -> float | None:
    """:func:`_num` for untrusted sample data: also rejects absurd magnitudes, which would only
    bloat the snapshot (a 300-digit integer per point) and overflow derived percentages."""
    result = _num(value)
    return result if result is not None and -_MAX_ABS <= result <= _MAX_ABS else None


def _r1(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


class _Row(NamedTuple):
    # One point of every series, kept together so the series can never fall out of step.
    ts: float
    cpu: float | None
    mem_percent: float | None
    rss: int | None
    threads: int | None
    per_core: list[float | None]
    gpus: list[tuple[float | None, float | None, float | None]]  # load, mem %, temperature


class _Health:
    """Error bookkeeping of one collector."""

    __slots__ = ("errors", "last_error", "logged", "name", "ok", "ok_at", "skipped", "timeouts")

    def __init__(self, name: str) -> None:
        self.name = name
        self.ok = True
        self.errors = 0
        self.timeouts = 0
        self.skipped = 0
        self.ok_at: float | None = None  # hub-clock time of the last good reading
        self.last_error: dict[str, Any] | None = None
        self.logged: set[str] = set()

    def succeeded(self, ts: float) -> None:
        self.ok = True
        self.ok_at = ts

    def failed(self, exc: BaseException, ts: float) -> None:
        info = describe(exc)
        self.ok = False
        self.errors += 1
        self.last_error = {**info, "ts": ts}
        if info["type"] not in self.logged:  # once per kind: a broken collector fails every second
            self.logged.add(info["type"])
            log.warning(
                "collector %r failed: %s: %s (last good values kept for a while; counted "
                "in health)",
                self.name,
                info["type"],
                info["message"],
            )

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "errors": self.errors,
            "last_error": self.last_error,
            "timeouts": self.timeouts,
            "skipped": self.skipped,
        }


_Job = tuple[Callable[[], Any], "concurrent.futures.Future[Any]"]


class _Worker:
    """One daemon thread that runs one collector's reads, one at a time.

    A collector keeps its thread (psutil's non-blocking ``cpu_percent`` compares with the previous
    reading *of the same thread*); the thread exits after ``idle_exit`` seconds without work or
    when :meth:`close` is called, and is started again by the next :meth:`submit`. A daemon
    thread, not a ``ThreadPoolExecutor``: the executor joins its threads at interpreter exit, and
    a hung read would then hang the kernel's shutdown.
    """

    def __init__(self, name: str, idle_exit: float) -> None:
        self.name = name
        self.idle_exit = idle_exit
        self._cond = threading.Condition(threading.Lock())
        self._jobs: deque[_Job] = deque()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.current: concurrent.futures.Future[Any] | None = None
        self.started_at = 0.0  # time.monotonic() of the current read's submission
        self.threads_started = 0

    @property
    def busy(self) -> bool:
        """A read is queued or running (possibly stuck)."""
        current = self.current
        return current is not None and not current.done()

    @property
    def alive(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def submit(self, fn: Callable[[], Any]) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._cond:
            self._closed = False
            self._jobs.append((fn, future))
            self.current = future
            self.started_at = time.monotonic()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name=f"codeur_widgets.system[{self.name}]", daemon=True
                )
                self.threads_started += 1
                self._thread.start()
            else:
                self._cond.notify()
        return future

    def close(self) -> None:
        """Let the thread exit once its current read (if any) returns."""
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                if not self._jobs and not self._closed:
                    self._cond.wait(self.idle_exit)
                if not self._jobs:
                    self._thread = None  # a later submit() starts a fresh thread
                    return
                fn, future = self._jobs.popleft()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as exc:  # reported through the future, never lost
                    future.set_exception(exc)
            # Drop the references now: an idle thread must not keep a closed sampler alive.
            del fn, future


def _pick(n: int, m: int) -> list[int]:
    """``m`` indices out of ``range(n)``, evenly spread, always including the newest."""
    if n <= m:
        return list(range(n))
    step = n / m
    return [n - 1 - int(j * step) for j in range(m - 1, -1, -1)]


class SystemSampler(Store):
    """The ``system`` store: samples the machine and keeps windowed series.

    Args:
        clock: unix seconds, stamps the samples.
        interval: expected seconds between samples (sizes the series; reported to views).
        window: seconds of history kept (default 15 minutes).
        gpu: the GPU collector; by default a :class:`GpuCollector` is created on first use and
            shut down by :meth:`close`.
        collector_timeout: seconds :meth:`collect_async` waits for one collector's reading
            (default ``max(2, 2 * interval)``); :attr:`gpu_timeout` is the GPU's.
        stale_after: seconds a failing or stuck collector's last good values are still shown
            (default ``max(10, 5 * interval)``); after that they are cleared (None, no GPU rows).
    """

    name = "system"
    topics = ("system.sample",)

    def __init__(
        self,
        clock: Clock = wall_clock,
        interval: float = 1.0,
        window: float = 900.0,
        gpu: GpuCollector | None = None,
        collector_timeout: float | None = None,
        stale_after: float | None = None,
    ) -> None:
        super().__init__(clock)
        if not interval > 0 or not window >= interval:
            raise ValueError(f"need 0 < interval <= window, got {interval!r} and {window!r}")
        self.interval = float(interval)
        self.window = float(window)
        self._gpu = gpu
        self._gpu_lock = threading.Lock()
        self._owns_gpu = gpu is None
        # Slack over window/interval: samples arrive a little faster than `interval` when the
        # loop catches up; the time-based trim in apply() is what really bounds the window.
        size = math.ceil(self.window / self.interval)
        self._rows: deque[_Row] = deque(maxlen=size + max(10, size // 10))
        self.latest: dict[str, Any] | None = None
        self.bad_samples = 0
        self.bad_fields = 0
        self._health = {name: _Health(name) for name in COLLECTORS}
        self._last: dict[str, Any] = {key: None for key in _SCALARS}
        self._last["per_core"] = []
        self._last["gpus"] = []
        default_timeout = max(2.0, 2.0 * self.interval)
        self.collector_timeout = (
            default_timeout if collector_timeout is None else float(collector_timeout)
        )
        self.gpu_timeout = self.collector_timeout
        self.stale_after = max(10.0, 5.0 * self.interval) if stale_after is None else stale_after
        # One worker thread per collector, created on first use by collect_async().
        idle_exit = max(30.0, 3.0 * self.interval)
        self._workers = {name: _Worker(name, idle_exit) for name in COLLECTORS}
        self._snap_version = -1
        self._snap_body: dict[str, Any] = {}
        self._process = psutil.Process()
        self._primed: set[int] = set()
        self._prime()

    # -- collection --------------------------------------------------------------------------
    @property
    def gpu(self) -> GpuCollector:
        """The GPU collector (created on first use, so a hub without sampling never loads NVML)."""
        with self._gpu_lock:  # the GPU worker thread and a direct collect() may both ask
            if self._gpu is None:
                self._gpu = GpuCollector()
            return self._gpu

    def _prime(self) -> None:
        """Take the reference readings that non-blocking ``cpu_percent`` calls compare against.

        psutil keeps the previous system-wide reading per calling thread, so each new thread is
        primed on its first use (see :meth:`_read_cpu`); the process reading is per object.
        """
        now = self.clock()
        try:
            psutil.cpu_percent(interval=None)
            psutil.cpu_percent(interval=None, percpu=True)
            self._primed.add(threading.get_ident())
        except Exception as exc:
            self._health["cpu"].failed(exc, now)
        try:
            self._process.cpu_percent(interval=None)
        except Exception as exc:
            self._health["process"].failed(exc, now)

    def _read_cpu(self) -> dict[str, Any]:
        tid = threading.get_ident()
        if tid not in self._primed:
            # A first call in this thread would compare against a reading taken just now.
            psutil.cpu_percent(interval=None)
            psutil.cpu_percent(interval=None, percpu=True)
            self._primed.add(tid)
            return {"cpu": None, "per_core": []}
        total = psutil.cpu_percent(interval=None)
        per_core = psutil.cpu_percent(interval=None, percpu=True)
        return {"cpu": _r1(_num(total)), "per_core": [_r1(_num(v)) for v in per_core]}

    @staticmethod
    def _read_freq() -> dict[str, Any]:
        freq = psutil.cpu_freq()  # None where the platform does not expose it (many VMs)
        return {"freq_mhz": None if freq is None else _r1(_num(freq.current))}

    @staticmethod
    def _read_memory() -> dict[str, Any]:
        vm = psutil.virtual_memory()
        swap = psutil.swap_memory()
        return {
            "mem_percent": _r1(_num(vm.percent)),
            "mem_used": _int(_num(vm.used)),
            "mem_total": _int(_num(vm.total)),
            "swap_percent": _r1(_num(swap.percent)),
        }

    def _read_process(self) -> dict[str, Any]:
        proc = self._process
        with proc.oneshot():
            return {
                "rss": _int(_num(proc.memory_info().rss)),
                "threads": proc.num_threads(),
                "proc_cpu": _r1(_num(proc.cpu_percent(interval=None))),
            }

    def _run(self, name: str, read: Callable[[], dict[str, Any]], now: float) -> None:
        try:
            values = read()
        except Exception as exc:
            self._health[name].failed(exc, now)  # self._last keeps the last good values
            return
        self._last.update(values)
        self._health[name].succeeded(now)

    def _host(self, now: float) -> None:
        self._run("cpu", self._read_cpu, now)
        self._run("freq", self._read_freq, now)
        self._run("memory", self._read_memory, now)
        self._run("process", self._read_process, now)

    def _sample(self, now: float) -> dict[str, Any]:
        # A collector failing (or stuck) for longer than stale_after loses its last good values:
        # frozen numbers must not pass for current ones (and a lost GPU's rows must go).
        for name, keys in _FIELDS.items():
            health = self._health[name]
            if health.ok:
                continue
            if health.ok_at is None or now - health.ok_at > self.stale_after:
                for key in keys:
                    self._last[key] = [] if key in ("per_core", "gpus") else None
        sample = {"ts": round(now, 3), **self._last}
        sample["per_core"] = list(sample["per_core"])
        sample["gpus"] = [dict(g) for g in sample["gpus"]]
        return sample

    def _read_gpus(self) -> list[dict[str, Any]]:
        return self.gpu.collect()

    def collect(self) -> dict[str, Any]:
        """One sample (the ``latest`` shape of the snapshot), without blocking.

        Cheap psutil calls only. When the GPU collector blocks (:attr:`GpuCollector.needs_thread`)
        the GPU readings are the last ones :meth:`collect_async` obtained. Never raises.
        """
        now = self.clock()
        self._host(now)
        if not self.gpu.needs_thread:
            self._run("gpu", lambda: {"gpus": self._read_gpus()}, now)
        return self._sample(now)

    def _readers(self) -> dict[str, Callable[[], dict[str, Any]]]:
        return {
            "cpu": self._read_cpu,
            "freq": self._read_freq,
            "memory": self._read_memory,
            "process": self._read_process,
            "gpu": lambda: {"gpus": self._read_gpus()},
        }

    async def collect_async(self) -> dict[str, Any]:
        """One sample, every collector read in its own worker thread, with a deadline.

        The loop never waits on a collector: a reading slower than :attr:`collector_timeout`
        (:attr:`gpu_timeout` for the GPU) is recorded as a ``TimeoutError`` of that collector
        (counted in ``timeouts``) and its last good values are used; while that call is still
        stuck the collector is skipped (counted in ``skipped``) and no second call is started.
        The others are read as usual. Never raises (except ``CancelledError``).
        """
        now = self.clock()
        pending: dict[str, asyncio.Future[Any]] = {}
        for name, read in self._readers().items():
            worker = self._workers[name]
            if worker.busy:
                self._health[name].skipped += 1  # still stuck in an earlier call
                continue
            pending[name] = asyncio.wrap_future(worker.submit(read))
        limits = {
            name: self.gpu_timeout if name == "gpu" else self.collector_timeout for name in pending
        }
        loop = asyncio.get_running_loop()
        start = loop.time()
        waiting = dict(pending)
        try:
            while True:
                elapsed = loop.time() - start
                waiting = {n: f for n, f in waiting.items() if not f.done() and limits[n] > elapsed}
                if not waiting:
                    break
                wait_s = min(limits[n] for n in waiting) - elapsed
                await asyncio.wait(waiting.values(), timeout=wait_s)
        except asyncio.CancelledError:
            for future in pending.values():
                future.cancel()
            raise
        for name, future in pending.items():
            health = self._health[name]
            if not future.done():
                # Abandon the wrapper (the thread's call goes on; its result is dropped). The
                # cancelled wrapper also keeps the call from reaching a loop closed meanwhile.
                future.cancel()
                limit = self.gpu_timeout if name == "gpu" else self.collector_timeout
                health.timeouts += 1
                health.failed(
                    TimeoutError(f"{name} collector did not answer within {limit:g} s"), now
                )
                continue
            exc = future.exception()
            if exc is not None:
                health.failed(exc, now)
                continue
            values = future.result()
            if isinstance(values, dict):
                self._last.update(values)
                health.succeeded(now)
            else:  # a bug guard: a reader returns a dict
                health.failed(TypeError(f"{name} reader returned {type(values).__name__}"), now)
        return self._sample(now)

    def worker_threads(self) -> int:
        """Collector worker threads alive now (at most one per collector)."""
        return sum(1 for w in self._workers.values() if w.alive)

    def collectors_health(self) -> dict[str, dict[str, Any]]:
        """``{collector: {"ok", "errors", "last_error"}}``; ``gpu`` adds ``backend``,
        ``degraded`` and ``reason`` from the GPU collector."""
        out = {name: h.as_dict() for name, h in self._health.items()}
        for name, state in out.items():
            worker = self._workers[name]
            state["stuck_s"] = (
                round(time.monotonic() - worker.started_at, 1)
                if worker.busy and not self._health[name].ok
                else None
            )
        gpu_state = out["gpu"]
        if self._gpu is not None:
            inner = self._gpu.health()
            errors = [e for e in (gpu_state["last_error"], inner["last_error"]) if e]
            gpu_state.update(
                ok=gpu_state["ok"] and inner["ok"],
                errors=gpu_state["errors"] + inner["errors"],
                last_error=max(errors, key=lambda e: e.get("ts", 0.0)) if errors else None,
                backend=inner["backend"],
                degraded=inner["degraded"],
                reason=inner["reason"],
            )
        else:
            gpu_state.update(backend=None, degraded=False, reason="not started")
        return out

    def close(self) -> None:
        """Shut down the GPU collector if this sampler created it (releasing NVML).

        The sampler stays usable: a later :meth:`collect` creates a fresh collector, so a hub
        may call this on ``stop()`` and start again.
        """
        for worker in self._workers.values():
            worker.close()
        if self._owns_gpu and self._gpu is not None:
            gpu, self._gpu = self._gpu, None
            gpu.shutdown()

    # -- store ---------------------------------------------------------------------------------
    def apply(self, event: Event) -> None:
        """Fold a ``system.sample`` into the series (O(1)). Bad fields become None and are
        counted in :attr:`bad_fields`; a sample with nothing usable, or older than the newest
        point, is ignored and counted in :attr:`bad_samples`."""
        data = event.data
        if not isinstance(data, dict):
            self.bad_samples += 1
            return
        bad = 0
        sample: dict[str, Any] = {}
        raw_ts = data.get("ts")
        ts = _sane(raw_ts)
        if ts is None:
            bad += raw_ts is not None
            ts = _sane(event.ts)
            if ts is None:
                self.bad_samples += 1
                return
        ts = round(ts, 3)
        sample["ts"] = ts
        usable = False
        for key in _SCALARS:
            raw = data.get(key)
            value = _sane(raw)
            if value is None and raw is not None:
                bad += 1
            usable |= value is not None
            sample[key] = value
        per_core, n_bad = self._clean_cores(data.get("per_core"))
        gpus, g_bad = self._clean_gpus(data.get("gpus"))
        bad += n_bad + g_bad
        self.bad_fields += bad
        if not (usable or per_core or gpus):
            self.bad_samples += 1
            return
        if self._rows and ts < self._rows[-1].ts:
            if self._rows[-1].ts - ts <= self.window:
                self.bad_samples += 1  # a late sample: the series must stay ordered in time
                return
            # The clock went back by more than the window (or the newest point was a bogus
            # future time): start the series over instead of rejecting every sample from now on.
            self._rows.clear()

        for key in ("rss", "threads", "mem_used", "mem_total"):
            sample[key] = _int(sample[key])
        sample["per_core"] = per_core
        sample["gpus"] = gpus
        self.latest = sample
        gpu_points = []
        for g in gpus:
            used, total = g["mem_used"], g["mem_total"]
            mem_pct = _r1(_sane(100.0 * used / total)) if used is not None and total else None
            gpu_points.append((_r1(g["load"]), mem_pct, _r1(g["temperature"])))
        self._rows.append(
            _Row(
                ts,
                _r1(sample["cpu"]),
                _r1(sample["mem_percent"]),
                sample["rss"],
                sample["threads"],
                [_r1(v) for v in per_core],
                gpu_points,
            )
        )
        self._trim(ts)
        self.touch()

    @staticmethod
    def _clean_cores(raw: Any) -> tuple[list[float | None], int]:
        if raw is None:
            return [], 0
        if not isinstance(raw, list):
            return [], 1
        bad = int(len(raw) > MAX_CORES)
        out: list[float | None] = []
        for value in raw[:MAX_CORES]:
            number = _sane(value)
            bad += number is None
            out.append(number)
        return out, bad

    @staticmethod
    def _clean_gpus(raw: Any) -> tuple[list[dict[str, Any]], int]:
        if raw is None:
            return [], 0
        if not isinstance(raw, list):
            return [], 1
        bad = int(len(raw) > MAX_GPUS)
        out: list[dict[str, Any]] = []
        for position, item in enumerate(raw[:MAX_GPUS]):
            if not isinstance(item, dict):
                bad += 1
                continue
            index = item.get("index", position)
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 10_000:
                bad += 1
                index = position
            name = item.get("name")
            if not isinstance(name, str):
                bad += name is not None
                name = f"GPU {index}"
            gpu: dict[str, Any] = {"index": index, "name": name[:_MAX_NAME]}
            for key in _GPU_NUMBERS:
                value = _sane(item.get(key))
                bad += value is None and item.get(key) is not None
                gpu[key] = value
            out.append(gpu)
        return out, bad

    def _trim(self, now: float) -> bool:
        rows = self._rows
        oldest = now - self.window
        trimmed = False
        while rows and rows[0].ts < oldest:
            rows.popleft()
            trimmed = True
        return trimmed

    def tick(self, now: float) -> None:
        """Drop points older than the window (the series must age even when sampling stops)."""
        if self._trim(now):
            self.touch()

    def snapshot(self) -> dict[str, Any]:
        """The ``system`` snapshot of ``docs/internals.md`` (≤ :data:`SNAPSHOT_LIMIT` bytes).

        Series are plain lists over the last ``window`` seconds, at most :data:`MAX_POINTS`
        points (fewer, evenly spread, when many GPUs would make the message too big). With many
        cores the per-core series are decimated further: ``per_core_step`` = ``k`` means
        ``per_core[c]`` is sampled at ``series["ts"][(len(ts) - 1) % k :: k]`` (aligned on the
        newest point). ``rejected`` counts ignored samples and bad fields.
        """
        if self._snap_version != self.version:
            self._snap_body = self._build()
            self._snap_version = self.version
        # Collector health and counters are read fresh: they can change without a new point.
        return {
            "now": self.clock(),
            **self._snap_body,
            "collectors": self.collectors_health(),
            "rejected": {"samples": self.bad_samples, "fields": self.bad_fields},
        }

    def _build(self) -> dict[str, Any]:
        rows = list(self._rows)
        latest = self.latest
        cores = len(latest["per_core"]) if latest else 0
        gpus = len(latest["gpus"]) if latest else 0
        per_point = 16 + 6 + 6 + 12 + 5 + 18 * gpus  # serialised bytes, roughly, per time step
        m = max(_MIN_POINTS, min(MAX_POINTS, _MAIN_BUDGET // per_point))
        # Room for the parts added by snapshot(): now, collectors (errors capped at 500 chars).
        extra = len(json.dumps(self.collectors_health())) + 200
        while True:
            body = self._body(rows, _pick(len(rows), m), cores, gpus)
            size = len(json.dumps(body)) + extra
            if m <= _MIN_POINTS or size <= SNAPSHOT_LIMIT:
                return body
            # The estimate was short (wide numbers): shrink in proportion, a little more.
            m = max(_MIN_POINTS, min(m - 1, int(m * SNAPSHOT_LIMIT / size * 0.95)))

    def _body(self, rows: list[_Row], idx: list[int], cores: int, gpus: int) -> dict[str, Any]:
        picked = [rows[i] for i in idx]
        step = max(1, math.ceil(cores * 6 * len(picked) / _PER_CORE_BUDGET))
        core_rows = picked[(len(picked) - 1) % step :: step] if picked else []
        per_core = [
            [r.per_core[c] if c < len(r.per_core) else None for r in core_rows]
            for c in range(cores)
        ]

        def gpu_series(field: int) -> list[list[float | None]]:
            return [
                [r.gpus[g][field] if g < len(r.gpus) else None for r in picked] for g in range(gpus)
            ]

        return {
            "interval": self.interval,
            "window": self.window,
            "latest": self.latest,
            "series": {
                "ts": [r.ts for r in picked],
                "cpu": [r.cpu for r in picked],
                "mem_percent": [r.mem_percent for r in picked],
                "rss": [r.rss for r in picked],
                "threads": [r.threads for r in picked],
                "per_core": per_core,
                "gpu_load": gpu_series(0),
                "gpu_mem_percent": gpu_series(1),
                "gpu_temp": gpu_series(2),
            },
            "per_core_step": step,
        }
