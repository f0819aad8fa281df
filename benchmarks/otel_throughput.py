"""OTLP throughput: exporter processes → one Hub's OTLP receiver (HTTP or gRPC).

``otlp_throughput()`` starts one Hub reading ``otlp://`` or ``otlp+grpc://`` on a free loopback
port, and ``exporters`` processes that each build ``per_exporter`` spans with the real
OpenTelemetry SDK (traces of 8 spans: an agent, LLM calls with tokens, a tool, an HTTP call),
then, on a common signal, export them with the SDK's real OTLP exporter in batches of 512 (its
``BatchSpanProcessor`` default), paced at ``rate`` spans/s each or flat out. Spans are built
before the clock starts, so what is measured is export, transport, decoding, correlation and
the stores, not the exporters' own tracing.

It returns the rate at which spans were applied to the Hub (from the first export call to the
last span applied) and the lag from the export call of a span's batch to the moment its event was
applied, over every span.

Run alone: ``python -m benchmarks.otel_throughput [--kind grpc] [--rate 0]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ._report import percentile, start_together

TARGET_RATE = 20_000.0
"""Spans/s into one Hub that the OpenTelemetry issue promises."""
TARGET_LAG_P95_MS = 1_000
BATCH = 512
SPANS_PER_TRACE = 8
DONE_TOPICS = ("span.ended", "agent.task.completed", "agent.task.failed")


# -- the exporter process --------------------------------------------------------------------
def _build_spans(n: int, prefix: str) -> list[Any]:
    """``n`` ended spans (traces of 8), as the SDK hands them to an exporter."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    tp = TracerProvider(resource=Resource.create({"service.name": f"bench-{prefix}"}))
    tp.add_span_processor(SimpleSpanProcessor(memory))
    tracer = tp.get_tracer("benchmarks.otel")
    chat: dict[str, Any] = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06", "gen_ai.usage.input_tokens": 812,
            "gen_ai.usage.output_tokens": 240, "server.address": "api.example.com"}  # fmt: skip
    for i in range(n // SPANS_PER_TRACE):
        agent = f"{prefix}_agent_{i % 4}"
        attrs = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent}
        with tracer.start_as_current_span(f"invoke_agent {agent}", attributes=attrs):
            for _ in range(3):
                with tracer.start_as_current_span("chat gpt-4o", attributes=chat):
                    pass
            tool = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}
            with (
                tracer.start_as_current_span("execute_tool search", attributes=tool),
                tracer.start_as_current_span("GET /search", attributes={"http.method": "GET"}),
            ):
                pass
            with tracer.start_as_current_span("chat gpt-4o", attributes=chat):
                pass
            with tracer.start_as_current_span("parse", attributes={"step": i}):
                pass
    return list(memory.get_finished_spans())


def _exporter(kind: str, endpoint: str) -> Any:
    if kind == "http":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=endpoint, timeout=60)
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc

    return Grpc(endpoint=endpoint, insecure=True, timeout=60)


def _sender(kind: str, endpoint: str) -> Any:
    """The exporters' transport alone, for requests the SDK's own encoder built beforehand:
    ``requests`` for OTLP/HTTP (as the HTTP exporter), the generated TraceService stub for gRPC."""
    if kind == "http":
        import requests

        session = requests.Session()
        headers = {"Content-Type": "application/x-protobuf"}

        def post(request: Any) -> bool:
            return bool(session.post(endpoint, data=request, headers=headers, timeout=60).ok)

        return post
    import grpc
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

    stub = TraceServiceStub(grpc.insecure_channel(endpoint))

    def call(request: Any) -> bool:
        stub.Export(request, timeout=60)
        return True

    return call


def _worker(kind: str, endpoint: str, n: int, rate: float, prefix: str, out: str) -> int:
    pre = kind.endswith("-pre")
    kind = kind.removesuffix("-pre")
    spans = _build_spans(n, prefix)
    batches_in = [spans[i : i + BATCH] for i in range(0, len(spans), BATCH)]
    requests_in: list[Any]
    if pre:
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        requests_in = [encode_spans(b) for b in batches_in]
        if kind == "http":
            requests_in = [r.SerializeToString() for r in requests_in]
        send = _sender(kind, endpoint)
    else:
        exporter = _exporter(kind, endpoint)

        def send(batch: Any) -> bool:
            return bool(exporter.export(batch).name == "SUCCESS")

        requests_in = batches_in
    print("ready", flush=True)
    sys.stdin.readline()  # the common start signal
    batches: list[tuple[float, list[str]]] = []
    failures = 0
    start = time.monotonic()
    for i, (batch, request) in enumerate(zip(batches_in, requests_in, strict=True)):
        if rate:
            ahead = start + i * BATCH / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        sent = time.time()
        while not send(request):  # the SDK exporter retried already; count and go on
            failures += 1
            if failures > 20:
                break
        batches.append((sent, [format(s.context.span_id, "016x") for s in batch]))
    if not pre:
        exporter.shutdown()
    # The hub's process reads the summary at once and the span ids (for the lags) only once
    # every span was applied: parsing them would take its GIL from the hub under test.
    Path(out + ".batches").write_text(json.dumps(batches))
    sent_spans = sum(len(ids) for _, ids in batches)
    Path(out).write_text(json.dumps({"spans": sent_spans, "failures": failures}))
    return 0


# -- the hub ---------------------------------------------------------------------------------
class _LiveHub:
    """A Hub with one OTLP source on an asyncio loop in a background thread, recording when
    each span's event was applied."""

    def __init__(self, url: str) -> None:
        from codeur_widgets.core.hub import Hub

        self.hub = Hub(collect_system=False, topology="empty", sources=[url])
        self.applied: dict[str | None, float] = {}
        applied, now = self.applied, time.time

        def record(event: Any) -> None:
            applied[event.span_id] = now()

        for topic in DONE_TOPICS:
            self.hub.bus.subscribe(topic, record)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def call(self, fn: Any) -> Any:
        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(30)

    def __enter__(self) -> _LiveHub:
        self.thread.start()
        self.call(self.hub.start)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.hub.aclose(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def _worker_cpu(source: Any) -> float:
    """CPU seconds of the receiver's decode worker process so far (0: none ran)."""
    import psutil

    decoder = getattr(source, "_decoder", None)
    pid = decoder.pid if decoder is not None else None
    if pid is None:
        return 0.0
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


def otlp_throughput(
    kind: str = "http",
    exporters: int = 4,
    per_exporter: int = 50_000,
    rate: float | None = 5_500.0,
    timeout: float = 240.0,
    preencode: bool = False,
) -> dict[str, Any]:
    """Spans/s applied to one Hub from ``exporters`` processes over OTLP, and the lag.

    ``rate``: each exporter's offered spans/s (``None``: flat out). The default offers
    4 × 5,500 = 22,000 spans/s, just above the 20,000 target. ``preencode``: the exporters
    encode their requests with the SDK's encoder before the clock starts and only send them
    during it (the SDK's Python encoder costs about 40 µs a span, so four of them encoding
    22,000 spans/s take most of a core of the two this machine has; with ``preencode`` the
    run measures the Hub). Returns ``spans_per_s``,
    ``lag_p50_ms``, ``lag_p95_ms``, ``lag_p99_ms``, ``lag_max_ms``, ``spans``, ``expected``,
    ``offered_per_s``, ``rejected`` and the receiver's ``health``.
    """
    scheme = "otlp" if kind == "http" else "otlp+grpc"
    with _LiveHub(f"{scheme}://127.0.0.1:0") as live, tempfile.TemporaryDirectory() as tmp:
        source: Any = live.hub.sources[0]
        port = source.port
        endpoint = f"http://127.0.0.1:{port}/v1/traces" if kind == "http" else f"127.0.0.1:{port}"
        outs = [os.path.join(tmp, f"w{i}.json") for i in range(exporters)]
        procs = []
        for i in range(exporters):
            argv = [sys.executable, "-m", "benchmarks.otel_throughput", "--worker",
                    f"{kind}-pre" if preencode else kind, endpoint, str(per_exporter),
                    str(rate or 0), f"w{i}", outs[i]]  # fmt: skip
            procs.append(
                subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            )
        try:
            start_together(procs, "an exporter")
            for p in procs:
                p.wait(timeout)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
        failures = expected = 0
        for out in outs:
            report = json.loads(Path(out).read_text())
            failures += report["failures"]
            expected += report["spans"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(live.applied) < expected:
            time.sleep(0.05)
        health = live.call(source.health)
        worker_cpu = _worker_cpu(source)
        applied = dict(live.applied)
        sent: dict[str, float] = {}
        for out in outs:
            for t, ids in json.loads(Path(out + ".batches").read_text()):
                for sid in ids:
                    sent[sid] = t
    lags = [(applied[s] - t) * 1000.0 for s, t in sent.items() if s in applied]
    first = min(sent.values()) if sent else 0.0
    last = max(applied.values()) if applied else first
    elapsed = max(1e-9, last - first)
    return {
        "kind": kind,
        "preencode": preencode,
        "spans": len(lags),
        "expected": expected,
        "spans_per_s": len(lags) / elapsed,
        "offered_per_s": (rate or 0) * exporters,
        "lag_p50_ms": round(percentile(lags, 50)),
        "lag_p95_ms": round(percentile(lags, 95)),
        "lag_p99_ms": round(percentile(lags, 99)),
        "lag_max_ms": round(max(lags, default=0.0)),
        "export_failures": failures,
        "decode_worker_cpu_s": worker_cpu,
        "rejected": health.get("rejected_spans", 0) + health.get("overloaded", 0),
        "health": health,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.otel_throughput")
    parser.add_argument("--worker", nargs=6, metavar="ARG", help=argparse.SUPPRESS)
    parser.add_argument("--kind", default="http", choices=["http", "grpc"])
    parser.add_argument("--per", type=int, default=50_000)
    parser.add_argument("--rate", type=float, default=5_500.0, help="per exporter; 0: flat out")
    parser.add_argument("--pre", action="store_true", help="encode before the clock starts")
    args = parser.parse_args(argv)
    if args.worker:
        kind, endpoint, n, rate, prefix, out = args.worker
        return _worker(kind, endpoint, int(n), float(rate), prefix, out)
    result = otlp_throughput(
        args.kind, per_exporter=args.per, rate=args.rate or None, preencode=args.pre
    )
    result.pop("health")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
