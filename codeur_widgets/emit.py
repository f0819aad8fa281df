"""Publish events to a codeur-widgets dashboard from agent processes, through Redis Streams.

Light on purpose: this module needs only ``redis`` and the event envelope, no Jupyter, networkx
or psutil, so it can live in any agent service::

    from codeur_widgets.emit import Emitter

    emitter = Emitter("redis://localhost:6379/0?stream=codeur:events")
    emitter.publish("job.enqueued", job_id="job-7", kind="code_generation")

    agent = emitter.agent("coding_agent", model="gpt-4o", role="executor")  # heartbeats too
    with agent.task("Implement #42", job_id="job-7") as t:
        t.tokens(prompt=812, completion=240, cost_usd=0.004)
        agent.send("git_operations", "git_command")

    emitter.capture_logging("codeur", level="INFO")   # log records become ``log`` events

``publish`` never blocks: events wait in a bounded buffer (drop-oldest, counted) while a
background thread sends them in pipelined ``XADD … MAXLEN ~`` batches and reconnects with backoff.
In a notebook, read them with ``Hub(sources=["redis://localhost:6379/0?stream=codeur:events"])``.
"""

from __future__ import annotations

import logging
from typing import Any

from .core.events import Event, InvalidEvent
from .core.logs import LogHandler
from .transports._common import mask_url
from .transports.redis_streams import DEFAULT_STREAM, DEFAULT_URL, Emitter

__all__ = [
    "DEFAULT_STREAM",
    "DEFAULT_URL",
    "Emitter",
    "Event",
    "InvalidEvent",
    "RedisLogHandler",
    "mask_url",
]


class RedisLogHandler(LogHandler):
    """A :class:`logging.Handler` that ships records to Redis as ``log`` events.

    For ``logging.config.dictConfig``::

        "handlers": {"dashboard": {"()": "codeur_widgets.emit.RedisLogHandler",
                                    "url": "redis://localhost:6379/0", "level": "INFO"}}

    It uses ``emitter`` when given, else creates its own :class:`Emitter` from ``url`` (and the
    other keywords), which :meth:`close` closes (``logging.shutdown`` does that at exit).
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        emitter: Emitter | None = None,
        source: str | None = None,
        level: int | str = logging.INFO,
        **emitter_options: Any,
    ) -> None:
        self._own = emitter is None
        self.emitter = emitter if emitter is not None else Emitter(url, **emitter_options)
        super().__init__(self.emitter._publish_log, source=source, level=level)

    def close(self) -> None:
        try:
            if self._own:
                self.emitter.close(timeout=self.emitter.exit_timeout)
        finally:
            super().close()
