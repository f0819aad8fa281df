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
values stay in the sample, and the others carry on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
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

    __slots__ = ("errors", "last_error", "logged", "name", "ok")

    def __init__(self, name: str) -> None:
        self.name = name
        self.ok = True
        self.errors = 0
        self.last_error: dict[str, Any] | None = None
        self.logged: set[str] = set()

    def failed(self, exc: BaseException, ts: float) -> None:
        info = describe(exc)
        self.ok = False
        self.errors += 1
        self.last_error = {**info, "ts": ts}
        if info["type"] not in self.logged:  # once per kind: a broken collector fails every second
            self.logged.add(info["type"])
            log.warning(
                "system collector %r failed: %s: %s (last good values kept; counted in health)",
                self.name,
                info["type"],
                info["message"],
            )

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "errors": self.errors, "last_error": self.last_error}


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
    """

    name = "system"
    topics = ("system.sample",)

    def __init__(
        self,
        clock: Clock = wall_clock,
        interval: float = 1.0,
        window: float = 900.0,
        gpu: GpuCollector | None = None,
    ) -> None:
        super().__init__(clock)
        if not interval > 0 or not window >= interval:
            raise ValueError(f"need 0 < interval <= window, got {interval!r} and {window!r}")
        self.interval = float(interval)
        self.window = float(window)
        self._gpu = gpu
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
        self._gpu_future: asyncio.Future[list[dict[str, Any]]] | None = None
        self.gpu_timeout = max(2.0, 2.0 * self.interval)
        self._snap_version = -1
        self._snap_body: dict[str, Any] = {}
        self._process = psutil.Process()
        self._primed: set[int] = set()
        self._prime()

    # -- collection --------------------------------------------------------------------------
    @property
    def gpu(self) -> GpuCollector:
        """The GPU collector (created on first use, so a hub without sampling never loads NVML)."""
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
        self._health[name].ok = True

    def _host(self, now: float) -> None:
        self._run("cpu", self._read_cpu, now)
        self._run("freq", self._read_freq, now)
        self._run("memory", self._read_memory, now)
        self._run("process", self._read_process, now)

    def _sample(self, now: float) -> dict[str, Any]:
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

    async def collect_async(self) -> dict[str, Any]:
        """One sample, with a blocking GPU collector run in a worker thread.

        A GPU reading slower than :attr:`gpu_timeout` is recorded as a ``gpu`` error and its last
        good values are used; while such a call is still running no second one is started.
        """
        gpu = self.gpu
        if not gpu.needs_thread:
            return self.collect()
        loop = asyncio.get_running_loop()
        now = self.clock()
        fut = self._gpu_future
        fresh = fut is None or fut.done()
        if fresh:
            try:
                fut = loop.run_in_executor(None, self._read_gpus)
            except RuntimeError as exc:  # the loop's executor is shut down (loop closing)
                self._health["gpu"].failed(exc, now)
                fut, fresh = None, False
            self._gpu_future = fut
        self._host(now)  # runs while the worker thread reads the GPUs
        if fresh and fut is not None:
            try:
                gpus = await asyncio.wait_for(asyncio.shield(fut), self.gpu_timeout)
            except asyncio.TimeoutError:
                self._health["gpu"].failed(
                    TimeoutError(f"GPU reading took longer than {self.gpu_timeout:g} s"), now
                )
            except Exception as exc:
                self._health["gpu"].failed(exc, now)
            else:
                self._last["gpus"] = gpus
                self._health["gpu"].ok = True
        return self._sample(now)

    def collectors_health(self) -> dict[str, dict[str, Any]]:
        """``{collector: {"ok", "errors", "last_error"}}``; ``gpu`` adds ``backend``,
        ``degraded`` and ``reason`` from the GPU collector."""
        out = {name: h.as_dict() for name, h in self._health.items()}
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
