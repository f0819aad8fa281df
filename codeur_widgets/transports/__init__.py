"""Transports: how events from other processes and machines reach a Hub.

``open_source(url)`` turns a URL into a :class:`~codeur_widgets.core.hub.Source`; the Hub calls it
for every string in ``Hub(sources=[...])``. Supported today:

* ``redis://host:6379/0?stream=codeur:events&group=...`` (also ``rediss://``, ``unix://``):
  :class:`~codeur_widgets.transports.redis_streams.RedisStreamSource`, a Redis Streams consumer
  group. Agents publish with :mod:`codeur_widgets.emit`.

Importing this package is cheap: redis is imported only when a Redis URL is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._common import mask_url

if TYPE_CHECKING:
    from ..core.hub import Source

__all__ = ["mask_url", "open_source"]

_REDIS_SCHEMES = ("redis", "rediss", "unix")


def open_source(url: str) -> Source:
    """The event source for ``url``; raises :class:`ValueError` (URL masked) if unsupported."""
    if not isinstance(url, str):
        raise TypeError(f"a source URL must be a string, got {type(url).__name__}")
    scheme = url.partition(":")[0].lower()
    if scheme in _REDIS_SCHEMES:
        try:
            from .redis_streams import RedisStreamSource
        except ImportError as exc:  # redis is an optional dependency
            raise ImportError(
                f"reading {mask_url(url)} needs the redis package: "
                "pip install 'codeur-widgets[redis]'"
            ) from exc
        return RedisStreamSource(url)
    raise ValueError(
        f"no transport for {mask_url(url)}: supported schemes are redis://, rediss:// and unix://"
    )
