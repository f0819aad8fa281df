"""Plain records of spans and log lines, the same whichever way they came in.

The in-process processor builds a :class:`SpanRecord` from an SDK ``ReadableSpan``; the OTLP
receivers build them from protobuf or JSON. Everything downstream (the normaliser, the
correlator) reads only these, so both paths share one mapping. No OpenTelemetry import here.
"""

from __future__ import annotations

from typing import Any

__all__ = ["STATUS_ERROR", "STATUS_OK", "STATUS_UNSET", "LogRecord", "SpanEvent", "SpanRecord"]

STATUS_UNSET = 0
STATUS_OK = 1
STATUS_ERROR = 2

Scalar = "str | int | float | bool"


class SpanEvent:
    """One event of a span (OpenTelemetry's ``exception`` events matter here)."""

    __slots__ = ("attributes", "name", "ts")

    def __init__(self, name: str, ts: float, attributes: dict[str, Any]) -> None:
        self.name = name
        self.ts = ts
        self.attributes = attributes


class SpanRecord:
    """One span: ids as lower-case hex, times in unix seconds (``end`` None while open).

    ``parent_remote`` is True when the span's parent lives in another process (OTLP's span
    flags say so), None when unknown. ``attributes`` is a flat dict of scalars or lists.
    """

    __slots__ = (
        "attributes",
        "end",
        "events",
        "name",
        "parent_id",
        "parent_remote",
        "resource",
        "scope",
        "span_id",
        "start",
        "status_code",
        "status_message",
        "trace_id",
    )

    def __init__(
        self,
        trace_id: str,
        span_id: str,
        parent_id: str | None,
        name: str,
        start: float,
        end: float | None,
        attributes: dict[str, Any],
        *,
        status_code: int = STATUS_UNSET,
        status_message: str = "",
        events: list[SpanEvent] | tuple[SpanEvent, ...] | None = None,
        parent_remote: bool | None = None,
        resource: dict[str, Any] | None = None,
        scope: str = "",
    ) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_id = parent_id
        self.name = name
        self.start = start
        self.end = end
        self.attributes = attributes
        self.status_code = status_code
        self.status_message = status_message
        # A tuple, shared when empty: a record is kept (as its node's) long after it ended,
        # and an empty list per span is an object more for the garbage collector to walk.
        self.events: tuple[SpanEvent, ...] = tuple(events) if events else ()
        self.parent_remote = parent_remote
        self.resource = resource or {}
        self.scope = scope

    def __repr__(self) -> str:
        state = "open" if self.end is None else f"{(self.end - self.start) * 1000:.1f} ms"
        return f"<SpanRecord {self.name!r} {self.span_id} parent={self.parent_id} {state}>"


class LogRecord:
    """One OTLP log record, reduced to what the log tail shows."""

    __slots__ = ("attributes", "level", "message", "source", "span_id", "trace_id", "ts")

    def __init__(
        self,
        ts: float,
        level: str,
        message: str,
        source: str | None,
        attributes: dict[str, Any],
        trace_id: str | None = None,
        span_id: str | None = None,
    ) -> None:
        self.ts = ts
        self.level = level
        self.message = message
        self.source = source
        self.attributes = attributes
        self.trace_id = trace_id
        self.span_id = span_id
