"""GpuCollector: the real no-GPU path, NVML through a fake ``pynvml``, GPUtil through a fake
``GPUtil``, and DESIGN defect 7 (GPU errors counted and visible, never swallowed)."""

from __future__ import annotations

import logging
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from codeur_widgets.core.clock import FakeClock
from codeur_widgets.core.gpu import BACKENDS, GpuCollector
from codeur_widgets.core.system import SystemSampler

GPU_KEYS = {"index", "name", "load", "mem_used", "mem_total", "temperature"}


# -- a fake pynvml --------------------------------------------------------------------------------
class FakeNVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return {3: "Not Supported", 15: "GPU is lost", 9: "Driver Not Loaded"}.get(
            self.value, f"NVML error {self.value}"
        )


class FakeNVML(types.ModuleType):
    """Enough of ``pynvml`` for the collector, with switches to make calls fail."""

    NVML_ERROR_NOT_SUPPORTED = 3
    NVML_ERROR_GPU_IS_LOST = 15
    NVML_ERROR_DRIVER_NOT_LOADED = 9
    NVML_TEMPERATURE_GPU = 0
    NVMLError = FakeNVMLError

    def __init__(self, gpus: int = 2) -> None:
        super().__init__("pynvml")
        self.gpus = gpus
        self.calls: dict[str, int] = {}
        self.fail: dict[str, int] = {}  # function name -> NVML error code to raise
        self.load = [37, 80]
        self.initialised = 0

    def _call(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1
        if name in self.fail:
            raise FakeNVMLError(self.fail[name])

    def nvmlInit(self) -> None:
        self._call("nvmlInit")
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self._call("nvmlShutdown")
        self.initialised -= 1

    def nvmlDeviceGetCount(self) -> int:
        self._call("nvmlDeviceGetCount")
        return self.gpus

    def nvmlDeviceGetHandleByIndex(self, i: int) -> tuple[str, int]:
        self._call("nvmlDeviceGetHandleByIndex")
        return ("handle", i)

    def nvmlDeviceGetName(self, handle: tuple[str, int]) -> str | bytes:
        self._call("nvmlDeviceGetName")
        # Older nvidia-ml-py returns bytes.
        return b"NVIDIA A100" if handle[1] else "NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetUtilizationRates(self, handle: tuple[str, int]) -> Any:
        self._call("nvmlDeviceGetUtilizationRates")
        return types.SimpleNamespace(gpu=self.load[handle[1] % 2], memory=10)

    def nvmlDeviceGetMemoryInfo(self, handle: tuple[str, int]) -> Any:
        self._call("nvmlDeviceGetMemoryInfo")
        return types.SimpleNamespace(used=20 * 2**30, total=80 * 2**30, free=60 * 2**30)

    def nvmlDeviceGetTemperature(self, handle: tuple[str, int], sensor: int) -> int:
        self._call("nvmlDeviceGetTemperature")
        assert sensor == self.NVML_TEMPERATURE_GPU
        return 41 + handle[1]


@pytest.fixture
def nvml(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeNVML]:
    fake = FakeNVML()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setitem(sys.modules, "GPUtil", None)  # import fails: never the fallback here
    yield fake


# -- the real path on this machine ----------------------------------------------------------------
def test_real_machine_backend_is_consistent() -> None:
    """On a machine without a GPU (this one) the backend is 'none' and collect() is []; on a GPU
    machine it is NVML and readings have the documented shape."""
    gpu = GpuCollector()
    try:
        assert gpu.backend in BACKENDS
        readings = gpu.collect()
        health = gpu.health()
        if gpu.backend == "none":
            assert readings == []
            assert health["ok"] is True and health["errors"] == 0
            assert health["reason"], "says why there is no GPU"
        else:
            assert health["ok"], health
            for reading in readings:
                assert set(reading) == GPU_KEYS
                assert reading["mem_total"] and reading["mem_total"] > 0
    finally:
        gpu.shutdown()
        gpu.shutdown()  # idempotent
    assert gpu.collect() == []


def test_none_path_when_nothing_imports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setitem(sys.modules, "GPUtil", None)
    gpu = GpuCollector()
    assert gpu.backend == "none" and gpu.needs_thread is False
    assert gpu.collect() == []
    assert gpu.health() == {
        "ok": True,
        "errors": 0,
        "last_error": None,
        "backend": "none",
        "degraded": False,
        "reason": gpu.reason,
    }
    assert "pynvml unavailable" in (gpu.reason or "")
    assert "GPUtil unavailable" in (gpu.reason or "")


def test_forced_none_and_bad_backend(nvml: FakeNVML) -> None:
    assert GpuCollector("none").backend == "none"
    assert "nvmlInit" not in nvml.calls
    with pytest.raises(ValueError, match="backend"):
        GpuCollector("cuda")


def test_nvml_init_failure_is_the_no_gpu_path(nvml: FakeNVML) -> None:
    nvml.fail["nvmlInit"] = nvml.NVML_ERROR_DRIVER_NOT_LOADED
    gpu = GpuCollector()
    assert gpu.backend == "none"
    assert gpu.errors == 0  # no driver is a normal state, not a failure
    assert "Driver Not Loaded" in (gpu.reason or "")


# -- NVML through the fake ------------------------------------------------------------------------
def test_nvml_readings_and_cached_handles(nvml: FakeNVML) -> None:
    gpu = GpuCollector()
    assert gpu.backend == "nvml" and gpu.needs_thread is False
    for _ in range(5):
        readings = gpu.collect()
    assert readings == [
        {
            "index": 0,
            "name": "NVIDIA H100 80GB HBM3",
            "load": 37.0,
            "mem_used": 20.0 * 2**30,
            "mem_total": 80.0 * 2**30,
            "temperature": 41.0,
        },
        {
            "index": 1,
            "name": "NVIDIA A100",
            "load": 80.0,
            "mem_used": 20.0 * 2**30,
            "mem_total": 80.0 * 2**30,
            "temperature": 42.0,
        },
    ]
    # Init, handles and names once; the per-sample calls once per device per sample.
    assert nvml.calls["nvmlInit"] == 1
    assert nvml.calls["nvmlDeviceGetHandleByIndex"] == 2
    assert nvml.calls["nvmlDeviceGetName"] == 2
    assert nvml.calls["nvmlDeviceGetUtilizationRates"] == 10
    assert gpu.health()["ok"] and gpu.errors == 0
    gpu.shutdown()
    assert nvml.initialised == 0
    assert gpu.collect() == []


def test_nvml_not_supported_fields_are_none_not_errors(nvml: FakeNVML) -> None:
    nvml.fail["nvmlDeviceGetTemperature"] = nvml.NVML_ERROR_NOT_SUPPORTED
    nvml.fail["nvmlDeviceGetUtilizationRates"] = nvml.NVML_ERROR_NOT_SUPPORTED  # e.g. MIG
    gpu = GpuCollector()
    readings = gpu.collect()
    assert [r["temperature"] for r in readings] == [None, None]
    assert [r["load"] for r in readings] == [None, None]
    assert readings[0]["mem_total"] == 80.0 * 2**30
    assert gpu.errors == 0 and gpu.health()["ok"]


def test_defect7_nvml_failure_mid_run_is_counted_logged_once_and_retried(
    nvml: FakeNVML, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(1000.0)
    gpu = GpuCollector(clock=clock, retry_initial=5.0, retry_max=20.0)
    good = gpu.collect()
    assert good and gpu.health()["ok"]

    nvml.fail["nvmlDeviceGetUtilizationRates"] = nvml.NVML_ERROR_GPU_IS_LOST
    nvml.fail["nvmlInit"] = nvml.NVML_ERROR_DRIVER_NOT_LOADED  # re-init fails too, for a while
    with caplog.at_level(logging.DEBUG, logger="codeur_widgets.gpu"):
        assert gpu.collect() == good  # the last good readings, not an exception
        health = gpu.health()
        assert health["ok"] is False and health["degraded"] is True
        assert health["errors"] == 1
        assert health["last_error"]["type"] == "FakeNVMLError"
        assert health["last_error"]["message"] == "GPU is lost"
        assert nvml.calls["nvmlShutdown"] == 1  # released, to be re-initialised

        # Within the backoff: no re-init attempt, no new error.
        inits = nvml.calls["nvmlInit"]
        clock.advance(4.0)
        assert gpu.collect() == good
        assert nvml.calls["nvmlInit"] == inits and gpu.errors == 1

        # After it: one attempt, which fails (counted) and doubles the wait.
        clock.advance(1.5)
        gpu.collect()
        assert nvml.calls["nvmlInit"] == inits + 1 and gpu.errors == 2
        clock.advance(5.0)
        gpu.collect()
        assert nvml.calls["nvmlInit"] == inits + 1  # now waiting 10 s
        clock.advance(5.5)
        gpu.collect()
        assert nvml.calls["nvmlInit"] == inits + 2 and gpu.errors == 3

        for _ in range(10):  # the wait is capped at retry_max
            clock.advance(20.5)
            gpu.collect()
        assert nvml.calls["nvmlInit"] == inits + 12

    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    # One warning per kind of failure (the sample failure, the re-init failure), not per sample.
    assert len(warnings) == 2, [r.getMessage() for r in warnings]
    assert "GPU is lost" in warnings[0].getMessage()
    assert all(r.name == "codeur_widgets.gpu" for r in warnings)

    # The driver comes back: the next attempt recovers and fresh values flow again.
    del nvml.fail["nvmlInit"]
    del nvml.fail["nvmlDeviceGetUtilizationRates"]
    nvml.load = [5, 6]
    clock.advance(21.0)
    fresh = gpu.collect()
    assert [r["load"] for r in fresh] == [5.0, 6.0]
    health = gpu.health()
    assert health["ok"] and not health["degraded"] and gpu.recoveries == 1
    assert health["errors"] == 13  # history is kept


def test_nvml_handle_failure_at_startup_is_an_error(nvml: FakeNVML) -> None:
    nvml.fail["nvmlDeviceGetHandleByIndex"] = nvml.NVML_ERROR_GPU_IS_LOST
    gpu = GpuCollector(clock=FakeClock())
    assert gpu.backend == "nvml"
    assert gpu.degraded and gpu.errors == 1
    assert gpu.collect() == []  # nothing good yet
    assert gpu.health()["last_error"]["where"] == "init"


def test_a_non_nvml_exception_is_recorded_too(nvml: FakeNVML) -> None:
    gpu = GpuCollector(clock=FakeClock())

    def broken(handle: Any) -> Any:
        raise AttributeError("pynvml API changed")

    nvml.nvmlDeviceGetMemoryInfo = broken  # type: ignore[method-assign]
    assert gpu.collect() == []
    assert gpu.health()["last_error"]["type"] == "AttributeError"


def test_defect7_failures_surface_in_system_collector_health(nvml: FakeNVML) -> None:
    gpu = GpuCollector(clock=FakeClock())
    sampler = SystemSampler(clock=FakeClock(), gpu=gpu)
    first = sampler.collect()
    assert [g["load"] for g in first["gpus"]] == [37.0, 80.0]
    nvml.fail["nvmlDeviceGetMemoryInfo"] = nvml.NVML_ERROR_GPU_IS_LOST
    second = sampler.collect()
    assert second["gpus"] == first["gpus"]  # last good kept in the sample
    state = sampler.collectors_health()["gpu"]
    assert state["ok"] is False and state["errors"] == 1 and state["degraded"] is True
    assert state["backend"] == "nvml"
    assert state["last_error"]["message"] == "GPU is lost"
    assert sampler.collectors_health()["cpu"]["ok"] is True  # the others go on
    assert sampler.snapshot()["collectors"]["gpu"]["errors"] == 1  # and so does the view


def test_sampler_close_releases_its_own_nvml_and_can_restart(nvml: FakeNVML) -> None:
    sampler = SystemSampler(clock=FakeClock())
    assert len(sampler.collect()["gpus"]) == 2 and nvml.initialised == 1
    sampler.close()
    assert nvml.initialised == 0
    assert len(sampler.collect()["gpus"]) == 2  # a fresh collector (e.g. hub started again)
    sampler.close()
    assert nvml.initialised == 0

    injected = GpuCollector()
    other = SystemSampler(clock=FakeClock(), gpu=injected)
    other.close()  # not its collector: left alone
    assert injected.collect() and nvml.initialised == 1
    injected.shutdown()


# -- GPUtil through a fake -------------------------------------------------------------------------
class FakeGPUtil(types.ModuleType):
    def __init__(self) -> None:
        super().__init__("GPUtil")
        self.fail: Exception | None = None
        self.calls = 0

    def getGPUs(self) -> list[Any]:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        return [
            types.SimpleNamespace(
                id=0,
                name="Tesla T4",
                load=0.25,
                memoryUsed=1024.0,
                memoryTotal=15360.0,
                temperature=float("nan"),  # GPUtil's "[Not Supported]"
            )
        ]


@pytest.fixture
def gputil(monkeypatch: pytest.MonkeyPatch) -> FakeGPUtil:
    fake = FakeGPUtil()
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setitem(sys.modules, "GPUtil", fake)
    return fake


def test_gputil_fallback_needs_a_thread(gputil: FakeGPUtil) -> None:
    gpu = GpuCollector()
    assert gpu.backend == "gputil" and gpu.needs_thread is True
    assert gpu.collect() == [
        {
            "index": 0,
            "name": "Tesla T4",
            "load": 25.0,
            "mem_used": 1024.0 * 2**20,
            "mem_total": 15360.0 * 2**20,
            "temperature": None,
        }
    ]


def test_gputil_chosen_when_nvml_has_no_driver(
    monkeypatch: pytest.MonkeyPatch, gputil: FakeGPUtil
) -> None:
    fake = FakeNVML()
    fake.fail["nvmlInit"] = fake.NVML_ERROR_DRIVER_NOT_LOADED
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    gpu = GpuCollector()
    assert gpu.backend == "gputil"
    assert "NVML init failed" in (gpu.reason or "")


def test_defect7_gputil_errors_are_counted_not_swallowed(
    gputil: FakeGPUtil, caplog: pytest.LogCaptureFixture
) -> None:
    gpu = GpuCollector()
    good = gpu.collect()
    gputil.fail = OSError("nvidia-smi: command not found")
    with caplog.at_level(logging.WARNING, logger="codeur_widgets.gpu"):
        for _ in range(3):
            assert gpu.collect() == good
    health = gpu.health()
    assert health["ok"] is False and health["errors"] == 3
    assert health["last_error"]["type"] == "OSError"
    assert "nvidia-smi" in health["last_error"]["message"]
    assert len([r for r in caplog.records if r.name == "codeur_widgets.gpu"]) == 1
    gputil.fail = None
    gpu.collect()
    assert gpu.health()["ok"] is True
