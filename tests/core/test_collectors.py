"""Custom collectors: hub.add_collector runs your function like a built-in collector (own thread,
deadline, errors counted and shown, last good values kept), stores its readings as events, and
reads Prometheus text endpoints."""

from __future__ import annotations

import asyncio
import http.server
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from codeur_widgets.core.collectors import MAX_METRICS, check_reading, prometheus
from codeur_widgets.core.hub import Hub
from codeur_widgets.widgets.dashboard import _brief


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "1 to 64 letters"),
        ("has space", "1 to 64 letters"),
        ("x" * 65, "1 to 64 letters"),
        (7, "1 to 64 letters"),
        ("gpu", "built-in"),
        ("cpu", "built-in"),
    ],
)
def test_names_are_validated(name: Any, reason: str) -> None:
    hub = Hub(collect_system=False)
    with pytest.raises(ValueError, match=reason):
        hub.add_collector(name, dict)
    hub.add_collector("vllm", dict)
    with pytest.raises(ValueError, match="already registered"):
        hub.add_collector("vllm", dict)
    with pytest.raises(TypeError, match="callable"):
        hub.add_collector("other", 42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="interval"):
        hub.add_collector("fast", dict, interval=0)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ("busy", "returned str, not a dict of numbers"),
        ([1, 2], "returned list, not a dict of numbers"),
        ({"x": math.nan}, "'x' is nan, not a finite number"),
        ({"x": math.inf}, "'x' is inf, not a finite number"),
        ({"x": "3"}, "'x' is str '3', not a number"),
        ({"x": True}, "'x' is bool True, not a number"),
        ({"x": None}, "'x' is NoneType None, not a number"),
        ({"": 1}, "metric name '' must be a string"),
        ({3: 1}, "metric name 3 must be a string"),
        ({"a\nb": 1}, "non-printable characters"),
        ({f"m{i}": i for i in range(MAX_METRICS + 1)}, "more than 64: return only"),
    ],
)
def test_bad_readings_are_refused_with_a_message_saying_why(values: Any, message: str) -> None:
    with pytest.raises((TypeError, ValueError)) as info:
        check_reading("vllm", values)
    assert message in str(info.value) and "'vllm'" in str(info.value)


def test_good_readings_accept_any_real_number() -> None:
    import numpy as np

    assert check_reading("q", {"a": 1, "b": 2.5, "c": np.float32(1.5), "d": np.int64(3)}) == {
        "a": 1.0, "b": 2.5, "c": 1.5, "d": 3.0,
    }  # fmt: skip


def test_readings_run_in_their_own_thread_and_become_events_in_history(tmp_path: Path) -> None:
    threads: list[str] = []

    def read() -> dict[str, float]:
        threads.append(threading.current_thread().name)
        return {"requests_running": 3, "kv_cache_pct": 41.5}

    async def areader() -> dict[str, float]:
        await asyncio.sleep(0.01)
        return {"depth": 7}

    async def main() -> None:
        hub = Hub(collect_system=False, history=tmp_path / "h.sqlite")
        hub.add_collector("vllm", read, interval=0.05)
        hub.start()
        hub.add_collector("queue", areader, interval=0.05)  # added while running
        await until(lambda: hub.custom.collectors["queue"].readings >= 2)
        await until(lambda: hub.custom.collectors["vllm"].readings >= 2)
        assert threads and all(t == "codeur_widgets.system[custom:vllm]" for t in threads)
        snap = hub.snapshot()["custom"]
        names = {(s["collector"], s["metric"]) for s in snap["series"]}
        assert names == {("vllm", "requests_running"), ("vllm", "kv_cache_pct"), ("queue", "depth")}
        assert snap["latest"]["vllm"]["values"] == {"requests_running": 3.0, "kv_cache_pct": 41.5}
        health = hub.health()["collectors"]
        assert health["vllm"]["ok"] and health["vllm"]["custom"] and health["vllm"]["errors"] == 0
        await hub.aclose()
        assert hub.history is not None and hub.history.flush(5)
        rows = hub.history.query(topic="metrics.custom")
        assert {r["data"]["collector"] for r in rows} == {"vllm", "queue"}
        # A hub opened on the file after a restart shows the series again.
        again = Hub(collect_system=False, history=tmp_path / "h.sqlite")
        assert {s["collector"] for s in again.custom.snapshot()["series"]} == {"vllm", "queue"}
        hub.history.close()
        assert again.history is not None
        again.history.close()

    run(main())


def test_errors_and_bad_values_are_counted_shown_and_keep_the_last_good_values() -> None:
    state = {"mode": "good"}

    def read() -> Any:
        mode = state["mode"]
        if mode == "raise":
            raise ConnectionError("model server down")
        if mode == "nan":
            return {"running": math.nan}
        return {"running": 3}

    async def main() -> None:
        hub = Hub(collect_system=False)
        hub.add_collector("vllm", read, interval=0.02)
        hub.start()
        collector = hub.custom.collectors["vllm"]
        await until(lambda: collector.readings >= 1)
        state["mode"] = "raise"
        await until(lambda: collector.health.errors >= 2)
        health = hub.health()["collectors"]["vllm"]
        assert not health["ok"] and health["last_error"]["type"] == "ConnectionError"
        assert "model server down" in _brief("collectors", hub.health()["collectors"])["vllm"]
        state["mode"] = "nan"
        await until(lambda: collector.health.last_error["type"] == "ValueError")
        assert "not a finite number" in collector.health.last_error["message"]
        # Last good values kept, nothing bad published, the hub itself never failed.
        assert hub.custom.latest["vllm"]["values"] == {"running": 3.0}
        assert hub.bus.handler_errors == 0 and hub.health()["task_restarts"] == {}
        state["mode"] = "good"
        await until(lambda: hub.health()["collectors"]["vllm"]["ok"])
        await hub.aclose()

    run(main())


def test_a_hanging_collector_times_out_is_skipped_and_never_piles_up_threads() -> None:
    release = threading.Event()

    def hang() -> dict[str, float]:
        release.wait(10)
        return {"x": 1}

    async def main() -> None:
        hub = Hub(collect_system=False)
        hub.add_collector("stuck", hang, interval=0.02, timeout=0.05)
        hub.add_collector("fine", lambda: {"y": 1}, interval=0.02)
        hub.start()
        collector = hub.custom.collectors["stuck"]
        await until(lambda: collector.health.skipped >= 3)
        health = hub.health()["collectors"]["stuck"]
        assert health["timeouts"] == 1 and health["stuck_s"] is not None
        assert "timed out" in _brief("collectors", hub.health()["collectors"])["stuck"]
        assert collector.worker.threads_started == 1
        assert hub.custom.collectors["fine"].readings >= 3  # the others carry on
        release.set()
        hub.remove_collector("stuck")
        assert "stuck" not in hub.health()["collectors"]
        await hub.aclose()

    run(main())


def test_the_store_refuses_malformed_readings_from_outside() -> None:
    hub = Hub(collect_system=False)
    for data in (
        {"collector": "ok", "values": {"a": 1}},
        {"collector": "bad name", "values": {"a": 1}},
        {"collector": "x", "values": {"a": "1"}},
        {"collector": "x", "values": [1]},
        {"values": {"a": 1}},
    ):
        hub.publish("metrics.custom", data=data)
    snap = hub.custom.snapshot()
    assert [(s["collector"], s["metric"]) for s in snap["series"]] == [("ok", "a")]
    assert snap["rejected"]["readings"] == 4


# -- Prometheus -------------------------------------------------------------------------------
METRICS_TEXT = """\
# HELP vllm:num_requests_running Number of requests currently running.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="llama"} 3.0
# HELP vllm:num_requests_waiting Number of requests waiting.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name="llama"} 1.0
# HELP vllm:prompt_tokens_total Prompt tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{model_name="llama"} 1234.0
# HELP vllm:e2e_request_latency_seconds Latency.
# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_bucket{le="1.0",model_name="llama"} 4.0
vllm:e2e_request_latency_seconds_bucket{le="+Inf",model_name="llama"} 5.0
vllm:e2e_request_latency_seconds_sum{model_name="llama"} 6.5
vllm:e2e_request_latency_seconds_count{model_name="llama"} 5.0
# TYPE idle_gauge gauge
idle_gauge NaN
"""


@pytest.fixture
def metrics_url() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = METRICS_TEXT.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()
        server.server_close()


def test_prometheus_reads_gauges_counters_and_histogram_totals(metrics_url: str) -> None:
    read = prometheus(metrics_url)
    assert read() == {
        "vllm:num_requests_running{model_name=llama}": 3.0,
        "vllm:num_requests_waiting{model_name=llama}": 1.0,
        "vllm:prompt_tokens_total{model_name=llama}": 1234.0,
        "vllm:e2e_request_latency_seconds_sum{model_name=llama}": 6.5,
        "vllm:e2e_request_latency_seconds_count{model_name=llama}": 5.0,
    }  # buckets and the NaN gauge left out
    picked = prometheus(metrics_url, metrics=["vllm:num_requests_running"])
    assert picked() == {"vllm:num_requests_running{model_name=llama}": 3.0}
    with pytest.raises(ValueError, match="http"):
        prometheus("file:///etc/passwd")


def test_prometheus_collector_on_a_hub(metrics_url: str) -> None:
    async def main() -> None:
        hub = Hub(collect_system=False)
        hub.add_collector("vllm", prometheus(metrics_url), interval=0.05)
        hub.start()
        await until(lambda: hub.custom.collectors["vllm"].readings >= 2)
        latest = hub.custom.latest["vllm"]["values"]
        assert latest["vllm:num_requests_running{model_name=llama}"] == 3.0
        await hub.aclose()

    run(main())
