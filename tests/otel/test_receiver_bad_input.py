"""Hostile input on the OTLP receivers: each answer is the one the OTLP specification asks for,
each is counted in health, the receiver goes on, and nothing valid sent alongside is lost."""

from __future__ import annotations

import gzip
import json
import math
import os
import random
import zlib
from typing import Any

import pytest

from .helpers import has
from .receiver_helpers import NOW_NS, agent_span, live, pb_span, post, request

pytestmark = pytest.mark.usefixtures("otel_sdk")

MAX_BODY = 1 << 20  # 1 MiB for these tests (the default is 8 MiB)


def ok_request(name: str) -> bytes:
    return request(agent_span(name)).SerializeToString()


def partial(body: bytes) -> tuple[int, str]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    response = ExportTraceServiceResponse.FromString(body)
    return response.partial_success.rejected_spans, response.partial_success.error_message


def gzip_bomb(size: int) -> bytes:
    """``size`` zero bytes, gzip-compressed (a few KB per 10 MB), built in chunks."""
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = bytes(1 << 20)
    out = [c.compress(chunk) for _ in range(size >> 20)]
    out.append(c.flush())
    return b"".join(out)


def test_http_hostile_requests_get_the_right_answers() -> None:
    with live(f"otlp://127.0.0.1:0?max_body={MAX_BODY}") as h:
        port = h.port
        rng = random.Random(16)
        sent_ok: list[str] = []

        def valid(tag: str) -> None:
            status, _, body = post(port, ok_request(tag))
            assert status == 200 and partial(body) == (0, "")
            sent_ok.append(tag)

        valid("before")
        # random bytes and a truncated protobuf: 400 with a google.rpc.Status body
        for _ in range(5):
            garbage = bytes([0xFF, 0xFF]) + rng.randbytes(rng.randint(10, 5000))
            assert post(port, garbage)[0] == 400
        whole = request(*(agent_span(f"t{i}") for i in range(20))).SerializeToString()
        status, headers, body = post(port, whole[: len(whole) // 2])
        assert status == 400 and headers["Content-Type"] == "application/x-protobuf"
        assert b"undecodable" in body
        valid("between")
        # wrong content types and encodings: 415
        assert post(port, ok_request("x"), Content_Type="text/plain")[0] == 415
        assert post(port, ok_request("x"), Content_Type="application/grpc")[0] == 415
        assert post(port, ok_request("x"), Content_Encoding="br")[0] == 415
        # over the cap, as sent and once decompressed: 413
        assert post(port, os.urandom(10 * 1024 * 1024))[0] == 413
        bomb = gzip_bomb(64 << 20)
        assert len(bomb) < MAX_BODY
        assert post(port, bomb, Content_Encoding="gzip")[0] == 413
        assert post(port, b"\x1f\x8bnot gzip", Content_Encoding="gzip")[0] == 400
        # other paths and methods
        assert post(port, ok_request("x"), path="/v1/metrics")[0] == 404
        valid("after")
        h.settle(lambda: len(h.rec.topic("agent.task.completed")) == 3)
        health = h.health()
        assert health["bad_requests"] == 7
        assert health["unsupported"] == 3
        assert health["too_large"] == 2
        assert health["not_found"] == 1
        assert health["errors"] == 0
        cards = {n for n in h.hub.agents.names()}
        assert cards == set(sent_ok), "valid requests around the bad ones all landed"


def test_http_bad_spans_are_rejected_alone_with_partial_success() -> None:
    with live("otlp://127.0.0.1:0") as h:
        good = agent_span("good_agent")
        marker = "X" * 12
        bad = agent_span("bad_agent")
        bad.attributes.append(pb_span("x", {"note": marker}).attributes[0])
        nan = pb_span("chat", {"gen_ai.operation.name": "chat", "gen_ai.agent.name": "good_agent",
                               "gen_ai.usage.input_tokens": 5, "score": math.nan,
                               "gen_ai.usage.output_tokens": math.nan})  # fmt: skip
        wide = agent_span("wide_agent")
        wide.attributes.extend(pb_span("x", {f"k{i}": i for i in range(10_000)}).attributes)
        backwards = agent_span("backwards_agent", start=NOW_NS, end=NOW_NS - 5_000_000_000)
        no_ids = pb_span("nameless", {}, trace=bytes(16))
        body = request(good, bad, nan, wide, backwards, no_ids).SerializeToString()
        # invalid UTF-8 in one span's attribute: protobuf refuses the whole message
        body = body.replace(marker.encode(), b"\xff\xfe" + b"X" * 10)
        status, _, answer = post(port := h.port, body)
        assert status == 200
        rejected, reason = partial(answer)
        assert rejected == 2 and reason
        h.settle(lambda: len(h.rec.topic("agent.task.completed")) == 3)
        assert set(h.hub.agents.names()) == {"good_agent", "wide_agent", "backwards_agent"}
        chat = h.rec.spans(kind="llm")[0]
        assert chat.data["prompt_tokens"] == 5 and chat.data["completion_tokens"] == 0
        assert chat.data["attributes"]["score"] == "nan"
        done = {e.agent: e for e in h.rec.topic("agent.task.completed")}
        assert done["backwards_agent"].data["duration"] == 0.0
        assert len(done["wide_agent"].data["attributes"]) <= 32
        health = h.health()
        assert health["rejected_spans"] == 2 and health["repaired"] == 1
        # 10,000 attributes: past 1,024 not even read, past 32 not kept; all counted
        assert health["unread_attributes"] == 10_002 - 1_024
        assert health["unread_attributes"] + health["dropped_attributes"] > 9_900
        assert post(port, ok_request("still_here"))[0] == 200


def test_http_json_bodies_and_compression() -> None:
    with live("otlp://127.0.0.1:0") as h:
        trace = os.urandom(16).hex()
        doc = {
            "resourceSpans": [{
                "resource": {"attributes": [{"key": "service.name",
                                             "value": {"stringValue": "js"}}]},
                "scopeSpans": [{"scope": {"name": "js"}, "spans": [
                    {"traceId": trace, "spanId": "00000000000000a1", "name": "invoke_agent json",
                     "startTimeUnixNano": str(NOW_NS), "endTimeUnixNano": str(NOW_NS + 10**6),
                     "attributes": [
                         {"key": "gen_ai.operation.name", "value": {"stringValue": "invoke_agent"}},
                         {"key": "gen_ai.agent.name", "value": {"stringValue": "json_agent"}}]},
                    {"traceId": trace, "spanId": "00000000000000a2",
                     "parentSpanId": "00000000000000a1", "name": "chat",
                     "startTimeUnixNano": NOW_NS, "endTimeUnixNano": NOW_NS + 10**5,
                     "status": {"code": 2, "message": "overloaded"},
                     "attributes": [
                         {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                         {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "42"}},
                         {"key": "gen_ai.usage.output_tokens", "value": {"intValue": 8}}]},
                    {"traceId": "zz", "spanId": "00000000000000a3", "name": "bad id"},
                ]}],
            }]
        }  # fmt: skip
        raw = json.dumps(doc).encode()
        port = h.port
        status, headers, body = post(port, gzip.compress(raw), Content_Type="application/json",
                                     Content_Encoding="gzip")  # fmt: skip
        assert status == 200 and headers["Content-Type"] == "application/json"
        assert json.loads(body) == {
            "partialSuccess": {"rejectedSpans": 1, "errorMessage": json.loads(body)[
                "partialSuccess"]["errorMessage"]}
        }  # fmt: skip
        status, _, body = post(port, b"{not json", Content_Type="application/json")
        assert status == 400 and json.loads(body)["code"] == 3
        assert (
            post(port, zlib.compress(ok_request("zlib_agent")), Content_Encoding="deflate")[0]
            == 200
        )
        raw_deflate = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        body = raw_deflate.compress(ok_request("raw_deflate_agent")) + raw_deflate.flush()
        assert post(port, body, Content_Encoding="deflate")[0] == 200
        h.settle(lambda: len(h.rec.topic("agent.task.completed")) == 3)
        assert h.rec.tokens() == {"json_agent": (42, 8)}
        assert h.rec.spans(kind="llm")[0].data["error"] == "overloaded"
        assert set(h.hub.agents.names()) == {"json_agent", "zlib_agent", "raw_deflate_agent"}


def test_http_token_is_required_and_never_shown() -> None:
    token = "tok-Zq81-secret"
    with live(f"otlp://127.0.0.1:0?token={token}") as h:
        port = h.port
        status, headers, _ = post(port, ok_request("a"))
        assert status == 401 and "Bearer" in headers["WWW-Authenticate"]
        assert post(port, ok_request("a"), Authorization="Bearer wrong")[0] == 401
        assert post(port, ok_request("a"), Authorization=f"Bearer {token}")[0] == 200
        health = h.health()
        assert health["unauthorized"] == 2
        shown = json.dumps(h.call(h.hub.health)) + repr(h.source) + h.source.url
        assert token not in shown


def test_http_logs_reach_the_log_tail() -> None:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue
    from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource

    from .receiver_helpers import kv

    logs = ExportLogsServiceRequest(resource_logs=[ResourceLogs(
        resource=Resource(attributes=[kv("service.name", "billing")]),
        scope_logs=[ScopeLogs(log_records=[
            LogRecord(time_unix_nano=NOW_NS, severity_number=17,
                      body=AnyValue(string_value="boom")),
            LogRecord(time_unix_nano=NOW_NS, severity_text="info",
                      body=AnyValue(string_value="hello"),
                      attributes=[kv("gen_ai.agent.name", "coder")]),
        ])],
    )])  # fmt: skip
    with live("otlp://127.0.0.1:0") as h:
        assert post(h.port, logs.SerializeToString(), path="/v1/logs")[0] == 200
        h.settle(lambda: len(h.rec.topic("log")) == 2)
        lines = [(e.agent, e.data["level"], e.data["message"]) for e in h.rec.topic("log")]
        assert lines == [("billing", "ERROR", "boom"), ("coder", "INFO", "hello")]
        assert h.health()["logs"] == 2


def log_request(message: str) -> bytes:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue
    from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs

    record = LogRecord(time_unix_nano=NOW_NS, severity_text="WARN",
                       body=AnyValue(string_value=message))  # fmt: skip
    request = ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=[record])])]
    )
    return request.SerializeToString()


@pytest.fixture
def grpc_module(require: Any) -> Any:
    require("grpcio", has("grpc"), "pip install grpcio")
    import grpc

    return grpc


def test_grpc_status_codes(grpc_module: Any) -> None:
    grpc = grpc_module
    token = "grpc-t0ken"
    with live(f"otlp+grpc://127.0.0.1:0?max_body={MAX_BODY}&token={token}") as h:
        channel = grpc.insecure_channel(f"127.0.0.1:{h.port}")
        export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        auth = (("authorization", f"Bearer {token}"),)

        def code(body: bytes, metadata: Any = auth, **kw: Any) -> Any:
            try:
                export(body, metadata=metadata, timeout=30, **kw)
            except grpc.RpcError as exc:
                return exc.code()
            return grpc.StatusCode.OK

        assert code(ok_request("g1")) == grpc.StatusCode.OK
        assert code(ok_request("g1"), metadata=()) == grpc.StatusCode.UNAUTHENTICATED
        assert code(b"\xff\xff" + os.urandom(300)) == grpc.StatusCode.INVALID_ARGUMENT
        whole = request(*(agent_span(f"t{i}") for i in range(20))).SerializeToString()
        assert code(whole[: len(whole) // 2]) == grpc.StatusCode.INVALID_ARGUMENT
        assert code(os.urandom(2 * MAX_BODY)) == grpc.StatusCode.RESOURCE_EXHAUSTED
        huge = request(pb_span("x", {"blob": "a" * (4 * MAX_BODY)})).SerializeToString()
        assert code(huge, compression=grpc.Compression.Gzip) == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert code(ok_request("g2"), compression=grpc.Compression.Gzip) == grpc.StatusCode.OK
        logs = channel.unary_unary("/opentelemetry.proto.collector.logs.v1.LogsService/Export")
        logs(log_request("over grpc"), metadata=auth, timeout=30)
        h.settle(lambda: len(h.rec.topic("agent.task.completed")) == 2 and h.rec.topic("log"))
        assert set(h.hub.agents.names()) == {"g1", "g2"}
        assert [e.data["message"] for e in h.rec.topic("log")] == ["over grpc"]
        health = h.health()
        assert health["unauthorized"] == 1 and health["bad_requests"] == 2
        assert token not in json.dumps(health) + repr(h.source)
        channel.close()
