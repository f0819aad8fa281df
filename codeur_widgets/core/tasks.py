"""Asyncio task helpers shared by the hub, its sources and the simulator (standard library only)."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["wait_cancelled"]


async def wait_cancelled(tasks: set[asyncio.Task[Any]]) -> None:
    """Wait until ``tasks`` (cancelled by a ``stop()``) have finished, whatever the outcome, and
    empty the set: an ``aclose()`` then leaves no pending-task warning behind."""
    pending = set(tasks)
    tasks.clear()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
