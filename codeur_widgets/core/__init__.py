"""The pure-Python core: events, bus, stores and the Hub. Never imports Jupyter.

Names are resolved lazily so that ``codeur_widgets.core.events`` can be used by light agent-side
code without importing the stores (networkx, psutil).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "Event": "events",
    "InvalidEvent": "events",
    "EventBus": "bus",
    "Subscription": "bus",
    "FakeClock": "clock",
    "Hub": "hub",
    "Watch": "hub",
    "default_hub": "hub",
}

__all__ = [
    "Event",
    "EventBus",
    "FakeClock",
    "Hub",
    "InvalidEvent",
    "Subscription",
    "Watch",
    "default_hub",
]

if TYPE_CHECKING:
    from .bus import EventBus, Subscription
    from .clock import FakeClock
    from .events import Event, InvalidEvent
    from .hub import Hub, Watch, default_hub


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'codeur_widgets.core' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
