"""QueueStats: job-queue health, fed by the ``queue`` store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import traitlets

from ._base import Frame, HubWidget
from ._bundle import Bundle

__all__ = ["QueueStats"]


class QueueStats(HubWidget):
    """Queued, processing, completed and failed jobs; wait and run time p50/p95; jobs completed in
    the last hour; a throughput sparkline (jobs per minute within the last hour, from the first
    minute a job finished in, 10 minutes at least).

    ``QueueStats(hub)``; ``QueueStats()`` watches :func:`codeur_widgets.default_hub`.
    """

    _esm = Bundle("queue_stats")
    _stores = ("queue",)
    # Counters and percentiles read well at 5 frames/s; the Dashboard's nine widgets must stay
    # within 60 messages/s together (DESIGN section 6).
    _max_hz = 5.0

    data = traitlets.Dict(help="the hub's `queue` snapshot").tag(sync=True)

    def _state(
        self, frame: Frame, traits: Mapping[str, Any], *, initial: bool = False
    ) -> dict[str, Any]:
        return {"data": frame["queue"]}
