"""GPU readings: NVML first, GPUtil as a fallback, none → ``[]``.

:class:`GpuCollector` picks its backend once, at construction:

1. ``"nvml"``: the ``pynvml`` module (package ``nvidia-ml-py``) imports and ``nvmlInit()``
   succeeds. Device handles and names are fetched once and cached; a sample is three cheap NVML
   calls per device (utilization, memory, temperature), fast enough to run on the event loop.
2. ``"gputil"``: ``GPUtil`` imports. It shells out to ``nvidia-smi`` (~100 ms), so
   :attr:`GpuCollector.needs_thread` is true and the sampler calls it in a worker thread.
3. ``"none"``: neither is usable (no driver, no library): :meth:`GpuCollector.collect` returns
   ``[]``. That is the normal state of a machine without a GPU, not an error.

Failures while sampling are never swallowed (DESIGN section 10, defect 7: the plan wrapped GPU
collection in a bare ``except: pass``): each is counted, the latest kept (type and message) for
:meth:`GpuCollector.health`, and the first of each kind logged on ``codeur_widgets.gpu``. When NVML
fails mid-run (driver reloaded, GPU lost, library unloaded) the collector is marked degraded,
returns the last good readings for :attr:`GpuCollector.hold` seconds and then none (the GPU rows
vanish rather than show frozen numbers), and re-initialises NVML with exponential backoff.
"""

from __future__ import annotations

import importlib
import logging
import math
import threading
from types import ModuleType
from typing import Any

from .clock import Clock, wall_clock

__all__ = ["BACKENDS", "GpuCollector"]

log = logging.getLogger("codeur_widgets.gpu")

BACKENDS = ("nvml", "gputil", "none")
"""The backends a collector can end up with, in order of preference."""

_MIB = 1024 * 1024


def describe(exc: BaseException) -> dict[str, str]:
    """``{"type", "message"}`` of an exception; never raises (some ``__str__`` call into C)."""
    try:
        message = str(exc)
    except Exception:
        message = repr(exc.args)
    return {"type": type(exc).__name__, "message": message[:500]}


def _number(value: Any, scale: float = 1.0) -> float | None:
    """A finite float, or None (GPUtil reports unsupported fields as NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    result = float(value) * scale
    return result if math.isfinite(result) else None


def _text(value: Any) -> str:
    # Older nvidia-ml-py versions return bytes for names.
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


class GpuCollector:
    """Reads GPU load, memory and temperature through the best available backend.

    Args:
        backend: ``"auto"`` (NVML, else GPUtil, else none) or one of :data:`BACKENDS` to try only
            that one (``"none"`` disables GPU collection).
        clock: for error timestamps and the re-initialisation backoff.
        retry_initial: seconds before the first NVML re-initialisation after a failure.
        retry_max: longest wait between re-initialisation attempts (the wait doubles).
        hold: seconds after the last good reading during which a failing collector still returns
            it; later failures return ``[]``.

    Attributes:
        backend: the chosen backend, one of :data:`BACKENDS`.
        needs_thread: true when :meth:`collect` blocks (GPUtil) and must run in a worker thread.
        reason: why the other backends were not chosen (for ``"none"``: why there is no GPU).
        errors: failures counted since construction.
        last_error: ``{"type", "message", "ts"}`` of the latest failure, or None.
        degraded: NVML failed and is being re-initialised with backoff.
    """

    def __init__(
        self,
        backend: str = "auto",
        *,
        clock: Clock = wall_clock,
        retry_initial: float = 5.0,
        retry_max: float = 300.0,
        hold: float = 10.0,
    ) -> None:
        if backend != "auto" and backend not in BACKENDS:
            raise ValueError(f"backend must be 'auto' or one of {BACKENDS}, got {backend!r}")
        self.clock = clock
        self.retry_initial = float(retry_initial)
        self.retry_max = float(retry_max)
        self.hold = float(hold)
        self._last_at = 0.0  # clock() of the last good reading
        # One collection at a time: the sampler's worker thread and a direct caller (or
        # shutdown) must not interleave NVML calls on half-updated handle lists.
        self._lock = threading.Lock()
        self.errors = 0
        self.last_error: dict[str, Any] | None = None
        self.degraded = False
        self.recoveries = 0
        self._last_ok = True
        self._logged: set[str] = set()
        self._last: list[dict[str, Any]] = []
        self._nvml: ModuleType | None = None
        self._nvml_live = False
        self._handles: list[Any] = []
        self._names: list[str] = []
        self._backoff = self.retry_initial
        self._next_retry = 0.0
        self._gputil: ModuleType | None = None
        self._closed = False
        self.backend = "none"  # until _choose() has picked one
        notes: list[str] = []
        self.backend = self._choose(backend, notes)
        self.reason = "; ".join(notes) or None
        self.needs_thread = self.backend == "gputil"

    # -- backend selection -----------------------------------------------------------------
    def _choose(self, wanted: str, notes: list[str]) -> str:
        if wanted in ("auto", "nvml") and self._try_nvml(notes):
            return "nvml"
        if wanted in ("auto", "gputil"):
            try:
                self._gputil = importlib.import_module("GPUtil")
                return "gputil"
            except Exception as exc:
                notes.append(f"GPUtil unavailable ({describe(exc)['type']})")
        return "none"

    def _try_nvml(self, notes: list[str]) -> bool:
        try:
            self._nvml = importlib.import_module("pynvml")
        except Exception as exc:  # not installed: the usual case without the [gpu] extra
            notes.append(f"pynvml unavailable ({describe(exc)['type']})")
            return False
        try:
            self._nvml.nvmlInit()
        except Exception as exc:
            # No driver / no libnvidia-ml: a machine without a GPU. Not an error, but say why.
            info = describe(exc)
            notes.append(f"NVML init failed ({info['type']}: {info['message']})")
            log.debug("NVML unavailable: %s: %s", info["type"], info["message"])
            return False
        self._nvml_live = True
        try:
            self._load_handles()
        except Exception as exc:
            # The driver answered but the devices did not: a real failure, surfaced and retried.
            self._fail(exc, "init")
        return True

    def _load_handles(self) -> None:
        nv = self._nvml
        assert nv is not None
        count = int(nv.nvmlDeviceGetCount())
        handles = [nv.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        names = [_text(nv.nvmlDeviceGetName(h)) for h in handles]
        self._handles, self._names = handles, names

    # -- failures ----------------------------------------------------------------------------
    def _record(self, exc: BaseException, where: str) -> None:
        info = describe(exc)
        self.errors += 1
        self._last_ok = False
        self.last_error = {**info, "ts": self.clock(), "where": where}
        key = f"{where}:{info['type']}"
        if key not in self._logged:
            self._logged.add(key)
            log.warning(
                "GPU %s failed: %s: %s (counted in health(); repeats are not logged again)",
                where,
                info["type"],
                info["message"],
            )
        else:
            log.debug("GPU %s failed again: %s: %s", where, info["type"], info["message"])

    def _fail(self, exc: BaseException, where: str) -> None:
        """Record an NVML failure, drop the handles and schedule a re-initialisation."""
        self._record(exc, where)
        if not self.degraded:
            self._backoff = self.retry_initial
        self.degraded = True
        self._next_retry = self.clock() + self._backoff
        self._backoff = min(self._backoff * 2.0, self.retry_max)
        self._handles, self._names = [], []
        self._shutdown_nvml()

    def _shutdown_nvml(self) -> None:
        if not self._nvml_live or self._nvml is None:
            return
        self._nvml_live = False
        try:
            self._nvml.nvmlShutdown()
        except Exception as exc:
            # Already in a failed state; the failure that brought us here is the one recorded.
            log.debug("nvmlShutdown failed: %s", describe(exc))

    def _reinit(self) -> bool:
        nv = self._nvml
        assert nv is not None
        try:
            nv.nvmlInit()
            self._nvml_live = True
            self._load_handles()
        except Exception as exc:
            self._fail(exc, "re-init")
            return False
        self.degraded = False
        self.recoveries += 1
        self._backoff = self.retry_initial
        log.info("NVML recovered: %d GPU(s)", len(self._handles))
        return True

    # -- sampling ----------------------------------------------------------------------------
    def collect(self) -> list[dict[str, Any]]:
        """One reading per GPU: ``{index, name, load, mem_used, mem_total, temperature}``.

        ``load`` is a percentage, memory in bytes, temperature in °C; a field the device does not
        support is None. Never raises: on a failure it returns the last good readings (or ``[]``)
        and the failure shows in :meth:`health`. Blocks ~100 ms with GPUtil (see
        :attr:`needs_thread`).
        """
        with self._lock:
            if self._closed or self.backend == "none":
                return []
            nvml = self.backend == "nvml"
            readings = self._collect_nvml() if nvml else self._collect_gputil()
            if self._closed:  # shut down while this call hung: release NVML now
                self._handles, self._names = [], []
                self._shutdown_nvml()
                return []
            return readings

    def _held(self) -> list[dict[str, Any]]:
        """The last good readings while they are recent enough to show, else none."""
        if self._last and self.clock() - self._last_at > self.hold:
            self._last = []
        return self._last

    def _good(self, readings: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self._last = readings
        self._last_at = self.clock()
        self._last_ok = True
        return readings

    def _collect_nvml(self) -> list[dict[str, Any]]:
        nv = self._nvml
        assert nv is not None
        # While degraded, re-initialise only when the backoff has elapsed.
        if self.degraded and (self.clock() < self._next_retry or not self._reinit()):
            return self._held()
        try:
            readings = []
            for index, (handle, name) in enumerate(zip(self._handles, self._names, strict=True)):
                util = self._optional(nv.nvmlDeviceGetUtilizationRates, handle)
                mem = self._optional(nv.nvmlDeviceGetMemoryInfo, handle)
                temp = self._optional(
                    nv.nvmlDeviceGetTemperature, handle, getattr(nv, "NVML_TEMPERATURE_GPU", 0)
                )
                readings.append(
                    {
                        "index": index,
                        "name": name,
                        "load": None if util is None else _number(util.gpu),
                        "mem_used": None if mem is None else _number(mem.used),
                        "mem_total": None if mem is None else _number(mem.total),
                        "temperature": _number(temp),
                    }
                )
        except Exception as exc:
            self._fail(exc, "sample")
            return self._held()
        return self._good(readings)

    def _optional(self, fn: Any, *args: Any) -> Any:
        """Call an NVML getter; a field the device does not support (MIG, some boards) is None."""
        try:
            return fn(*args)
        except Exception as exc:
            nv = self._nvml
            not_supported = getattr(nv, "NVML_ERROR_NOT_SUPPORTED", 3)
            if getattr(exc, "value", None) == not_supported and isinstance(
                exc, getattr(nv, "NVMLError", Exception)
            ):
                return None
            raise

    def _collect_gputil(self) -> list[dict[str, Any]]:
        gputil = self._gputil
        assert gputil is not None
        try:
            readings = [
                {
                    "index": int(gpu.id),
                    "name": str(gpu.name),
                    "load": _number(gpu.load, 100.0),
                    "mem_used": _number(gpu.memoryUsed, _MIB),
                    "mem_total": _number(gpu.memoryTotal, _MIB),
                    "temperature": _number(gpu.temperature),
                }
                for gpu in gputil.getGPUs()
            ]
        except Exception as exc:
            self._record(exc, "sample")
            return self._held()
        return self._good(readings)

    # -- state -------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """``{"ok", "errors", "last_error", "backend", "degraded", "reason"}`` for hub health.

        ``ok`` is false while degraded or when the latest collection failed.
        """
        return {
            "ok": self._last_ok and not self.degraded,
            "errors": self.errors,
            "last_error": self.last_error,
            "backend": self.backend,
            "degraded": self.degraded,
            "reason": self.reason,
        }

    def shutdown(self) -> None:
        """Release NVML (``nvmlShutdown``); later :meth:`collect` calls return ``[]``.
        Idempotent; never waits on a hung collection (that call releases NVML when it returns)."""
        self._closed = True
        # A collection hung in NVML holds the lock: never wait on it (a hub's stop() calls this
        # on the loop). That call releases NVML itself when it returns (see collect()).
        if not self._lock.acquire(timeout=0.2):
            log.debug("GPU collection still running; NVML is released when it returns")
            return
        try:
            self._handles, self._names = [], []
            self._shutdown_nvml()
        finally:
            self._lock.release()

    def __repr__(self) -> str:
        state = " degraded" if self.degraded else ""
        return (
            f"<GpuCollector {self.backend}{state}: {len(self._last)} GPU(s), {self.errors} errors>"
        )
