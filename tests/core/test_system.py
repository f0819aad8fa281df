"""SystemSampler (the ``system`` store): non-blocking collection (DESIGN defect 1), collector
isolation, windowed series and a snapshot that stays under 64 KB."""

from __future__ import annotations

import asyncio
import json
import statistics
import threading
import time
from typing import Any

import psutil
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codeur_widgets.core.clock import FakeClock
from codeur_widgets.core.events import Event
from codeur_widgets.core.gpu import GpuCollector
from codeur_widgets.core.system import COLLECTORS, MAX_POINTS, SNAPSHOT_LIMIT, SystemSampler

LATEST_KEYS = {
    "ts",
    "cpu",
    "per_core",
    "freq_mhz",
    "mem_percent",
    "mem_used",
    "mem_total",
    "swap_percent",
    "rss",
    "threads",
    "proc_cpu",
    "gpus",
}
SERIES_KEYS = {
    "ts",
    "cpu",
    "mem_percent",
    "rss",
    "threads",
    "per_core",
    "gpu_load",
    "gpu_mem_percent",
    "gpu_temp",
}


def no_gpu() -> GpuCollector:
    return GpuCollector("none")


def sample_event(data: dict[str, Any], ts: float = 0.0) -> Event:
    return Event("system.sample", None, data, ts, "s")


def fake_sample(ts: float, cores: int = 2, gpus: int = 0, value: float = 12.5) -> dict[str, Any]:
    return {
        "ts": ts,
        "cpu": value,
        "per_core": [value] * cores,
        "freq_mhz": 2400.0,
        "mem_percent": value,
        "mem_used": 1_000_000_000,
        "mem_total": 24_000_000_000,
        "swap_percent": 0.0,
        "rss": 120_000_000,
        "threads": 12,
        "proc_cpu": 3.0,
        "gpus": [
            {
                "index": i,
                "name": f"NVIDIA H100 80GB HBM3 #{i}",
                "load": value,
                "mem_used": 1e9,
                "mem_total": 8e10,
                "temperature": 40.0,
            }
            for i in range(gpus)
        ],
    }


# -- defect 1: never block the loop -----------------------------------------------------------
def test_defect1_cpu_percent_is_never_called_with_a_sleeping_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The plan called psutil.cpu_percent(interval=1): one second of frozen event loop per
    sample. Spy on every call (system-wide and per process) and time the samples."""
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    real = psutil.cpu_percent

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    proc_calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    real_proc = psutil.Process.cpu_percent

    def proc_spy(self: psutil.Process, *args: Any, **kwargs: Any) -> Any:
        proc_calls.append((args, kwargs))
        return real_proc(self, *args, **kwargs)

    monkeypatch.setattr(psutil, "cpu_percent", spy)
    monkeypatch.setattr(psutil.Process, "cpu_percent", proc_spy)

    sampler = SystemSampler(clock=FakeClock(), gpu=no_gpu())
    assert calls, "primed at construction"
    assert proc_calls, "process CPU primed at construction"
    time.sleep(0.05)  # let some CPU time pass so the first reading has something to measure
    durations = []
    for _ in range(20):
        start = time.perf_counter()
        sample = sampler.collect()
        durations.append(time.perf_counter() - start)
    print(
        f"\nSystemSampler.collect(): median {statistics.median(durations) * 1000:.2f} ms, "
        f"max {max(durations) * 1000:.2f} ms over {len(durations)} samples"
    )
    assert max(durations) < 0.05
    assert statistics.median(durations) < 0.01
    for args, kwargs in calls + proc_calls:
        interval = kwargs.get("interval", args[0] if args else None)
        assert interval is None or interval == 0, f"cpu_percent called with interval={interval}"
    assert sample["cpu"] is not None and 0.0 <= sample["cpu"] <= 100.0
    assert len(sample["per_core"]) == psutil.cpu_count()


def test_first_sample_is_meaningful() -> None:
    # Priming at construction: the first sample compares against that reading, not "now".
    sampler = SystemSampler(clock=FakeClock(), gpu=no_gpu())
    end = time.perf_counter() + 0.1
    while time.perf_counter() < end:  # some CPU work, so that the first reading is above 0
        sum(range(1000))
    first = sampler.collect()
    assert first["cpu"] is not None and first["cpu"] > 0.0
    assert first["proc_cpu"] is not None and first["proc_cpu"] > 0.0


def test_collect_from_a_new_thread_is_primed_there() -> None:
    # psutil keeps its reference reading per thread: a first call in a new thread is primed and
    # reported as None rather than as a meaningless 0 %.
    sampler = SystemSampler(clock=FakeClock(), gpu=no_gpu())
    out: list[dict[str, Any]] = []
    t = threading.Thread(target=lambda: out.extend([sampler.collect(), sampler.collect()]))
    t.start()
    t.join()
    assert out[0]["cpu"] is None and out[0]["per_core"] == []
    assert out[1]["cpu"] is not None
    assert sampler.collectors_health()["cpu"]["ok"]


def test_sample_shape_matches_the_snapshot_latest() -> None:
    sampler = SystemSampler(clock=FakeClock(1234.5), gpu=no_gpu())
    sample = sampler.collect()
    assert set(sample) == LATEST_KEYS
    assert sample["ts"] == 1234.5
    assert sample["gpus"] == []
    assert sample["mem_total"] > 0 and 0 <= sample["mem_percent"] <= 100
    assert sample["rss"] > 0 and sample["threads"] >= 1
    json.dumps(sample, allow_nan=False)
    Event.create("system.sample", data=sample)  # a valid event payload


def test_collect_async_runs_a_blocking_gpu_in_a_worker_thread() -> None:
    class SlowGpu(GpuCollector):
        needs_thread = True

        def __init__(self) -> None:
            super().__init__("none")
            self.needs_thread = True
            self.threads: list[int] = []

        def collect(self) -> list[dict[str, Any]]:
            self.threads.append(threading.get_ident())
            time.sleep(0.2)  # nvidia-smi
            return [
                {
                    "index": 0,
                    "name": "T4",
                    "load": 1.0,
                    "mem_used": 1.0,
                    "mem_total": 2.0,
                    "temperature": 30.0,
                }
            ]

    gpu = SlowGpu()
    sampler = SystemSampler(clock=FakeClock(), gpu=gpu)

    async def main() -> tuple[dict[str, Any], int]:
        ticks = 0
        stop = False

        async def ticker() -> None:
            nonlocal ticks
            while not stop:
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        sample = await sampler.collect_async()
        stop = True
        await task
        return sample, ticks

    sample, ticks = asyncio.run(main())
    assert sample["gpus"][0]["name"] == "T4"
    assert gpu.threads and gpu.threads[0] != threading.get_ident()
    assert ticks >= 5, "the loop kept running while the GPU was read"
    # The sync collect() never blocks on that GPU: it reuses the last readings.
    start = time.perf_counter()
    assert sampler.collect()["gpus"] == sample["gpus"]
    assert time.perf_counter() - start < 0.1
    assert len(gpu.threads) == 1


def test_collect_async_gpu_timeout_keeps_last_values_and_does_not_pile_up() -> None:
    release = threading.Event()

    class HangingGpu(GpuCollector):
        def __init__(self) -> None:
            super().__init__("none")
            self.needs_thread = True
            self.calls = 0

        def collect(self) -> list[dict[str, Any]]:
            self.calls += 1
            if self.calls > 1:
                release.wait(5)  # hangs until released
            return [
                {
                    "index": 0,
                    "name": "G",
                    "load": 9.0,
                    "mem_used": None,
                    "mem_total": None,
                    "temperature": None,
                }
            ]

    gpu = HangingGpu()
    sampler = SystemSampler(clock=FakeClock(), interval=0.05, gpu=gpu)
    sampler.gpu_timeout = 0.1

    async def main() -> list[dict[str, Any]]:
        samples = [await sampler.collect_async() for _ in range(4)]
        release.set()
        await asyncio.sleep(0.05)
        return samples

    samples = asyncio.run(main())
    assert all(s["gpus"] and s["gpus"][0]["load"] == 9.0 for s in samples)
    assert gpu.calls == 2, "no new GPU call while one is still running"
    state = sampler.collectors_health()["gpu"]
    assert state["ok"] is False and state["errors"] == 1
    assert state["last_error"]["type"] == "TimeoutError"


# -- collector isolation ------------------------------------------------------------------------
def test_a_raising_collector_is_isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    sampler = SystemSampler(clock=FakeClock(), gpu=no_gpu())
    good = sampler.collect()
    assert good["mem_percent"] is not None

    def broken() -> Any:
        raise PermissionError("/proc/meminfo: permission denied")

    cpu_calls = 0
    real_cpu = psutil.cpu_percent

    def counting_cpu(*args: Any, **kwargs: Any) -> Any:
        nonlocal cpu_calls
        cpu_calls += 1
        return real_cpu(*args, **kwargs)

    monkeypatch.setattr(psutil, "virtual_memory", broken)
    monkeypatch.setattr(psutil, "cpu_percent", counting_cpu)
    sample = sampler.collect()
    sampler.collect()

    health = sampler.collectors_health()
    assert health["memory"]["ok"] is False
    assert health["memory"]["errors"] == 2
    assert health["memory"]["last_error"]["type"] == "PermissionError"
    assert "permission denied" in health["memory"]["last_error"]["message"]
    # The others went on, and memory kept its last good values.
    assert cpu_calls == 4 and sample["cpu"] is not None
    assert health["cpu"]["ok"] and health["process"]["ok"] and health["gpu"]["ok"]
    assert sample["mem_percent"] == good["mem_percent"]
    assert sample["mem_total"] == good["mem_total"]

    monkeypatch.undo()
    sampler.collect()
    health = sampler.collectors_health()
    assert health["memory"]["ok"] is True and health["memory"]["errors"] == 2


def test_collectors_health_names_every_collector() -> None:
    sampler = SystemSampler(clock=FakeClock(), gpu=no_gpu())
    health = sampler.collectors_health()
    assert set(health) == set(COLLECTORS)
    for state in health.values():
        assert {"ok", "errors", "last_error"} <= set(state)
    assert health["gpu"]["backend"] == "none"
    json.dumps(health)


def test_default_gpu_collector_is_created_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    sampler = SystemSampler(clock=FakeClock())
    assert sampler.collectors_health()["gpu"]["backend"] is None  # not started yet
    sampler.collect()
    assert sampler.collectors_health()["gpu"]["backend"] in ("nvml", "gputil", "none")
    sampler.close()


# -- the store ------------------------------------------------------------------------------------
def test_apply_builds_windowed_series_and_bumps_version() -> None:
    clock = FakeClock(1000.0)
    sampler = SystemSampler(clock=clock, interval=1.0, window=10.0, gpu=no_gpu())
    assert sampler.snapshot()["latest"] is None
    for i in range(30):
        clock.advance(1.0)
        sampler.apply(sample_event(fake_sample(clock(), value=float(i))))
    assert sampler.version == 30
    snap = sampler.snapshot()
    series = snap["series"]
    assert set(series) == SERIES_KEYS
    assert series["ts"][-1] == clock() and series["ts"][0] >= clock() - 10.0
    assert len(series["ts"]) == 11
    assert series["cpu"][-1] == 29.0
    assert all(len(series[k]) == 11 for k in ("cpu", "mem_percent", "rss", "threads"))
    assert [len(core) for core in series["per_core"]] == [11, 11]
    assert snap["latest"]["cpu"] == 29.0
    assert snap["interval"] == 1.0 and snap["now"] == clock()


def test_tick_ages_the_series_when_sampling_stops() -> None:
    clock = FakeClock(1000.0)
    sampler = SystemSampler(clock=clock, window=10.0, gpu=no_gpu())
    for _ in range(5):
        clock.advance(1.0)
        sampler.apply(sample_event(fake_sample(clock())))
    version = sampler.version
    sampler.tick(clock.advance(8.0))  # now 1013: keeps 1003..1005
    assert sampler.snapshot()["series"]["ts"] == [1003.0, 1004.0, 1005.0]
    assert sampler.version == version + 1
    sampler.tick(clock.advance(100.0))
    assert sampler.snapshot()["series"]["ts"] == []
    sampler.tick(clock())
    assert sampler.version == version + 2  # nothing trimmed: no change


def test_bad_sample_data_is_ignored_and_counted() -> None:
    sampler = SystemSampler(clock=FakeClock(), gpu=no_gpu())
    sampler.apply(sample_event(fake_sample(100.0)))
    sampler.apply(sample_event({"cpu": "12%", "mem_percent": [1], "per_core": "x"}, ts=101.0))
    sampler.apply(sample_event({}, ts=102.0))
    sampler.apply(sample_event(fake_sample(50.0)))  # older than the newest point
    sample = fake_sample(103.0)
    sample["rss"] = True  # a bool is not a number
    sample["gpus"] = [{"index": "a", "load": "hot", "name": 7}, "nope"]
    sampler.apply(sample_event(sample))
    snap = sampler.snapshot()
    assert snap["rejected"]["samples"] == 3
    assert snap["rejected"]["fields"] == 3 + 1 + 4  # cpu/mem/per_core; rss; index/load/name/"nope"
    assert snap["series"]["ts"] == [100.0, 103.0]
    assert snap["series"]["rss"] == [120_000_000, None]
    assert snap["latest"]["gpus"] == [
        {
            "index": 0,
            "name": "GPU 0",
            "load": None,
            "mem_used": None,
            "mem_total": None,
            "temperature": None,
        }
    ]
    json.dumps(snap, allow_nan=False)


def test_a_bogus_future_point_does_not_block_the_series() -> None:
    sampler = SystemSampler(clock=FakeClock(), window=60.0, gpu=no_gpu())
    sampler.apply(sample_event(fake_sample(1000.0)))
    sampler.apply(sample_event(fake_sample(1e17)))  # garbage from a transport
    sampler.apply(sample_event(fake_sample(1001.0)))  # more than a window back: start over
    sampler.apply(sample_event(fake_sample(1002.0)))
    sampler.apply(sample_event(fake_sample(1001.5)))  # merely late: rejected
    sampler.apply(sample_event(fake_sample(1e300), ts=1003.0))  # absurd: the event's ts is used
    snap = sampler.snapshot()
    assert snap["series"]["ts"] == [1001.0, 1002.0, 1003.0]
    assert snap["rejected"] == {"samples": 1, "fields": 1}


def test_absurd_magnitudes_are_bad_fields() -> None:
    sampler = SystemSampler(clock=FakeClock(), gpu=no_gpu())
    data = fake_sample(10.0, gpus=1)
    data["rss"] = 10**300
    data["gpus"][0].update(index=10**30, mem_used=1e300, mem_total=1e-300)
    sampler.apply(sample_event(data))
    snap = sampler.snapshot()
    assert snap["latest"]["rss"] is None and snap["latest"]["gpus"][0]["index"] == 0
    assert snap["series"]["gpu_mem_percent"] == [[None]]
    assert snap["rejected"]["fields"] == 3
    json.dumps(snap, allow_nan=False)


def test_sample_ts_defaults_to_the_event_ts() -> None:
    sampler = SystemSampler(clock=FakeClock(), gpu=no_gpu())
    data = fake_sample(0.0)
    del data["ts"]
    sampler.apply(sample_event(data, ts=77.0))
    assert sampler.snapshot()["series"]["ts"] == [77.0]


def test_interval_and_window_are_validated() -> None:
    for interval, window in ((0, 10), (-1, 10), (10, 5)):
        with pytest.raises(ValueError):
            SystemSampler(interval=interval, window=window, gpu=no_gpu())


def test_hub_round_trip_through_a_published_event() -> None:
    """What the hub's sampler does: collect, publish as an event, apply."""
    clock = FakeClock()
    sampler = SystemSampler(clock=clock, gpu=no_gpu())
    for _ in range(3):
        clock.advance(1.0)
        sampler.apply(Event.create("system.sample", data=sampler.collect(), clock=clock))
    snap = sampler.snapshot()
    assert snap["series"]["ts"] == [clock() - 2, clock() - 1, clock()]
    assert None not in snap["series"]["cpu"] and None not in snap["series"]["rss"]
    assert snap["rejected"] == {"samples": 0, "fields": 0}
    assert snap["latest"]["mem_total"] == psutil.virtual_memory().total


# -- snapshot size --------------------------------------------------------------------------------
def fill(sampler: SystemSampler, clock: FakeClock, n: int, cores: int, gpus: int) -> None:
    for _ in range(n):
        clock.advance(sampler.interval)
        # Worst-case widths: 100.0 percentages, long timestamps, big byte counts.
        sample = fake_sample(clock() + 0.123, cores=cores, gpus=gpus, value=100.0)
        sample["rss"] = 123_456_789_012
        sample["threads"] = 12345
        for g in sample["gpus"]:
            g["temperature"] = 100.5
        sampler.apply(sample_event(sample))


@pytest.mark.parametrize(
    ("cores", "gpus", "interval"),
    [(2, 0, 1.0), (64, 0, 1.0), (64, 8, 1.0), (256, 16, 1.0), (8, 1, 0.1)],
)
def test_snapshot_fits_in_64kb(cores: int, gpus: int, interval: float) -> None:
    clock = FakeClock(1_732_500_000.0)
    sampler = SystemSampler(clock=clock, interval=interval, gpu=no_gpu())
    fill(sampler, clock, int(sampler.window / interval) + 50, cores, gpus)
    start = time.perf_counter()
    snap = sampler.snapshot()
    elapsed = time.perf_counter() - start
    text = json.dumps(snap, allow_nan=False)
    series = snap["series"]
    step = snap["per_core_step"]
    print(
        f"\n{cores} cores, {gpus} GPUs, interval {interval}: {len(text) / 1000:.1f} KB, "
        f"{len(series['ts'])} points, per-core step {step}, built in {elapsed * 1000:.1f} ms"
    )
    assert len(text) <= SNAPSHOT_LIMIT
    assert len(series["ts"]) <= MAX_POINTS
    assert len(series["per_core"]) == cores and len(series["gpu_load"]) == gpus
    # per_core_step semantics: per_core[c] is sampled at ts[(len(ts) - 1) % step :: step].
    assert len(series["per_core"][0]) == len(series["ts"][(len(series["ts"]) - 1) % step :: step])
    if (cores, gpus, interval) == (2, 0, 1.0):
        assert len(series["ts"]) == MAX_POINTS and step == 1  # small machines keep everything
    # The newest point is always there.
    assert series["ts"][-1] == round(clock() + 0.123, 3)


def test_snapshot_is_cached_per_version_but_now_moves() -> None:
    clock = FakeClock(100.0)
    sampler = SystemSampler(clock=clock, gpu=no_gpu())
    sampler.apply(sample_event(fake_sample(100.0)))
    first = sampler.snapshot()
    clock.advance(0.5)
    second = sampler.snapshot()
    assert second["now"] == 100.5 and second["series"] is first["series"]
    sampler.apply(sample_event(fake_sample(101.0)))
    assert sampler.snapshot()["series"] is not first["series"]


numbers = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
)
anything = st.recursive(
    numbers, lambda c: st.lists(c, max_size=5) | st.dictionaries(st.text(max_size=5), c, max_size=5)
)
sample_data = st.dictionaries(
    st.sampled_from(sorted(LATEST_KEYS)) | st.text(max_size=6),
    st.one_of(
        anything,
        st.lists(numbers, max_size=70),
        st.lists(
            st.dictionaries(
                st.sampled_from(["index", "name", "load", "mem_used", "mem_total", "temperature"]),
                numbers,
            ),
            max_size=4,
        ),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(data=sample_data, ts=st.floats(0, 1e10))
def test_property_any_sample_data_never_raises(data: dict[str, Any], ts: float) -> None:
    sampler = SystemSampler(clock=FakeClock(), gpu=no_gpu())
    sampler.apply(sample_event(fake_sample(1.0)))
    sampler.apply(sample_event(data, ts=ts))
    sampler.tick(ts)
    snap = sampler.snapshot()
    assert len(json.dumps(snap, allow_nan=False)) <= SNAPSHOT_LIMIT
