"""Building OTLP requests by hand and running a hub with a receiver on a background loop."""

from __future__ import annotations

import asyncio
import http.client
import itertools
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from codeur_widgets.core.hub import Hub

from .helpers import Recorder

_ids = itertools.count(1)
NOW_NS = int(time.time() * 1e9)


def kv(key: str, value: Any) -> Any:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    if isinstance(value, bool):
        any_value = AnyValue(bool_value=value)
    elif isinstance(value, int):
        any_value = AnyValue(int_value=value)
    elif isinstance(value, float):
        any_value = AnyValue(double_value=value)
    else:
        any_value = AnyValue(string_value=str(value))
    return KeyValue(key=key, value=any_value)


def pb_span(name: str, attrs: dict[str, Any], *, trace: bytes | None = None,
            parent: bytes = b"", start: int = NOW_NS, end: int | None = None,
            status: int = 0, span_id: bytes | None = None) -> Any:  # fmt: skip
    from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

    return Span(
        trace_id=trace or os.urandom(16),
        span_id=span_id or next(_ids).to_bytes(8, "big"),
        parent_span_id=parent,
        name=name,
        start_time_unix_nano=start,
        end_time_unix_nano=end if end is not None else start + 1_000_000,
        attributes=[kv(k, v) for k, v in attrs.items()],
        status=Status(code=status),
    )


def request(*spans: Any, service: str = "svc") -> Any:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans

    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=[kv("service.name", service)]),
                scope_spans=[ScopeSpans(spans=list(spans))],
            )
        ]
    )


def agent_span(name: str, **kw: Any) -> Any:
    attrs = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": name}
    return pb_span(f"invoke_agent {name}", attrs, **kw)


class LiveHub:
    """A hub with one source, running on an asyncio loop in a background thread."""

    def __init__(self, url: str) -> None:
        self.hub = Hub(collect_system=False, topology="empty", sources=[url])
        self.rec = Recorder(self.hub)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> LiveHub:
        self.thread.start()

        async def start() -> None:
            self.hub.start()

        asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        return self

    @property
    def source(self) -> Any:
        return self.hub.sources[0]

    @property
    def port(self) -> int:
        return int(self.source.port)

    def health(self) -> dict[str, Any]:
        return dict(self.source.health())

    def call(self, fn: Any) -> Any:
        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def settle(self, predicate: Any = None, timeout: float = 10.0) -> None:
        """Wait until the pipeline is drained (and ``predicate()`` holds, if given)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            idle = self.call(lambda: self.source.pipeline.backlog() == 0)
            if idle and (predicate is None or self.call(predicate)):
                return
            time.sleep(0.02)

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.hub.aclose(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@contextmanager
def live(url: str) -> Iterator[LiveHub]:
    with LiveHub(url) as h:
        yield h


def post(
    port: int, body: bytes, path: str = "/v1/traces", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP POST on a fresh connection; (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    hdrs = {"Content-Type": "application/x-protobuf"}
    hdrs.update({k.replace("_", "-"): v for k, v in headers.items()})
    try:
        conn.request("POST", path, body=body, headers=hdrs)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()
