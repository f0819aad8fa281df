"""From spans to the events of ``core/spans.py``: ancestry, delegation, usage, jobs.

:class:`Correlator` takes span records in the order they happen (``start`` for an in-process
span that just began, ``end`` for one that ended, or for an OTLP span that arrives ended) and
turns them into events:

* an agent span → ``agent.task.started`` / ``agent.task.completed`` / ``agent.task.failed``
  (``task_id`` = the span id, so the agent cards work as for our own agent API), and
  ``agent.registered`` the first time an agent (or a new model of it) is seen;
* any other span → ``span.started`` / ``span.ended``, owned by its nearest agent ancestor;
* a trace's root span that carries either vocabulary → ``job.started`` / ``job.completed`` /
  ``job.failed`` (the job id is the trace id), so the queue panel counts runs;
* who hands work to whom → ``agent.message`` from the delegating agent to the delegate
  (``kind`` ``handoff`` or ``delegate``): ``graph.node.parent_id``, a handoff span, or an agent
  span whose nearest agent ancestor is another agent.

Which agent a span belongs to is only known once its ancestors are known. In-process, a span
whose parent has not said what it is yet (OpenInference's LangChain spans say it only when they
end) is *held* until that parent ends; over OTLP, ended spans arrive children first, so a span
whose parent has not arrived is held until it does. Spans that name their agent themselves
(``gen_ai.agent.name`` on a ``chat`` span) and agent spans are never held. A held span is
released after ``hold`` seconds at the latest (owned by the nearest agent known then), and at
most ``max_held`` are held (the oldest released first), so memory stays bounded.

Usage is reported once: an LLM span's tokens go on its ``span.ended``; tokens on an agent span
(or another span) are an aggregate of its children's and are dropped when a descendant already
reported some, else reported once as ``agent.tokens``.

Not thread-safe: one thread at a time (the hub's loop, or callers holding a lock).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

from ..core.events import _ID_COUNTER, _ID_PREFIX, Event
from .records import SpanRecord
from .semconv import MAX_NAME, Norm, clip, normalize

__all__ = ["DEFAULT_HOLD", "Correlator"]

DEFAULT_HOLD = 30.0
"""Seconds a span may wait for its parent before it is released with what is known."""
MAX_NODES = 100_000
MAX_HELD = 50_000
MAX_AGENTS_SEEN = 10_000
_MISSING: Any = object()
_EMPTY: dict[str, Any] = {}


class _Node:
    """What the correlator remembers of one span (open or recently ended)."""

    __slots__ = (
        "agent",
        "child_usage",
        "deadline",
        "delegated",
        "held",
        "job",
        "kind",
        "nearest",
        "norm",
        "parent_id",
        "record",
        "released",
        "resolved",
        "started",
        "trace_id",
    )

    def __init__(self, record: SpanRecord) -> None:
        self.record = record
        self.trace_id = record.trace_id
        self.parent_id = record.parent_id
        self.norm: Norm | None = None
        self.kind = "other"
        self.agent: str | None = None  # its own agent (agent spans)
        self.nearest: str | None = None  # the agent it belongs to (itself, named, or ancestor)
        self.resolved = False  # nearest is final: children may use it
        self.started: str | None = None  # "task" | "span": what its start event was
        self.job = False  # it opened a job
        self.delegated = False  # its delegation flow was decided
        self.child_usage = False  # a descendant reported tokens
        self.held = False
        self.released = False
        self.deadline = 0.0


def _agent_name(value: str | None) -> str | None:
    """A valid event ``agent`` (printable, at most 128 characters) or None."""
    if not value:
        return None
    if len(value) > MAX_NAME:
        value = value[: MAX_NAME - 1] + "…"
    return value if value.isprintable() else None


class Correlator:
    """Turns span records into hub events (see the module docstring).

    Args:
        emit: called with each batch of :class:`Event` produced by one call.
        capture_content: keep content (``input``, ``output``) in the events.
        hold: seconds a span waits at most for an unknown parent (see above).
        clock: monotonic seconds, for hold deadlines.
    """

    def __init__(
        self,
        emit: Callable[[list[Event]], Any],
        *,
        capture_content: bool,
        hold: float = DEFAULT_HOLD,
        clock: Callable[[], float] = time.monotonic,
        max_nodes: int = MAX_NODES,
        max_held: int = MAX_HELD,
    ) -> None:
        self.emit = emit
        self.capture_content = capture_content
        self.hold = float(hold)
        self.clock = clock
        self.max_nodes = max_nodes
        self.max_held = max_held
        self._nodes: OrderedDict[str, _Node] = OrderedDict()
        self._held: dict[str, list[_Node]] = {}  # parent span id → ended children waiting
        self._held_order: deque[_Node] = deque()
        self._held_count = 0
        self._waiting_flows: OrderedDict[str, list[_Node]] = OrderedDict()
        self._node_names: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._announced: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._models: OrderedDict[str, Any] = OrderedDict()
        self._open_tasks: dict[str, str] = {}  # span id → agent, in-process agent spans open
        self._out: list[Event] = []
        # counters (health)
        self.spans = 0
        self.rejected_events = 0
        self.released_early = 0
        self.repaired = 0
        self.restamped = 0
        self.dropped_attributes = 0
        self.aggregates_dropped = 0

    # -- public --------------------------------------------------------------------------------
    def start(self, record: SpanRecord) -> None:
        """An in-process span began (its attributes so far)."""
        node = self._nodes.get(record.span_id)
        if node is not None:
            return  # seen twice: ignore the repeat
        self._repair(record)
        node = _Node(record)
        self._remember(node)
        norm = normalize(record, self.capture_content)
        node.norm = norm
        parent = self._nodes.get(record.parent_id) if record.parent_id else None
        ancestor, known = self._ancestor(parent)
        if norm.semantic:
            node.kind = norm.kind
        if norm.semantic and norm.is_agent:
            node.agent = _agent_name(norm.agent)
            node.nearest, node.resolved = node.agent, True
            self._task_started(node, norm, record.start)
            if known and norm.agent_named:
                self._delegation(node, norm, ancestor)
        else:
            if norm.semantic and norm.agent_named:
                node.nearest, node.resolved = _agent_name(norm.agent), True
            else:
                node.nearest = ancestor
                # An unclassified span (no vocabulary yet) may turn out to be an agent when it
                # ends: its descendants wait for it.
                node.resolved = known and (norm.semantic or not self._pending(record))
            self._span_started(node, norm)
        if record.parent_id is None and norm.semantic:
            self._job_started(node)
        self._flush()

    def end(self, record: SpanRecord) -> None:
        """A span ended (in-process), or arrived ended (OTLP)."""
        self._end(record)
        self.sweep()
        self._flush()

    def end_many(self, records: list[SpanRecord]) -> None:
        """Several ended spans (an OTLP request): their events go to ``emit`` as one batch."""
        end = self._end
        for record in records:
            end(record)
        self.sweep()
        self._flush()

    def _end(self, record: SpanRecord) -> None:
        self.spans += 1
        node = self._nodes.get(record.span_id)
        if node is None:
            node = _Node(record)
            self._remember(node)
        elif node.released or node.held:
            return  # a duplicate (an exporter's retry): applied once
        node.record = record
        self._repair(record)
        norm = normalize(record, self.capture_content)
        self.dropped_attributes += norm.dropped
        node.norm = norm
        if node.started != "task":
            node.kind = norm.kind if norm.semantic else "other"
        if node.kind == "agent":
            node.agent = node.agent or _agent_name(norm.agent)
            node.nearest = node.agent
        elif norm.agent_named:
            node.nearest = _agent_name(norm.agent)
        if node.kind == "agent" or norm.agent_named:
            self._release(node, known_self=True)
        else:
            parent = self._nodes.get(record.parent_id) if record.parent_id else None
            if record.parent_id is None or record.parent_remote:
                self._release(node, known_self=False)
            elif parent is None:
                if node.started is not None:  # in-process, parent never seen: a local root
                    self._release(node, known_self=False)
                else:
                    self._hold(node, record.parent_id)
            elif parent.resolved or parent.released:
                self._release(node, known_self=False)
            else:
                self._hold(node, record.parent_id)

    def _repair(self, record: SpanRecord) -> None:
        """Times that cannot be: a start that is not a number (now), an end before the start
        (the start: a duration of 0). Counted in ``repaired``."""
        if not math.isfinite(record.start):
            record.start = time.time()
            self.repaired += 1
        end = record.end
        if end is not None and (not end >= record.start):
            record.end = record.start
            self.repaired += 1

    def sweep(self, now: float | None = None, everything: bool = False) -> int:
        """Release held spans whose time is up (all of them with ``everything``)."""
        now = self.clock() if now is None else now
        order = self._held_order
        n = 0
        while order and (everything or order[0].deadline <= now):
            node = order.popleft()
            parent = self._nodes.get(node.parent_id or "")
            if not everything and parent is not None and parent.held:
                continue  # its parent arrived and waits too: released with it
            if node.held and not node.released:
                self._unhold(node)
                self.released_early += 1
                self._release(node, known_self=False)
                n += 1
        if n:
            self._flush()
        return n

    def open_agents(self) -> set[str]:
        """Agents with an agent span open now (in-process), for heartbeats."""
        return set(self._open_tasks.values())

    @property
    def held(self) -> int:
        return self._held_count

    def counters(self) -> dict[str, int]:
        return {
            "spans": self.spans,
            "held": self._held_count,
            "released_early": self.released_early,
            "repaired": self.repaired,
            "restamped": self.restamped,
            "rejected_events": self.rejected_events,
            "dropped_attributes": self.dropped_attributes,
            "aggregates_dropped": self.aggregates_dropped,
        }

    # -- ancestry ------------------------------------------------------------------------------
    @staticmethod
    def _pending(record: SpanRecord) -> bool:
        # A span with no attributes at all at its start: OpenInference (LangChain) sets every
        # attribute when the span ends, so it may be an agent. HTTP or database spans describe
        # themselves at start and are taken for what they say.
        return not record.attributes

    @staticmethod
    def _ancestor(parent: _Node | None) -> tuple[str | None, bool]:
        """(nearest agent above, whether that is final)."""
        if parent is None:
            return None, True
        return parent.nearest, parent.resolved or parent.released

    def _remember(self, node: _Node) -> None:
        nodes = self._nodes
        nodes[node.record.span_id] = node
        if len(nodes) > self.max_nodes:
            nodes.popitem(last=False)

    def _hold(self, node: _Node, parent_id: str) -> None:
        if self._held_count >= self.max_held:
            oldest = None
            while self._held_order:
                oldest = self._held_order.popleft()
                if oldest.held and not oldest.released:
                    break
                oldest = None
            if oldest is not None:
                self._unhold(oldest)
                self.released_early += 1
                self._release(oldest, known_self=False)
        node.held = True
        node.deadline = self.clock() + self.hold
        self._held.setdefault(parent_id, []).append(node)
        order = self._held_order
        order.append(node)
        self._held_count += 1
        if len(order) > 2 * self.max_held:
            # Released spans stay in the deadline queue until their time; drop them now.
            self._held_order = deque(n for n in order if n.held and not n.released)

    def _unhold(self, node: _Node) -> None:
        node.held = False
        self._held_count -= 1
        siblings = self._held.get(node.parent_id or "")
        if siblings is not None:
            try:
                siblings.remove(node)
            except ValueError:
                pass
            if not siblings:
                del self._held[node.parent_id or ""]

    # -- release -------------------------------------------------------------------------------
    def _release(self, node: _Node, known_self: bool) -> None:
        """Emit what an ended span means, now that the agent it belongs to is known; then
        release the spans held below it."""
        if node.released:
            return
        node.released = True
        record = node.record
        norm = node.norm
        assert norm is not None
        parent = self._nodes.get(record.parent_id) if record.parent_id else None
        ancestor = parent.nearest if parent is not None else None
        if not known_self:
            node.nearest = ancestor
        node.resolved = True

        if node.kind == "agent":
            if node.started != "task":
                self._task_started(node, norm, record.start)
            if not node.delegated:
                if parent is not None and (parent.resolved or parent.released):
                    self._delegation(node, norm, ancestor)
                elif record.parent_id and not norm.parent_node and not record.parent_remote:
                    waiting = self._waiting_flows.setdefault(record.parent_id, [])
                    waiting.append(node)
                    if len(self._waiting_flows) > MAX_HELD:
                        self._waiting_flows.popitem(last=False)
                else:
                    self._delegation(node, norm, None)
        if record.parent_id is None and norm.semantic and not node.job:
            self._job_started(node)

        children = self._held.pop(record.span_id, None)
        if children:
            # Held spans are neither agents nor named: they take this span's agent.
            for child in sorted(children, key=lambda c: c.record.start):
                if child.held:
                    child.held = False
                    self._held_count -= 1
                    self._release(child, known_self=False)
        waiting = self._waiting_flows.pop(record.span_id, [])
        if waiting:
            for agent_node in waiting:
                if not agent_node.delegated and agent_node.norm is not None:
                    self._delegation(agent_node, agent_node.norm, node.nearest)

        if norm.handoff_to:
            self._flow(node.nearest, _agent_name(norm.handoff_to), "handoff", node)
        if node.kind == "agent":
            self._task_ended(node, norm)
        else:
            self._span_ended(node, norm)
        if node.job:
            self._job_ended(node, norm)
        # What an ended span's descendants may still need is its ids, agent and flags: its
        # attributes and meaning go now (memory, and the garbage collector's walks over the
        # MAX_NODES spans kept for late children).
        if node.delegated or node.kind != "agent":  # an agent waiting for its delegator keeps it
            node.norm = None
        record.attributes = _EMPTY
        record.events = ()
        record.resource = _EMPTY

    # -- events --------------------------------------------------------------------------------
    def _event(
        self, topic: str, agent: str | None, data: dict[str, Any], ts: float, node: _Node
    ) -> None:
        # Built without Event.create's validation, which would cost as much again as all the
        # rest: every value put in ``data`` here is JSON-safe by construction (texts through
        # semconv.clip / _text, attributes through semconv.safe_value, finite numbers, hex
        # ids), agents through _agent_name. tests/otel check that each event survives
        # Event.from_dict(event.to_dict()) unchanged.
        if not (0.0 < ts < 1e11) or math.isnan(ts):
            self.restamped += 1  # a time that is not unix seconds: stamped now
            ts = time.time()
        self._out.append(
            Event(topic, agent, data, ts, f"{_ID_PREFIX}-{next(_ID_COUNTER)}",
                  node.trace_id or None, node.record.span_id or None)
        )  # fmt: skip

    def _flush(self) -> None:
        if self._out:
            out, self._out = self._out, []
            self.emit(out)

    def _register(self, agent: str | None, model: str | None, node: _Node) -> None:
        """``agent.registered`` the first time an agent is seen, and when its model changes."""
        if agent is None:
            return
        models = self._models
        known = models.get(agent, _MISSING)
        if known is not _MISSING and (model is None or known == model):
            return
        models[agent] = model if model is not None else known if known is not _MISSING else None
        if len(models) > MAX_AGENTS_SEEN:
            models.popitem(last=False)
        data: dict[str, Any] = {"source": "opentelemetry"}
        if model is not None:
            data["model"] = model
        self._event("agent.registered", agent, data, node.record.start, node)

    def _common(self, node: _Node) -> dict[str, Any]:
        data: dict[str, Any] = {"job_id": node.trace_id}
        if node.parent_id:
            data["parent_id"] = node.parent_id
        return data

    def _task_started(self, node: _Node, norm: Norm, ts: float) -> None:
        node.started = "task"
        node.kind = "agent"
        model = norm.model_response or norm.model_request
        self._register(node.agent, model, node)
        data = self._common(node)
        data["task"] = norm.task or clip(node.record.name, 500) or "agent"
        data["task_id"] = node.record.span_id
        data["kind"] = "agent"
        if norm.model_request:
            data["model"] = norm.model_request
        if norm.input is not None:
            data["input"] = norm.input
        if norm.node_id and node.agent:
            names = self._node_names
            names[(node.trace_id, norm.node_id)] = node.agent
            if len(names) > MAX_AGENTS_SEEN:
                names.popitem(last=False)
        if node.record.end is None and node.agent:
            self._open_tasks[node.record.span_id] = node.agent
            if len(self._open_tasks) > MAX_HELD:
                self._open_tasks.pop(next(iter(self._open_tasks)))
        self._event("agent.task.started", node.agent, data, ts, node)

    def _task_ended(self, node: _Node, norm: Norm) -> None:
        record = node.record
        self._open_tasks.pop(record.span_id, None)
        end = record.end if record.end is not None else record.start
        data: dict[str, Any] = {
            "task_id": record.span_id,
            "job_id": node.trace_id,
            "duration": max(0.0, end - record.start),
        }
        if norm.model_response:
            data["model"] = norm.model_response
        if norm.output is not None:
            data["output"] = norm.output
        if norm.attributes:
            data["attributes"] = norm.attributes
        if norm.has_usage:
            if node.child_usage:
                self.aggregates_dropped += 1
            else:
                usage = {
                    "prompt": norm.prompt_tokens or 0,
                    "completion": norm.completion_tokens or 0,
                    "cost_usd": norm.cost_usd or 0.0,
                }
                self._event("agent.tokens", node.agent, usage, end, node)
                self._mark_usage(node)
        if norm.status == "ok":
            self._event("agent.task.completed", node.agent, data, end, node)
        else:
            data["error_type"] = norm.error_type
            data["error"] = norm.error
            if norm.status == "cancelled":
                data["cancelled"] = True
            self._event("agent.task.failed", node.agent, data, end, node)

    def _span_started(self, node: _Node, norm: Norm) -> None:
        node.started = "span"
        data = self._common(node)
        data["name"] = clip(node.record.name) or "span"
        data["kind"] = node.kind
        if norm.model_request:
            data["model"] = norm.model_request
        if norm.input is not None:
            data["input"] = norm.input
        if norm.attributes:
            data["attributes"] = norm.attributes
        self._event("span.started", node.nearest, data, node.record.start, node)

    def _span_ended(self, node: _Node, norm: Norm) -> None:
        record = node.record
        end = record.end if record.end is not None else record.start
        data: dict[str, Any] = {"status": norm.status}
        if node.started is None:
            data.update(self._common(node))
            data["start"] = record.start
            data["name"] = clip(record.name) or "span"
        data["kind"] = node.kind
        if norm.error_type is not None:
            data["error_type"] = norm.error_type
            data["error"] = norm.error
        model = norm.model_response or norm.model_request
        if model:
            data["model"] = model
            if node.kind == "llm":
                self._register(node.nearest, model, node)
        if norm.has_usage:
            if node.kind == "llm" or not node.child_usage:
                data["prompt_tokens"] = norm.prompt_tokens or 0
                data["completion_tokens"] = norm.completion_tokens or 0
                if norm.cost_usd is not None:
                    data["cost_usd"] = norm.cost_usd
                self._mark_usage(node)
            else:
                self.aggregates_dropped += 1
        if norm.tool:
            data["tool"] = norm.tool
        if norm.output is not None:
            data["output"] = norm.output
        if norm.attributes:
            data["attributes"] = norm.attributes
        self._event("span.ended", node.nearest, data, end, node)

    def _mark_usage(self, node: _Node) -> None:
        """Tell every ancestor that usage below it was reported (aggregates are dropped)."""
        parent_id = node.parent_id
        nodes = self._nodes
        for _ in range(256):
            if not parent_id:
                return
            parent = nodes.get(parent_id)
            if parent is None or parent.child_usage:
                return
            parent.child_usage = True
            parent_id = parent.parent_id

    def _job_started(self, node: _Node) -> None:
        node.job = True
        data = {"job_id": node.trace_id, "kind": clip(node.record.name, MAX_NAME) or "trace"}
        self._event("job.started", None, data, node.record.start, node)

    def _job_ended(self, node: _Node, norm: Norm) -> None:
        record = node.record
        end = record.end if record.end is not None else record.start
        topic = {"ok": "job.completed", "error": "job.failed"}.get(norm.status, "job.cancelled")
        self._event(topic, None, {"job_id": node.trace_id}, end, node)

    # -- flows ---------------------------------------------------------------------------------
    def _delegation(self, node: _Node, norm: Norm, ancestor: str | None) -> None:
        """The flow that brought work to an agent span: graph.node.parent_id first, else the
        nearest agent ancestor."""
        node.delegated = True
        target = node.agent
        source: str | None = None
        kind = "delegate"
        if norm.parent_node:
            source = self._node_names.get((node.trace_id, norm.parent_node)) or _agent_name(
                norm.parent_node
            )
            kind = "handoff"
        elif ancestor is not None:
            source = ancestor
        self._flow(source, target, kind, node)

    def _flow(self, source: str | None, target: str | None, kind: str, node: _Node) -> None:
        if not source or not target or source == target:
            return
        if kind == "handoff":
            # A handoff span and the delegate's graph.node.parent_id describe one handoff:
            # the first seen is sent, the second only consumes the pairing.
            key = (node.trace_id, source, target)
            announced = self._announced
            if key in announced:
                del announced[key]
                return
            announced[key] = None
            if len(announced) > MAX_AGENTS_SEEN:
                announced.popitem(last=False)
        self._event(
            "agent.message",
            source,
            {"target": target, "kind": kind, "job_id": node.trace_id},
            node.record.start,
            node,
        )
