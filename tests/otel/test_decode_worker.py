"""Large OTLP requests are decoded in a worker process (otel/decode_worker.py): the records must
be exactly those decoded in-process, bad bodies must fail alike, and a lost worker must cost no
valid request."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from codeur_widgets.otel.decode import DecodeFailed, decode_traces
from codeur_widgets.otel.decode_worker import WORKER_MIN_BYTES, DecodeWorker

from .receiver_helpers import agent_span, kv, live, pb_span, post, request

pytestmark = pytest.mark.usefixtures("otel_sdk")


def big_request(n: int = 400, *, error_every: int = 7) -> Any:
    """``n`` spans of every attribute type, exception events, errors and remote parents."""
    from opentelemetry.proto.common.v1.common_pb2 import (
        AnyValue,
        ArrayValue,
        KeyValue,
        KeyValueList,
    )
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    trace = os.urandom(16)
    root = agent_span("planner", trace=trace)
    spans = [root]
    for i in range(n - 1):
        attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                 "gen_ai.usage.input_tokens": 100 + i, "gen_ai.usage.output_tokens": i,
                 "temperature": 0.5, "stream": i % 2 == 0, "text": "é \u2028 <b>" * 3}  # fmt: skip
        s = pb_span(f"chat {i}", attrs, trace=trace, parent=root.span_id,
                    status=2 if i % error_every == 0 else 0)  # fmt: skip
        s.attributes.append(KeyValue(key="list", value=AnyValue(array_value=ArrayValue(
            values=[AnyValue(int_value=1), AnyValue(string_value="two")]))))  # fmt: skip
        s.attributes.append(KeyValue(key="kv", value=AnyValue(kvlist_value=KeyValueList(
            values=[kv("a", 1)]))))  # fmt: skip
        s.attributes.append(KeyValue(key="raw", value=AnyValue(bytes_value=b"\x00\xff")))
        if i % error_every == 0:
            raised = [kv("exception.type", "ValueError"), kv("exception.message", f"bad {i}")]
            s.events.append(
                Span.Event(name="exception", time_unix_nano=s.end_time_unix_nano, attributes=raised)
            )
        if i % 5 == 0:
            s.flags = 0x300  # the parent is remote
        spans.append(s)
    return request(*spans)


def otlp_json(message: Any) -> str:
    """OTLP/JSON of a request: protobuf's JSON mapping, with ids as hex (OTLP's rule)."""
    import base64
    import json

    from google.protobuf.json_format import MessageToDict

    doc = MessageToDict(message)
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for sp in ss["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in sp:
                        sp[key] = base64.b64decode(sp[key]).hex()
    return json.dumps(doc)


def fields(decoded: Any) -> list[tuple[Any, ...]]:
    return [
        (r.trace_id, r.span_id, r.parent_id, r.name, r.start, r.end, r.attributes,
         r.status_code, r.status_message,
         [(e.name, e.ts, e.attributes) for e in r.events], r.parent_remote, r.resource, r.scope)
        for r in decoded.records
    ]  # fmt: skip


@contextmanager
def running_worker(body: bytes) -> Iterator[DecodeWorker]:
    """A worker started by ``body`` (a large request), closed on the way out."""
    worker = started(DecodeWorker(), body)
    try:
        yield worker
    finally:
        worker.close()


def started(worker: DecodeWorker, body: bytes) -> DecodeWorker:
    """The first large body starts the worker (and is left to the caller); wait until it runs."""
    assert worker.try_decode(body, "proto") is None
    deadline = time.monotonic() + 30
    while worker._conn is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert worker._conn is not None, worker.last_error
    return worker


def test_a_large_request_decoded_by_the_worker_equals_the_in_process_decoding() -> None:
    body = big_request().SerializeToString()
    assert len(body) >= WORKER_MIN_BYTES
    with running_worker(body) as worker:
        decoded = worker.try_decode(body, "proto")
        assert decoded is not None and worker.in_worker == 1
        here = decode_traces(body, "proto")
        assert fields(decoded) == fields(here) and len(decoded.records) == 400
        assert (decoded.rejected, decoded.reason) == (here.rejected, here.reason)
        # JSON bodies too (OTLP/JSON: hex ids, camelCase keys)
        doc = otlp_json(big_request(200)).encode()
        assert len(doc) >= WORKER_MIN_BYTES
        in_worker = worker.try_decode(doc, "json")
        assert in_worker is not None and len(in_worker.records) == 200
        assert fields(in_worker) == fields(decode_traces(doc, "json"))


def test_bad_and_partly_bad_bodies_fail_alike_in_the_worker() -> None:
    good = big_request().SerializeToString()
    with running_worker(good) as worker:
        garbage = os.urandom(WORKER_MIN_BYTES + 1000)
        with pytest.raises(DecodeFailed) as in_process:
            decode_traces(garbage, "proto")
        with pytest.raises(DecodeFailed) as in_worker:
            worker.try_decode(garbage, "proto")
        assert str(in_worker.value) == str(in_process.value)
        # Invalid UTF-8 in one span's name: protobuf refuses the whole request, the decoder
        # salvages the other spans and rejects that one (partial success), in both places.
        marker = b"chat 17"
        assert marker in good
        broken = good.replace(marker, b"chat \xff7", 1)
        here = decode_traces(broken, "proto")
        there = worker.try_decode(broken, "proto")
        assert there is not None and here.rejected == there.rejected == 1
        assert fields(there) == fields(here) and len(here.records) == 399
        # A JSON escape of a lone surrogate decodes (replaced later by the mapping) but is no
        # msgpack text: the worker hands that request back to the caller.
        doc = otlp_json(big_request(200)).replace('"chat 3"', '"chat \\ud800"', 1)
        assert "\\ud800" in doc
        assert worker.try_decode(doc.encode(), "json") is None
        assert any("\ud800" in r.name for r in decode_traces(doc.encode(), "json").records)
        assert worker.try_decode(good, "proto") is not None  # and it goes on


def test_a_lost_worker_costs_no_valid_request_and_is_started_again() -> None:
    body = big_request().SerializeToString()
    with running_worker(body) as worker:
        worker._process.kill()
        worker._process.wait(5)
        # The caller decodes it (None), the loss is counted, a new worker is on its way.
        assert worker.try_decode(body, "proto") is None
        assert worker.deaths == 1
        started(worker, body)
        assert worker.try_decode(body, "proto") is not None
        assert worker.starts == 2
    assert worker._process is None and worker.try_decode(body, "proto") is None


def test_small_bodies_and_a_worker_that_cannot_start_stay_in_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from codeur_widgets.otel import decode_worker

    small = request(agent_span("solo")).SerializeToString()
    worker = DecodeWorker()
    assert worker.try_decode(small, "proto") is None and worker.starts == 0  # no process made

    def no_spawn() -> Any:
        raise OSError("no processes here")

    monkeypatch.setattr(decode_worker, "_spawn", no_spawn)
    body = big_request().SerializeToString()
    assert worker.try_decode(body, "proto") is None
    deadline = time.monotonic() + 10
    while worker.starts == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert worker._conn is None and "no processes here" in (worker.last_error or "")
    assert worker.try_decode(body, "proto") is None  # and the receiver decodes it itself
    worker.close()


def test_the_receiver_applies_large_requests_through_the_worker() -> None:
    with live("otlp://127.0.0.1:0") as h:
        bodies = [big_request(300).SerializeToString() for _ in range(6)]
        assert post(h.port, bodies[0])[0] == 200  # decoded here; it starts the worker
        deadline = time.monotonic() + 30
        while not h.hub.sources[0].health()["decode_worker"] and time.monotonic() < deadline:
            time.sleep(0.02)
        for body in bodies[1:]:
            assert post(h.port, body)[0] == 200
        h.settle()
        health = h.hub.sources[0].health()
        assert health["decoded_in_worker"] >= 1, health
        assert health["decoded_in_worker"] + health["decoded_in_process"] == 6
        assert health["spans"] == 6 * 300 and health["rejected_spans"] == 0
    with live("otlp://127.0.0.1:0?decode_process=0") as h:
        assert post(h.port, bodies[0])[0] == 200
        assert "decoded_in_worker" not in h.hub.sources[0].health()
