"""Where ``Hub(sources=["scheme://..."])`` URLs are resolved: a registry of source factories.

The core knows no transport. A transport registers a factory for its URL schemes, either by
calling :func:`register_source` or, so that it plugs in without being imported first, through
the ``codeur_widgets.sources`` entry-point group of its distribution (this package declares its
own Redis and OTLP transports that way in ``pyproject.toml``)::

    [project.entry-points."codeur_widgets.sources"]
    redis = "codeur_widgets.transports.redis_streams:open_redis_source"

The entry point's name is the URL scheme; its object is ``factory(url) -> Source``. Entry points
are read once, on the first URL whose scheme was not registered by a call, so importing the core
stays cheap and an optional dependency (redis, grpc) is imported only when a URL asks for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urlsplit

if TYPE_CHECKING:
    from .hub import Source

__all__ = [
    "ENTRY_POINT_GROUP",
    "SourceFactory",
    "mask_url",
    "open_source",
    "register_source",
    "registered_schemes",
]

ENTRY_POINT_GROUP = "codeur_widgets.sources"

SourceFactory = Callable[[str], "Source"]

_factories: dict[str, SourceFactory] = {}
_entry_points_loaded = False
_lock = threading.Lock()


def mask_url(url: object) -> str:
    """``url`` without credentials or query: ``redis://***@host:port/db``.

    The query is dropped entirely because it may carry ``password=`` or ``token=``. Never raises.
    """
    split = masked_netloc(url)
    if isinstance(split, str):
        return split
    parts, netloc = split
    scheme = parts.scheme or "redis"
    return f"{scheme}://{netloc}{parts.path}"


def masked_netloc(url: object) -> tuple[SplitResult, str] | str:
    """``url`` split, with the network location it may be shown with (``***@host:port``:
    credentials hidden, an IPv6 literal bracketed); or, for what is not a parseable URL, the
    text to show instead. Never raises: what every URL shown to users (sources, webhooks) goes
    through."""
    if not isinstance(url, str):
        return f"<{type(url).__name__}>"
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
        has_credentials = parts.username is not None or parts.password is not None
    except ValueError:
        return "<unparseable url>"
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = ("***@" if has_credentials else "") + host + (f":{port}" if port is not None else "")
    return parts, netloc


def register_source(schemes: str | Iterable[str], factory: SourceFactory) -> None:
    """Make ``Hub(sources=[...])`` open URLs of ``schemes`` with ``factory(url)``.

    A later registration of the same scheme replaces the earlier one (tests, user overrides).
    """
    names = [schemes] if isinstance(schemes, str) else list(schemes)
    if not callable(factory):
        raise TypeError(f"a source factory must be callable, got {type(factory).__name__}")
    with _lock:
        for scheme in names:
            if not isinstance(scheme, str) or not scheme:
                raise ValueError(f"a URL scheme must be a non-empty string, got {scheme!r}")
            _factories[scheme.lower()] = factory


def _load_entry_points() -> None:
    """Register every ``codeur_widgets.sources`` entry point not registered by a call."""
    global _entry_points_loaded
    with _lock:
        if _entry_points_loaded:
            return
        _entry_points_loaded = True
        found = list(entry_points(group=ENTRY_POINT_GROUP))
    for ep in found:
        scheme = ep.name.lower()
        if scheme in _factories:
            continue
        # Loaded lazily: the module (and its optional dependency) is imported on first use.
        _factories.setdefault(scheme, _LazyFactory(ep))


class _LazyFactory:
    """An entry point's factory, imported on the first URL of its scheme."""

    def __init__(self, ep: Any) -> None:
        self.ep = ep

    def __call__(self, url: str) -> Source:
        factory: SourceFactory = self.ep.load()
        return factory(url)


def registered_schemes() -> list[str]:
    """The URL schemes a hub can open (registered by calls or entry points), sorted."""
    _load_entry_points()
    return sorted(_factories)


def open_source(url: str) -> Source:
    """The event source for ``url``; raises :class:`ValueError` (URL masked) if unsupported.

    A transport whose optional dependency is missing raises :class:`ImportError` saying what to
    install.
    """
    if not isinstance(url, str):
        raise TypeError(f"a source URL must be a string, got {type(url).__name__}")
    scheme = url.partition(":")[0].lower()
    factory = _factories.get(scheme)
    if factory is None:
        _load_entry_points()
        factory = _factories.get(scheme)
    if factory is None:
        known = ", ".join(f"{s}://" for s in registered_schemes()) or "none"
        raise ValueError(f"no transport for {mask_url(url)}: supported schemes are {known}")
    return factory(url)
