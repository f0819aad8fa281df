"""Readers of what a hub's events say, for the OpenTelemetry tests: tokens per agent, failures,
flows, cards. Trace-level facts are checked against the span events themselves (the trace store
that folds them is another module's).
"""

from __future__ import annotations

import importlib.util
from collections import defaultdict
from typing import Any

from codeur_widgets.core.events import Event
from codeur_widgets.core.hub import Hub


def has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


class Recorder:
    """Every event a hub applied, in order, with readers."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.events: list[Event] = []
        hub.bus.subscribe("*", self.events.append)

    def topic(self, *topics: str) -> list[Event]:
        return [e for e in self.events if e.topic in topics]

    def tokens(self) -> dict[str | None, tuple[int, int]]:
        """Tokens per agent as the span contract reports them: LLM spans' ``span.ended`` plus
        ``agent.tokens`` (each call counted once)."""
        totals: dict[str | None, list[int]] = defaultdict(lambda: [0, 0])
        for e in self.events:
            if e.topic == "span.ended" and "prompt_tokens" in e.data:
                totals[e.agent][0] += e.data["prompt_tokens"]
                totals[e.agent][1] += e.data["completion_tokens"]
            elif e.topic == "agent.tokens":
                totals[e.agent][0] += e.data["prompt"]
                totals[e.agent][1] += e.data["completion"]
        return {k: (v[0], v[1]) for k, v in totals.items()}

    def flows(self) -> list[tuple[str | None, str, str]]:
        return [(e.agent, e.data["target"], e.data["kind"]) for e in self.topic("agent.message")]

    def spans(self, **match: Any) -> list[Event]:
        """``span.ended`` events whose data has every ``match`` item."""
        return [
            e for e in self.topic("span.ended") if all(e.data.get(k) == v for k, v in match.items())
        ]

    def span_ids(self) -> list[str | None]:
        return [e.span_id for e in self.topic("span.ended", "agent.task.completed",
                                                "agent.task.failed")]  # fmt: skip


def card(hub: Hub, name: str) -> dict[str, Any]:
    entry = hub.agents.get(name)
    assert entry is not None, f"no card for {name!r}; cards: {hub.agents.names()}"
    return entry


def edges(hub: Hub) -> set[str]:
    """``source->target`` edges of the graph store (agents and edges seen in flows are added
    to its topology), whatever the flows' time window."""
    from codeur_widgets.core.graph import snapshot_edge_ids

    return {e for e in snapshot_edge_ids(hub.graph.snapshot()) if e}


def live_edges(hub: Hub) -> set[str]:
    """Edges with traffic in the flows store's last minute (events stamped now)."""
    return set(hub.flows.snapshot()["edges"])


_ids = iter(range(1, 1 << 30))


def span(
    name: str,
    attributes: dict[str, Any] | None = None,
    *,
    parent: Any = None,
    trace: str = "ab" * 16,
    start: float = 1_700_000_000.0,
    end: float | None = 1_700_000_001.0,
    status: int = 0,
    message: str = "",
    events: list[Any] | None = None,
    span_id: str | None = None,
) -> Any:
    """A :class:`SpanRecord` (``parent``: another record or a span id)."""
    from codeur_widgets.otel.records import SpanRecord

    parent_id = parent.span_id if hasattr(parent, "span_id") else parent
    return SpanRecord(
        trace,
        span_id or f"{next(_ids):016x}",
        parent_id,
        name,
        start,
        end,
        dict(attributes or {}),
        status_code=status,
        status_message=message,
        events=events,
    )
