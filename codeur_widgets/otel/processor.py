"""The in-process OpenTelemetry span processor: spans of this kernel's frameworks, live.

``HubSpanProcessor(hub)`` is an OpenTelemetry SDK ``SpanProcessor``. Its ``on_start`` and
``on_end`` run on the framework's thread, so they only hand the span to the hub's
:class:`~codeur_widgets.otel.pipeline.SpanPipeline` (a deque append), catch everything and count
it: they never block, never raise into the framework. The span is read on the hub's loop: an
ended span is an immutable ``ReadableSpan``; a span that just started is read there too (under
its attributes' lock), so whatever it says by then counts, which is at least what it said when
it started.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

from .correlate import DEFAULT_HOLD
from .pipeline import SpanPipeline
from .records import SpanEvent, SpanRecord

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import Span

    from ..core.hub import Hub

__all__ = ["HubSpanProcessor", "record_from_sdk"]


def _copy_attributes(attributes: Any) -> dict[str, Any]:
    if not attributes:
        return {}
    inner = getattr(attributes, "_dict", None)
    lock = getattr(attributes, "_lock", None)
    if inner is not None and lock is not None:
        with lock:  # a live span's attributes may be set by its thread meanwhile
            return dict(inner)
    return dict(attributes)


def record_from_sdk(span: ReadableSpan, ended: bool) -> SpanRecord:
    """A :class:`SpanRecord` of an SDK span (open or ended)."""
    ctx = span.get_span_context()
    assert ctx is not None
    parent = span.parent
    start = (span.start_time or 0) / 1e9
    end_ns = span.end_time if ended else None
    events = [
        SpanEvent(e.name, e.timestamp / 1e9, dict(e.attributes or {}))
        for e in (span.events or ())
        if e.name == "exception"
    ]
    status = span.status
    scope = span.instrumentation_scope
    return SpanRecord(
        format(ctx.trace_id, "032x"),
        format(ctx.span_id, "016x"),
        format(parent.span_id, "016x") if parent is not None else None,
        span.name,
        start,
        end_ns / 1e9 if end_ns else None,
        _copy_attributes(span.attributes),
        status_code=int(status.status_code.value) if status is not None else 0,
        status_message=(status.description or "") if status is not None else "",
        events=events,
        parent_remote=parent.is_remote if parent is not None else None,
        scope=scope.name if scope is not None else "",
    )


class HubSpanProcessor(SpanProcessor):
    """Sends the spans of an OpenTelemetry SDK tracer provider to a :class:`Hub`.

    ``provider.add_span_processor(HubSpanProcessor(hub))`` wires it by hand (the processor
    adds itself to ``hub.sources``, so it starts and stops with the hub);
    ``hub.instrument_otel()`` does it for the provider in use. Agents then appear on the cards
    the moment their span starts, LLM and tool spans are attributed to them, delegations and
    handoffs are flows on the graph, and a trace's root is a job in the queue panel.

    Args:
        hub: the hub to feed (it need not be running: spans are then applied at once).
        capture_content: keep messages, answers and tool arguments in the span events; default:
            ``hub.capture_content`` if the hub has one and it is not None, else True (this
            kernel's own spans).
        hold: seconds a span may wait for a parent that has not said what it is.
    """

    def __init__(
        self, hub: Hub, *, capture_content: bool | None = None, hold: float = DEFAULT_HOLD
    ) -> None:
        if capture_content is None:
            capture_content = getattr(hub, "capture_content", None)
        self.hub = hub
        self.pipeline = SpanPipeline(
            hub, capture_content=True if capture_content is None else bool(capture_content),
            hold=hold,
        )  # fmt: skip
        self.errors = 0
        self._put = self.pipeline.put
        # A source of the hub: started with it (now, if it runs), so that spans are applied
        # on its loop whichever way the processor was wired.
        hub.add_source(self)

    # -- SpanProcessor, on the framework's thread ----------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            self._put(self._started, span)
        except Exception:
            self.errors += 1

    def on_end(self, span: ReadableSpan) -> None:
        try:
            self._put(self._ended, span)
        except Exception:
            self.errors += 1

    def shutdown(self) -> None:
        self.pipeline.release_all()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        self.pipeline.flush()
        return True

    # -- on the hub's loop ---------------------------------------------------------------------
    def _started(self, span: Span) -> None:
        self.pipeline.correlator.start(record_from_sdk(span, ended=False))

    def _ended(self, span: ReadableSpan) -> None:
        self.pipeline.correlator.end(record_from_sdk(span, ended=True))

    # -- hub Source protocol (hub.add_source) --------------------------------------------------
    def start(self, hub: Hub) -> None:
        self.pipeline.start(hub)

    def stop(self) -> None:
        self.pipeline.stop()

    async def aclose(self) -> None:
        await self.pipeline.aclose()

    def health(self) -> dict[str, Any]:
        return {
            "source": "opentelemetry (in-process)",
            "url": "opentelemetry (in-process)",
            "connected": True,
            "state": "span processor",
            "call_errors": self.errors,
            **self.pipeline.health(),
        }

    def __repr__(self) -> str:
        return f"<HubSpanProcessor {self.pipeline.correlator.spans} spans>"
