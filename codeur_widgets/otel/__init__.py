"""OpenTelemetry in: agents from any framework on the dashboard, without changing their code.

Two ways in, one normaliser (:mod:`codeur_widgets.otel.semconv`) and one correlator
(:mod:`codeur_widgets.otel.correlate`) for both:

* **in this kernel**: ``hub.instrument_otel()`` (or :func:`instrument`) adds a
  :class:`HubSpanProcessor` to the OpenTelemetry SDK tracer provider, so spans are seen when they
  start, not only when they end;
* **from other processes and machines**: ``Hub(sources=["otlp://127.0.0.1:4318"])`` (OTLP/HTTP)
  or ``"otlp+grpc://127.0.0.1:4317"`` (OTLP/gRPC), see :mod:`codeur_widgets.otel.receiver`.

Importing this package is cheap and does not import the OpenTelemetry SDK, grpc or protobuf:
those are imported when a processor or a receiver is created (``pip install
'codeur-widgets[otel]'``). The core reaches :func:`instrument` through the ``instrument_otel``
hook declared in ``pyproject.toml`` and never imports this package.
"""

from __future__ import annotations

import importlib
import threading
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..core.hub import Hub, Source
    from .processor import HubSpanProcessor
    from .receiver import OTLPGrpcSource, OTLPHttpSource

__all__ = [
    "HubSpanProcessor",
    "OTLPGrpcSource",
    "OTLPHttpSource",
    "instrument",
    "open_otlp",
]

INSTALL_HINT = "pip install 'codeur-widgets[otel]'"

_LAZY = {
    "HubSpanProcessor": "codeur_widgets.otel.processor",
    "OTLPHttpSource": "codeur_widgets.otel.receiver",
    "OTLPGrpcSource": "codeur_widgets.otel.receiver",
}

_installed: weakref.WeakKeyDictionary[Any, list[HubSpanProcessor]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'codeur_widgets.otel' has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(module), name)
    except ImportError as exc:
        raise ImportError(f"{exc} ({INSTALL_HINT})") from exc
    globals()[name] = value
    return value


def instrument(hub: Hub, tracer_provider: Any = None, **options: Any) -> HubSpanProcessor:
    """Add a :class:`HubSpanProcessor` for ``hub`` to an OpenTelemetry SDK tracer provider.

    The provider is ``tracer_provider`` if given, else the SDK provider installed globally, else
    a new SDK ``TracerProvider`` that is installed globally. Calling it again for the same hub
    and provider returns the processor already there. ``options``: see
    :class:`HubSpanProcessor`. This is what ``hub.instrument_otel()`` calls.
    """
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider

        from .processor import HubSpanProcessor
    except ImportError as exc:
        raise ImportError(f"{exc}: hub.instrument_otel() needs {INSTALL_HINT}") from exc
    provider = tracer_provider
    if provider is None:
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            provider = current
        else:
            provider = TracerProvider()
            trace.set_tracer_provider(provider)
            if trace.get_tracer_provider() is not provider:
                raise RuntimeError(
                    "another OpenTelemetry tracer provider that is not the SDK's is installed; "
                    "pass tracer_provider= (an opentelemetry.sdk.trace.TracerProvider)"
                )
    if not hasattr(provider, "add_span_processor"):
        raise TypeError(
            f"tracer_provider must be an OpenTelemetry SDK TracerProvider, got "
            f"{type(provider).__name__}"
        )
    with _lock:
        existing = _installed.setdefault(provider, [])
        for processor in existing:
            if processor.hub is hub:
                return processor
        processor = HubSpanProcessor(hub, **options)
        provider.add_span_processor(processor)
        existing.append(processor)
    return processor


def open_otlp(url: str) -> Source:
    """The OTLP receiver for an ``otlp://``, ``otlp+http://`` or ``otlp+grpc://`` URL (the
    ``codeur_widgets.sources`` entry points of these schemes)."""
    from ..core.sources import mask_url

    try:
        from .receiver import open_receiver
    except ImportError as exc:
        raise ImportError(f"receiving {mask_url(url)} needs {INSTALL_HINT} ({exc})") from exc
    return open_receiver(url)
