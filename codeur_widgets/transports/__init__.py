"""Transports: how events from other processes and machines reach a Hub.

The Hub resolves every string in ``Hub(sources=[...])`` through the registry in
:mod:`codeur_widgets.core.sources`; this package fills it, through the ``codeur_widgets.sources``
entry points declared in ``pyproject.toml`` (the core never imports a transport). Supported today:

* ``redis://host:6379/0?stream=codeur:events&group=...`` (also ``rediss://``, ``unix://``):
  :class:`~codeur_widgets.transports.redis_streams.RedisStreamSource`, a Redis Streams consumer
  group. Agents publish with :mod:`codeur_widgets.emit`.

Importing this package is cheap: redis is imported only when a Redis URL is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.sources import mask_url, open_source

if TYPE_CHECKING:
    from ..core.hub import Source

__all__ = ["mask_url", "open_redis", "open_source"]


def open_redis(url: str) -> Source:
    """The Redis Streams source for a ``redis://``, ``rediss://`` or ``unix://`` URL."""
    try:
        from .redis_streams import RedisStreamSource
    except ImportError as exc:  # redis is an optional dependency
        raise ImportError(
            f"reading {mask_url(url)} needs the redis package: pip install 'codeur-widgets[redis]'"
        ) from exc
    return RedisStreamSource(url)
