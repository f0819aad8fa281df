"""OTLP requests (protobuf or JSON) → :class:`SpanRecord` and :class:`LogRecord`.

Hostile input is expected. A request that cannot be decoded as a whole raises
:class:`DecodeFailed` (the receivers answer 400 / INVALID_ARGUMENT). A request that is well
formed except for some spans (invalid UTF-8 in one span's attribute makes protobuf refuse the
whole message) is split at the wire level, and only the spans that cannot be decoded are
rejected: they are counted and reported in the response's ``partial_success``. Spans without a
valid trace or span id are rejected the same way. Attributes beyond :data:`MAX_SPAN_ATTRIBUTES`
per span are not read.

OTLP/JSON is not protobuf's JSON mapping: ids are hex, keys lowerCamelCase (snake_case is
accepted too), 64-bit integers may be strings, enums are integers.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterator
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from .records import LogRecord, SpanEvent, SpanRecord

__all__ = [
    "MAX_SPAN_ATTRIBUTES",
    "DecodeFailed",
    "Decoded",
    "decode_logs",
    "decode_traces",
    "logs_response",
    "traces_response",
]

MAX_SPAN_ATTRIBUTES = 1024
"""Attributes read per span (or resource, event, log record); the rest are counted, unread."""
MAX_EVENTS = 32
"""Events read per span (only ``exception`` events are kept)."""

_FLAG_HAS_IS_REMOTE = 0x100
_FLAG_IS_REMOTE = 0x200
_SEVERITY = ((21, "CRITICAL"), (17, "ERROR"), (13, "WARNING"), (9, "INFO"), (1, "DEBUG"))


class DecodeFailed(ValueError):
    """The request cannot be decoded (the receivers answer 400 / INVALID_ARGUMENT)."""


class Decoded:
    """What one request held: records, how many items were rejected, and why."""

    __slots__ = ("dropped_attributes", "reason", "records", "rejected")

    def __init__(self) -> None:
        self.records: list[Any] = []
        self.rejected = 0
        self.reason = ""
        self.dropped_attributes = 0

    def reject(self, n: int, reason: str) -> None:
        self.rejected += n
        if not self.reason:
            self.reason = reason


# -- protobuf values -------------------------------------------------------------------------
def _any(value: Any) -> Any:
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return value.double_value
    if which == "bool_value":
        return value.bool_value
    if which == "array_value":
        return [_any(v) for v in value.array_value.values[:64]]
    if which == "kvlist_value":
        return json.dumps({kv.key: _any(kv.value) for kv in value.kvlist_value.values[:64]},
                          default=str)  # fmt: skip
    if which == "bytes_value":
        return value.bytes_value[:64].hex()
    return None


_SCALARS = frozenset({"string_value", "int_value", "double_value", "bool_value"})


def _attrs(kvs: Any, out: Decoded) -> dict[str, Any]:
    n = len(kvs)
    if n > MAX_SPAN_ATTRIBUTES:
        out.dropped_attributes += n - MAX_SPAN_ATTRIBUTES
        kvs = kvs[:MAX_SPAN_ATTRIBUTES]
    attrs: dict[str, Any] = {}
    scalars = _SCALARS
    for kv in kvs:
        value = kv.value
        which = value.WhichOneof("value")
        # The common case inline: one attribute of a span costs a few hundred nanoseconds.
        attrs[kv.key] = getattr(value, which) if which in scalars else _any(value)
    return attrs


def _hex_id(raw: bytes, size: int) -> str | None:
    if len(raw) != size or not any(raw):
        return None
    return raw.hex()


def _span_record(sp: Any, resource: dict[str, Any], scope: str, out: Decoded) -> None:
    raw_trace, raw_span = sp.trace_id, sp.span_id
    if len(raw_trace) != 16 or len(raw_span) != 8 or not any(raw_trace) or not any(raw_span):
        out.reject(1, "a span without a valid trace_id or span_id")
        return
    parent = sp.parent_span_id
    flags = sp.flags
    events = []
    if len(sp.events):
        for e in sp.events[:MAX_EVENTS]:
            if e.name == "exception":
                events.append(SpanEvent(e.name, e.time_unix_nano / 1e9, _attrs(e.attributes, out)))
    status = sp.status
    start = sp.start_time_unix_nano / 1e9
    end = sp.end_time_unix_nano / 1e9
    out.records.append(
        SpanRecord(
            raw_trace.hex(),
            raw_span.hex(),
            parent.hex() if len(parent) == 8 and any(parent) else None,
            sp.name,
            start,
            end if end else start,
            _attrs(sp.attributes, out),
            status_code=status.code,
            status_message=status.message,
            events=events,
            parent_remote=bool(flags & _FLAG_IS_REMOTE) if flags & _FLAG_HAS_IS_REMOTE else None,
            resource=resource,
            scope=scope,
        )
    )


# -- the wire format, for partial success ----------------------------------------------------
def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise DecodeFailed("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, bytes | None]]:
    """(field number, bytes of a length-delimited field or None) of one message's wire form;
    raises :class:`DecodeFailed` when the structure itself is broken."""
    pos, size = 0, len(buf)
    while pos < size:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise DecodeFailed("field number 0")
        if wire == 0:
            _, pos = _varint(buf, pos)
            yield number, None
        elif wire == 1:
            pos += 8
            yield number, None
        elif wire == 5:
            pos += 4
            yield number, None
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > size:
                raise DecodeFailed("truncated field")
            yield number, buf[pos : pos + length]
            pos += length
        else:
            raise DecodeFailed(f"wire type {wire}")
        if pos > size:
            raise DecodeFailed("truncated field")


def _count_spans(scope_spans: bytes) -> int:
    return sum(1 for number, _ in _fields(scope_spans) if number == 2)


def _salvage(body: bytes, out: Decoded) -> None:
    """Decode what can be decoded of a request protobuf refused as a whole."""
    for number, rs_bytes in _fields(body):
        if number != 1 or rs_bytes is None:
            continue
        try:
            rs = ResourceSpans.FromString(rs_bytes)
        except DecodeError:
            _salvage_resource(rs_bytes, out)
            continue
        _resource_spans(rs, out)


def _salvage_resource(rs_bytes: bytes, out: Decoded) -> None:
    resource: dict[str, Any] = {}
    scope_spans: list[bytes] = []
    broken_resource = False
    for number, value in _fields(rs_bytes):
        if value is None:
            continue
        if number == 1:
            try:
                resource = _attrs(Resource.FromString(value).attributes, out)
            except DecodeError:
                broken_resource = True
        elif number == 2:
            scope_spans.append(value)
    for ss_bytes in scope_spans:
        if broken_resource:
            out.reject(_count_spans(ss_bytes), "a resource that is not valid protobuf")
            continue
        try:
            ss = ScopeSpans.FromString(ss_bytes)
        except DecodeError:
            _salvage_scope(ss_bytes, resource, out)
            continue
        for sp in ss.spans:
            _span_record(sp, resource, ss.scope.name, out)


def _salvage_scope(ss_bytes: bytes, resource: dict[str, Any], out: Decoded) -> None:
    scope = ""
    spans: list[bytes] = []
    for number, value in _fields(ss_bytes):
        if value is None:
            continue
        if number == 1:
            try:
                scope = InstrumentationScope.FromString(value).name
            except DecodeError:
                scope = ""
        elif number == 2:
            spans.append(value)
    for sp_bytes in spans:
        try:
            sp = Span.FromString(sp_bytes)
        except DecodeError:
            out.reject(1, "a span that is not valid protobuf (e.g. invalid UTF-8 in a string)")
            continue
        _span_record(sp, resource, scope, out)


def _resource_spans(rs: Any, out: Decoded) -> None:
    resource = _attrs(rs.resource.attributes, out)
    for ss in rs.scope_spans:
        scope = ss.scope.name
        for sp in ss.spans:
            _span_record(sp, resource, scope, out)


# -- JSON ------------------------------------------------------------------------------------
def _get(obj: Any, camel: str, snake: str | None = None, default: Any = None) -> Any:
    if not isinstance(obj, dict):
        return default
    value = obj.get(camel)
    if value is None and snake is not None:
        value = obj.get(snake)
    return default if value is None else value


def _json_int(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return 0
    return 0


def _json_any(value: Any) -> Any:
    if not isinstance(value, dict):
        return None
    for key in ("stringValue", "string_value"):
        if key in value:
            v = value[key]
            return v if isinstance(v, str) else str(v)
    for key in ("intValue", "int_value"):
        if key in value:
            return _json_int(value[key])
    for key in ("doubleValue", "double_value"):
        if key in value:
            v = value[key]
            if isinstance(v, str):  # "NaN", "Infinity" in protobuf's JSON mapping
                try:
                    return float(v)
                except ValueError:
                    return None
            return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
    for key in ("boolValue", "bool_value"):
        if key in value:
            return bool(value[key])
    array = _get(value, "arrayValue", "array_value")
    if array is not None:
        values = _get(array, "values", default=[])
        return [_json_any(v) for v in values[:64]] if isinstance(values, list) else None
    kvlist = _get(value, "kvlistValue", "kvlist_value")
    if kvlist is not None:
        values = _get(kvlist, "values", default=[])
        if isinstance(values, list):
            return json.dumps(_json_attrs(values[:64], Decoded()), default=str)
        return None
    raw = _get(value, "bytesValue", "bytes_value")
    if isinstance(raw, str):
        try:
            return base64.b64decode(raw, validate=False)[:64].hex()
        except ValueError:
            return None
    return None


def _json_attrs(kvs: Any, out: Decoded) -> dict[str, Any]:
    if not isinstance(kvs, list):
        return {}
    if len(kvs) > MAX_SPAN_ATTRIBUTES:
        out.dropped_attributes += len(kvs) - MAX_SPAN_ATTRIBUTES
        kvs = kvs[:MAX_SPAN_ATTRIBUTES]
    attrs: dict[str, Any] = {}
    for kv in kvs:
        key = _get(kv, "key")
        if isinstance(key, str) and key:
            attrs[key] = _json_any(_get(kv, "value"))
    return attrs


def _json_id(value: Any, size: int) -> str | None:
    if not isinstance(value, str) or len(value) != size * 2:
        return None
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        return None
    return raw.hex() if any(raw) else None


def _json_traces(doc: Any, out: Decoded) -> None:
    if not isinstance(doc, dict):
        raise DecodeFailed("an OTLP/JSON request is a JSON object")
    resource_spans = _get(doc, "resourceSpans", "resource_spans", [])
    if not isinstance(resource_spans, list):
        raise DecodeFailed("resourceSpans must be a list")
    for rs in resource_spans:
        resource = _json_attrs(_get(_get(rs, "resource", default={}), "attributes", default=[]),
                               out)  # fmt: skip
        for ss in _get(rs, "scopeSpans", "scope_spans", []) or []:
            scope = _get(_get(ss, "scope", default={}), "name", default="")
            for sp in _get(ss, "spans", default=[]) or []:
                _json_span(sp, resource, scope if isinstance(scope, str) else "", out)


def _json_span(sp: Any, resource: dict[str, Any], scope: str, out: Decoded) -> None:
    trace_id = _json_id(_get(sp, "traceId", "trace_id"), 16)
    span_id = _json_id(_get(sp, "spanId", "span_id"), 8)
    if trace_id is None or span_id is None:
        out.reject(1, "a span without a valid hex traceId or spanId")
        return
    parent = _json_id(_get(sp, "parentSpanId", "parent_span_id"), 8)
    flags = _json_int(_get(sp, "flags", default=0))
    status = _get(sp, "status", default={})
    events = []
    raw_events = _get(sp, "events", default=[])
    for e in raw_events[:MAX_EVENTS] if isinstance(raw_events, list) else []:
        if _get(e, "name") == "exception":
            ts = _json_int(_get(e, "timeUnixNano", "time_unix_nano", 0)) / 1e9
            attrs = _json_attrs(_get(e, "attributes", default=[]), out)
            events.append(SpanEvent("exception", ts, attrs))
    name = _get(sp, "name", default="")
    start = _json_int(_get(sp, "startTimeUnixNano", "start_time_unix_nano", 0)) / 1e9
    end = _json_int(_get(sp, "endTimeUnixNano", "end_time_unix_nano", 0)) / 1e9
    message = _get(status, "message", default="")
    out.records.append(
        SpanRecord(
            trace_id,
            span_id,
            parent,
            name if isinstance(name, str) else str(name),
            start,
            end if end else start,
            _json_attrs(_get(sp, "attributes", default=[]), out),
            status_code=_json_int(_get(status, "code", default=0)),
            status_message=message if isinstance(message, str) else "",
            events=events,
            parent_remote=bool(flags & _FLAG_IS_REMOTE) if flags & _FLAG_HAS_IS_REMOTE else None,
            resource=resource,
            scope=scope,
        )
    )


def _json_doc(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8", "replace"))
    except (ValueError, RecursionError) as exc:
        raise DecodeFailed(f"not JSON: {type(exc).__name__}") from None


# -- public ----------------------------------------------------------------------------------
def decode_traces(body: bytes, content: str) -> Decoded:
    """Span records of an ``ExportTraceServiceRequest`` body (``content``: proto or json)."""
    out = Decoded()
    if content == "json":
        _json_traces(_json_doc(body), out)
        return out
    try:
        request = ExportTraceServiceRequest.FromString(body)
    except DecodeError:
        _salvage(body, out)
        if not out.records and not out.rejected:
            raise DecodeFailed("not an ExportTraceServiceRequest") from None
        return out
    for rs in request.resource_spans:
        _resource_spans(rs, out)
    return out


def _level(severity_text: str, number: int) -> str:
    if severity_text:
        return severity_text.upper()[:16]
    for threshold, name in _SEVERITY:
        if number >= threshold:
            return name
    return "INFO"


def _log(
    ts_ns: int,
    observed_ns: int,
    level: str,
    body: Any,
    attrs: dict[str, Any],
    resource: dict[str, Any],
    trace_id: str | None,
    span_id: str | None,
) -> LogRecord:
    message = body if isinstance(body, str) else json.dumps(body, default=str)
    source = attrs.get("gen_ai.agent.name") or attrs.get("agent.name")
    source = source or resource.get("service.name")
    return LogRecord(
        (ts_ns or observed_ns) / 1e9,
        level,
        message,
        source if isinstance(source, str) and source else None,
        attrs,
        trace_id,
        span_id,
    )


def decode_logs(body: bytes, content: str) -> Decoded:
    """Log records of an ``ExportLogsServiceRequest`` body."""
    out = Decoded()
    if content == "json":
        doc = _json_doc(body)
        if not isinstance(doc, dict):
            raise DecodeFailed("an OTLP/JSON request is a JSON object")
        for rl in _get(doc, "resourceLogs", "resource_logs", []) or []:
            resource = _json_attrs(
                _get(_get(rl, "resource", default={}), "attributes", default=[]), out
            )
            for sl in _get(rl, "scopeLogs", "scope_logs", []) or []:
                for lr in _get(sl, "logRecords", "log_records", []) or []:
                    out.records.append(
                        _log(
                            _json_int(_get(lr, "timeUnixNano", "time_unix_nano", 0)),
                            _json_int(_get(lr, "observedTimeUnixNano", None, 0)),
                            _level(str(_get(lr, "severityText", "severity_text", "")),
                                   _json_int(_get(lr, "severityNumber", "severity_number", 0))),
                            _json_any(_get(lr, "body", default={})) or "",
                            _json_attrs(_get(lr, "attributes", default=[]), out),
                            resource,
                            _json_id(_get(lr, "traceId", "trace_id"), 16),
                            _json_id(_get(lr, "spanId", "span_id"), 8),
                        )
                    )  # fmt: skip
        return out
    try:
        request = ExportLogsServiceRequest.FromString(body)
    except DecodeError:
        raise DecodeFailed("not an ExportLogsServiceRequest") from None
    for rl in request.resource_logs:
        resource = _attrs(rl.resource.attributes, out)
        for sl in rl.scope_logs:
            for lr in sl.log_records:
                out.records.append(
                    _log(
                        lr.time_unix_nano, lr.observed_time_unix_nano,
                        _level(lr.severity_text, lr.severity_number),
                        _any(lr.body) if lr.HasField("body") else "",
                        _attrs(lr.attributes, out), resource,
                        _hex_id(lr.trace_id, 16), _hex_id(lr.span_id, 8),
                    )
                )  # fmt: skip
    return out


def traces_response(rejected: int, reason: str, content: str) -> bytes:
    """An ``ExportTraceServiceResponse`` (``partial_success`` when spans were rejected)."""
    return _export_response(
        ExportTraceServiceResponse(), "rejectedSpans", rejected, reason, content
    )


def logs_response(rejected: int, reason: str, content: str) -> bytes:
    """An ``ExportLogsServiceResponse`` (``partial_success`` when records were rejected)."""
    return _export_response(
        ExportLogsServiceResponse(), "rejectedLogRecords", rejected, reason, content
    )


def _export_response(
    response: Any, rejected_field: str, rejected: int, reason: str, content: str
) -> bytes:
    """An export response, as JSON (camelCase, the OTLP/JSON mapping) or protobuf, with a
    ``partial_success`` naming how many items were rejected and why, when some were."""
    if content == "json":
        doc: dict[str, Any] = {}
        if rejected:
            doc["partialSuccess"] = {rejected_field: rejected, "errorMessage": reason}
        return json.dumps(doc).encode()
    if rejected:
        # The proto field is the JSON name in snake_case: rejected_spans, rejected_log_records.
        proto_field = "".join("_" + c.lower() if c.isupper() else c for c in rejected_field)
        setattr(response.partial_success, proto_field, rejected)
        response.partial_success.error_message = reason
    data: bytes = response.SerializeToString()
    return data


def status_body(code: int, message: str, content: str) -> bytes:
    """A ``google.rpc.Status`` (``code``, ``message``) for an error response."""
    if content == "json":
        return json.dumps({"code": code, "message": message}).encode()
    text = message.encode("utf-8", "replace")
    out = bytearray(b"\x08")
    _put_varint(out, code)
    out += b"\x12"
    _put_varint(out, len(text))
    out += text
    return bytes(out)


def _put_varint(out: bytearray, value: int) -> None:
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return
