"""Forward messages of an in-process message bus (such as Codeur's) to a Hub or an Emitter.

Any bus with ``subscribe(topic, callback)`` works. Each message becomes one event:

* a message in the envelope form (a dict or object with ``topic``/``event_type``, ``agent`` /
  ``agent_name``, ``data``, ``timestamp``…, e.g. Codeur's ``AgentEvent``) keeps its fields;
* any other message (a plain payload dict such as ``{"agent_type": "coding_agent",
  "task_description": "…"}``, a dataclass, a protobuf message, an object) becomes the ``data``
  of an event whose topic is the subscribed topic, and whose agent is the payload's
  ``agent_name``, ``agent_type``, ``agent`` or ``source`` field. Codeur's ``task_description``
  is also given as ``task``, the field the dashboard reads.

Example, in the process that runs Codeur's agents (``target`` is a Hub when the dashboard runs in
the same process, an :class:`~codeur_widgets.emit.Emitter` when it runs elsewhere)::

    from codeur_widgets.emit import Emitter
    from codeur_widgets.transports.bridge import bridge

    emitter = Emitter("redis://localhost:6379/0")
    link = bridge(
        message_bus,
        ["agent.task.started", "agent.task.completed", "agent.error", "job.status.changed"],
        emitter,
    )
    ...
    link.close()

A message that cannot become an event is counted (``rejected``), never raised into the bus.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import enum
import logging
import re
from collections.abc import Callable, Generator, Iterable, Mapping
from typing import Any

from ..core.events import Event, Publisher, check_topic

__all__ = ["Bridge", "Publisher", "bridge"]

log = logging.getLogger("codeur_widgets.transports.bridge")

_TOPIC_BAD = re.compile(r"[^a-z0-9_.\-]+")
_AGENT_KEYS = ("agent_name", "agent_type", "agent", "source")
_ENVELOPE_KEYS = frozenset({"topic", "event_type"})
_MAX_DEPTH = 16


class _Done:
    """An awaitable that is already finished.

    Returned by the bridge's callback so that it suits a bus that calls handlers (and ignores the
    result) as well as one that awaits them (``await handler(msg)``), without creating a coroutine
    that a sync bus would leave un-awaited.
    """

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield  # pragma: no cover - makes this a generator


_DONE = _Done()


def normalise_topic(topic: object) -> str:
    """A bus topic as an event topic: lower case, other characters as ``_`` (empty: ``message``)."""
    text = _TOPIC_BAD.sub("_", str(topic).strip().lower())[:128].strip("_")
    return text or "message"


def _jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-friendly copy: datetimes as ISO text, enums as values, unknown objects as text."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if depth >= _MAX_DEPTH:
        return repr(value)[:200]
    if isinstance(value, enum.Enum):
        return _jsonable(value.value, depth + 1)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v, depth + 1) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    as_dict = _as_mapping(value)
    if as_dict is not None:
        return _jsonable(as_dict, depth + 1)
    return str(value)


def _as_mapping(message: Any) -> Mapping[str, Any] | None:
    """A dict view of a message object, or None if it has none."""
    if isinstance(message, Mapping):
        return message
    if isinstance(message, Event):
        return message.to_dict()
    if dataclasses.is_dataclass(message) and not isinstance(message, type):
        return dataclasses.asdict(message)
    if hasattr(message, "DESCRIPTOR") and hasattr(message, "ListFields"):  # a protobuf message
        try:
            from google.protobuf.json_format import MessageToDict
        except ImportError:
            return {f.name: v for f, v in message.ListFields()}
        result: dict[str, Any] = MessageToDict(message, preserving_proto_field_name=True)
        return result
    for method in ("to_dict", "model_dump", "dict"):
        fn = getattr(message, method, None)
        if callable(fn):
            with contextlib.suppress(Exception):
                out = fn()
                if isinstance(out, Mapping):
                    return out
    if hasattr(message, "__dict__") and not callable(message):
        return {k: v for k, v in vars(message).items() if not k.startswith("_")}
    return None


def to_event_fields(topic: str, message: Any) -> dict[str, Any]:
    """The keyword arguments of ``publish`` for ``message`` received on ``topic``."""
    mapping = _as_mapping(message)
    if mapping is None:
        return {"topic": normalise_topic(topic), "agent": None, "data": {"value": str(message)}}
    fields = dict(mapping)
    if _ENVELOPE_KEYS & fields.keys():
        name = fields.get("topic") or fields.get("event_type")
        agent = fields.get("agent") or fields.get("agent_name") or None
        data = fields.get("data")
        if isinstance(data, str):  # Codeur's protobuf carries data as JSON text at times
            data = {"value": data}
        return {
            "topic": normalise_topic(name),
            "agent": agent if isinstance(agent, str) else None,
            "data": _jsonable(data) if isinstance(data, Mapping) else {},
            "ts": fields.get("ts", fields.get("timestamp")) or None,
            "id": fields.get("id") or fields.get("event_id") or None,
            "trace_id": fields.get("trace_id") or None,
            "span_id": fields.get("span_id") or None,
        }
    agent = None
    for key in _AGENT_KEYS:
        value = fields.get(key)
        if isinstance(value, str) and value:
            agent = value
            break
    data = _jsonable(fields)
    if "task" not in data and isinstance(data.get("task_description"), str):
        data["task"] = data["task_description"]  # Codeur's name for what the cards show
    return {"topic": normalise_topic(topic), "agent": agent, "data": data}


class Bridge:
    """A live link from ``bus`` topics to ``target``; :meth:`close` unsubscribes.

    Args:
        bus: anything with ``subscribe(topic, callback)``; the callback is called with the
            message (or with ``(topic, message)``).
        topics: the topics to forward.
        target: a Hub, an Emitter, or any object with the same ``publish`` signature.
        topic_map: renames topics (``{"task_started": "agent.task.started"}``) or a function.
        convert: ``convert(topic, message) -> dict | None`` replaces the default conversion
            (return ``publish`` keywords: ``topic``, ``agent``, ``data``...; None skips).
        asynchronous: ``True`` subscribes an ``async def`` callback (for a bus that schedules
            handlers as tasks), ``False`` a plain function; ``None`` (default) a plain function
            whose result may also be awaited.
    """

    def __init__(
        self,
        bus: Any,
        topics: Iterable[str],
        target: Publisher,
        *,
        topic_map: Mapping[str, str] | Callable[[str], str] | None = None,
        convert: Callable[[str, Any], Mapping[str, Any] | None] | None = None,
        asynchronous: bool | None = None,
    ) -> None:
        if not callable(getattr(bus, "subscribe", None)):
            raise TypeError("bus must have a subscribe(topic, callback) method")
        if not callable(getattr(target, "publish", None)):
            raise TypeError("target must have a publish(topic, agent, data=...) method")
        self.target = target
        self.topic_map = topic_map
        self.convert = convert
        self.forwarded = 0
        self.rejected = 0
        self.last_error: str | None = None
        self.closed = False
        self._bus = bus
        self._subscriptions: list[tuple[str, Any, Any]] = []
        for topic in topics:
            callback = self._callback(topic, asynchronous)
            handle = bus.subscribe(topic, callback)
            self._subscriptions.append((topic, callback, handle))

    def _callback(self, topic: str, asynchronous: bool | None) -> Callable[..., Any]:
        if asynchronous:

            async def on_message_async(*args: Any) -> None:
                self.forward(topic, args[-1] if args else None)

            return on_message_async

        def on_message(*args: Any) -> Any:
            self.forward(topic, args[-1] if args else None)
            return None if asynchronous is False else _DONE

        return on_message

    def _map_topic(self, topic: str) -> str:
        mapping = self.topic_map
        if mapping is None:
            return topic
        if callable(mapping):
            return mapping(topic)
        return mapping.get(topic, topic)

    def forward(self, topic: str, message: Any) -> Event | None:
        """Publish ``message`` received on ``topic``; never raises (failures are counted)."""
        try:
            if self.convert is not None:
                converted = self.convert(topic, message)
                if converted is None:
                    return None
                fields = dict(converted)
                fields.setdefault("topic", normalise_topic(self._map_topic(topic)))
            else:
                fields = to_event_fields(self._map_topic(topic), message)
            name = check_topic(fields.pop("topic"))
            agent = fields.pop("agent", None)
            event = self.target.publish(name, agent, **fields)
        except Exception as exc:
            self.rejected += 1
            self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            if self.rejected == 1:
                log.warning("bridge could not forward a %r message: %s", topic, self.last_error)
            return None
        self.forwarded += 1
        return event

    def close(self) -> None:
        """Unsubscribe from the bus (best effort: ``handle.close()``/``unsubscribe()`` or
        ``bus.unsubscribe(topic, callback)``). Idempotent."""
        if self.closed:
            return
        self.closed = True
        for topic, callback, handle in self._subscriptions:
            with contextlib.suppress(Exception):
                for name in ("close", "unsubscribe", "cancel"):
                    method = getattr(handle, name, None)
                    if callable(method):
                        method()
                        break
                else:
                    unsubscribe = getattr(self._bus, "unsubscribe", None)
                    if callable(unsubscribe):
                        unsubscribe(topic, callback)
        self._subscriptions.clear()

    def health(self) -> dict[str, Any]:
        """Counters: ``forwarded``, ``rejected``, ``last_error``, ``topics``."""
        return {
            "kind": "bridge",
            "topics": [t for t, _, _ in self._subscriptions],
            "forwarded": self.forwarded,
            "rejected": self.rejected,
            "last_error": self.last_error,
            "closed": self.closed,
        }

    def __repr__(self) -> str:
        return f"<Bridge {len(self._subscriptions)} topic(s) → {type(self.target).__name__}>"


def bridge(bus: Any, topics: Iterable[str], target: Publisher, **options: Any) -> Bridge:
    """Forward ``topics`` of ``bus`` to ``target`` (a Hub or an Emitter); see :class:`Bridge`."""
    return Bridge(bus, topics, target, **options)
