"""The event envelope: validation, normalisation and the Codeur ``AgentEvent`` form.

An :class:`Event` is what travels on the bus. It is deliberately small (``__slots__``) and cheap to
build, because ingest must keep up with hundreds of thousands of events per second.

Validation rules (DESIGN section 4):

* ``topic``: dotted, ``[a-z0-9_.-]{1,128}`` (Codeur's ``event_type``);
* ``agent``: ``None`` or a printable string of at most 128 characters (Codeur's ``agent_name``);
* ``data``: a JSON-serialisable dict; strings longer than :data:`MAX_STRING` are cut to fit it,
  :data:`TRUNCATION_MARKER` included, not rejected; nesting deeper than :data:`MAX_DEPTH` and
  integers beyond ±2**63 are rejected;
* ``ts``: unix seconds; ISO-8601 strings and epoch milliseconds are accepted on input;
* ``id``, ``trace_id``, ``span_id``: ``None`` or short strings; ``id`` is generated when absent.

A programmer's mistake raises :class:`InvalidEvent`, a :class:`ValueError` whose ``field`` names
what is wrong.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Protocol

__all__ = [
    "MAX_DEPTH",
    "MAX_STRING",
    "TRUNCATION_MARKER",
    "Event",
    "InvalidEvent",
    "Publisher",
]

MAX_STRING = 8192
"""Longest string kept whole inside ``data``; longer ones are cut and marked."""
MAX_NAME = 128
MAX_ID = 256
MAX_INT = 2**63
"""Integers in data must lie within ±2**63 (beyond, JSON readers and the stores lose them)."""
MAX_DEPTH = 32
TRUNCATION_MARKER = "…[truncated {n} chars]"

_TOPIC_RE = re.compile(r"[a-z0-9_.\-]{1,128}")
# Timestamps beyond these bounds are almost certainly a unit mistake (ns, µs) or garbage.
_MIN_TS = 0.0
_MAX_TS_SECONDS = 1e11  # year ~5138; anything larger is taken as milliseconds
_MAX_TS_MS = 1e14

# Event ids: a per-process random prefix plus a counter. ``next()`` on ``itertools.count`` is
# atomic under the GIL, so ids are unique across threads without a lock, and far cheaper than uuid4.
_ID_PREFIX = os.urandom(4).hex()
_ID_COUNTER = itertools.count(1)

# Validated topics and agent names are cached: real streams use a handful of them.
_valid_topics: set[str] = set()
_valid_agents: set[str] = set()
_CACHE_LIMIT = 10_000


class InvalidEvent(ValueError):
    """An event that cannot be accepted. ``field`` names the offending field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"invalid event field {field!r}: {reason}")
        self.field = field
        self.reason = reason


def finite_number(value: object) -> float | None:
    """A finite float from an int or float field (never a bool), else None: how the stores read
    the numbers agents report (tokens, costs, durations) without trusting them."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def whole_number(value: object) -> int | None:
    """A non-negative whole number (``812`` or ``812.0``, as JSON may give), else None."""
    f = finite_number(value)
    if f is None or f < 0 or not f.is_integer():
        return None
    return int(f)


def new_event_id() -> str:
    """A process-unique event id."""
    return f"{_ID_PREFIX}-{next(_ID_COUNTER)}"


def check_topic(topic: object) -> str:
    """Return ``topic`` if valid, else raise :class:`InvalidEvent`."""
    if type(topic) is str and topic in _valid_topics:
        return topic
    if not isinstance(topic, str):
        raise InvalidEvent("topic", f"must be a string, got {type(topic).__name__}")
    if not _TOPIC_RE.fullmatch(topic):
        shown = topic if len(topic) <= 40 else topic[:40] + "…"
        raise InvalidEvent(
            "topic", f"{shown!r} must match [a-z0-9_.-]{{1,128}} (dotted lower-case)"
        )
    if len(_valid_topics) < _CACHE_LIMIT:
        _valid_topics.add(topic)
    return topic


def check_agent(agent: object) -> str | None:
    """Return ``agent`` if valid (``None`` allowed), else raise :class:`InvalidEvent`."""
    if agent is None:
        return None
    if type(agent) is str and agent in _valid_agents:
        return agent
    if not isinstance(agent, str):
        raise InvalidEvent("agent", f"must be a string or None, got {type(agent).__name__}")
    if not agent:
        raise InvalidEvent("agent", "must not be empty")
    if len(agent) > MAX_NAME:
        raise InvalidEvent("agent", f"longer than {MAX_NAME} characters ({len(agent)})")
    if not agent.isprintable():
        raise InvalidEvent("agent", "contains non-printable characters")
    if len(_valid_agents) < _CACHE_LIMIT:
        _valid_agents.add(agent)
    return agent


def _check_optional_id(field: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidEvent(field, f"must be a string or None, got {type(value).__name__}")
    if not value or len(value) > MAX_ID:
        raise InvalidEvent(field, f"must be 1 to {MAX_ID} characters")
    if not value.isascii() and not value.isprintable():
        raise InvalidEvent(field, "contains non-printable characters")
    return value


def _quick_id(value: object) -> bool:
    """True for an id that :func:`_check_optional_id` accepts as it is, ASCII (the common case)."""
    return type(value) is str and 0 < len(value) <= MAX_ID and value.isascii()


_MISSING = object()


def _utf8_safe(text: str) -> str:
    """``text`` with lone surrogates (valid in JSON's ``\ud800`` escapes, invalid in UTF-8)
    replaced by U+FFFD, so every snapshot holding it can still be sent to the browser."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


def parse_ts(value: object, field: str = "ts") -> float:
    """Normalise a timestamp to unix seconds.

    Accepts seconds (int/float), epoch milliseconds (numbers above ~1e11, Codeur's form), and
    ISO-8601 strings (naive ones are taken as UTC). Rejects NaN, infinities, negatives, booleans.
    """
    if isinstance(value, bool):
        raise InvalidEvent(field, "must be a number or an ISO-8601 string, got bool")
    if isinstance(value, (int, float)):
        try:
            ts = float(value)
        except OverflowError:
            raise InvalidEvent(field, "is too large for seconds or milliseconds") from None
        if not math.isfinite(ts):
            raise InvalidEvent(field, "must be finite")
        if ts < _MIN_TS:
            raise InvalidEvent(field, "must not be negative")
        if ts > _MAX_TS_SECONDS:
            if ts > _MAX_TS_MS:
                raise InvalidEvent(field, f"{value!r} is too large for seconds or milliseconds")
            ts /= 1000.0
        return ts
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            shown = value if len(value) <= 40 else value[:40] + "…"
            raise InvalidEvent(field, f"{shown!r} is not an ISO-8601 timestamp") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parse_ts(parsed.timestamp(), field)
    raise InvalidEvent(field, f"must be a number or an ISO-8601 string, got {type(value).__name__}")


def _truncate(text: str) -> str:
    # The result, marker included, fits in MAX_STRING, so truncating again changes nothing (an
    # event read back from history or Redis equals the one that was stored).
    keep = MAX_STRING - len(TRUNCATION_MARKER.format(n=len(text)))
    return text[:keep] + TRUNCATION_MARKER.format(n=len(text) - keep)


def clean_value(value: Any, path: str, depth: int = 0) -> Any:
    """Return a JSON-safe copy of ``value`` or raise :class:`InvalidEvent` naming ``path``.

    Strings longer than :data:`MAX_STRING` are truncated with a marker. NaN and infinities are
    rejected (JSON has no such numbers). Tuples become lists. Mapping keys must be strings.
    """
    t = type(value)
    if t is str:
        if not value.isascii():
            value = _utf8_safe(value)
        return value if len(value) <= MAX_STRING else _truncate(value)
    if t is int:
        if not -MAX_INT <= value <= MAX_INT:
            raise InvalidEvent(path, f"integers must be within ±2**63 (got {_int_digits(value)})")
        return value
    if t is bool or value is None:
        return value
    if t is float:
        if not math.isfinite(value):
            raise InvalidEvent(path, "NaN and infinity are not JSON numbers")
        return value
    if depth >= MAX_DEPTH:
        raise InvalidEvent(path, f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidEvent(path, f"keys must be strings, got {type(key).__name__}")
            out[key] = clean_value(item, f"{path}.{key}", depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [clean_value(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
    if isinstance(value, str):  # str subclasses
        return clean_value(str(value), path, depth)
    # int/float subclasses (IntEnum, numpy.float64) become plain numbers.
    if isinstance(value, float):
        return clean_value(float(value), path, depth)
    if isinstance(value, int):
        return clean_value(int(value), path, depth)
    raise InvalidEvent(path, f"{type(value).__name__} is not JSON-serialisable")


def _int_digits(value: int) -> str:
    # str() of a huge int is itself refused beyond 4,300 digits: describe it by its size.
    return f"an integer of {value.bit_length()} bits"


def clean_data(data: object) -> dict[str, Any]:
    """Validate an event's ``data`` (a dict). The fast path leaves flat, short dicts untouched."""
    if data is None:
        return {}
    if type(data) is dict:
        # Fast path: a flat dict of short strings and finite numbers needs no copy.
        for key, value in data.items():
            t = type(value)
            if type(key) is not str:
                break
            if t is str:
                if len(value) > MAX_STRING or not value.isascii():
                    break
            elif t is float:
                if value != value or value in (math.inf, -math.inf):
                    break
            elif t is int:
                if not -MAX_INT <= value <= MAX_INT:
                    break
            elif not (t is bool or value is None):
                break
        else:
            return data
    if not isinstance(data, Mapping):
        raise InvalidEvent("data", f"must be a dict, got {type(data).__name__}")
    cleaned: dict[str, Any] = clean_value(data, "data")
    return cleaned


class Event:
    """One validated event. Build with :meth:`create` (validates) or :meth:`from_dict`."""

    __slots__ = ("agent", "data", "id", "span_id", "topic", "trace_id", "ts")

    topic: str
    agent: str | None
    data: dict[str, Any]
    ts: float
    id: str
    trace_id: str | None
    span_id: str | None

    def __init__(
        self,
        topic: str,
        agent: str | None,
        data: dict[str, Any],
        ts: float,
        id: str,
        trace_id: str | None = None,
        span_id: str | None = None,
    ) -> None:
        # Unchecked constructor for already-validated values; use create()/from_dict() otherwise.
        self.topic = topic
        self.agent = agent
        self.data = data
        self.ts = ts
        self.id = id
        self.trace_id = trace_id
        self.span_id = span_id

    @classmethod
    def create(
        cls,
        topic: str,
        agent: str | None = None,
        data: Mapping[str, Any] | None = None,
        *,
        ts: float | str | None = None,
        id: str | None = None,
        trace_id: str | None = None,
        span_id: str | None = None,
        clock: Any = time.time,
    ) -> Event:
        """Validate and build an event; raises :class:`InvalidEvent` naming the bad field."""
        if (
            ts is None
            and id is None
            and type(topic) is str
            and topic in _valid_topics
            and (agent is None or (type(agent) is str and agent in _valid_agents))
            and (
                trace_id is None
                or (type(trace_id) is str and 0 < len(trace_id) <= MAX_ID and trace_id.isascii())
            )
            and (
                span_id is None
                or (type(span_id) is str and 0 < len(span_id) <= MAX_ID and span_id.isascii())
            )
        ):
            # The common case (a topic and agent already seen, stamped now; span ids as the
            # agent API makes them), in as few calls as possible: an agent thread publishing
            # every few ms pays each call with cold caches. Hub.publish_threadsafe repeats this
            # test and new_event_id() inline: keep them equal (tests/core/test_hub.py checks
            # that both build the same event).
            return cls(topic, agent, clean_data(data), clock(), new_event_id(), trace_id, span_id)
        return cls(
            check_topic(topic),
            check_agent(agent),
            clean_data(data),
            clock() if ts is None else parse_ts(ts),
            new_event_id() if id is None else _check_optional_id("id", id) or new_event_id(),
            _check_optional_id("trace_id", trace_id),
            _check_optional_id("span_id", span_id),
        )

    @classmethod
    def from_dict(cls, raw: object, *, clock: Any = time.time) -> Event:
        """Build from our JSON form or Codeur's ``AgentEvent`` form.

        Ours: ``{"topic", "agent", "data", "ts", "id", "trace_id", "span_id"}``.
        Codeur's: ``{"event_type", "agent_name", "data", "timestamp", "event_id", ...}`` with
        ``timestamp`` as an ISO string or epoch milliseconds. Unknown keys are ignored.
        """
        if type(raw) is dict:
            # Our own form as emitters and the history write it (a topic and agent already seen,
            # ts in seconds, an id), built in one step: a transport reads tens of thousands a
            # second, and this is what the checks below accept for it. Anything else (Codeur's
            # form, an agent key left out, ts as text or milliseconds, a non-ASCII id) goes the
            # long way. tests/core/test_events.py checks that both give the same event.
            topic = raw.get("topic")
            agent = raw.get("agent", _MISSING)
            ts = raw.get("ts")
            event_id = raw.get("id")
            trace_id = raw.get("trace_id") or None
            span_id = raw.get("span_id") or None
            if (
                type(topic) is str
                and topic in _valid_topics
                and (agent is None or (type(agent) is str and agent in _valid_agents))
                and type(ts) is float
                and _MIN_TS <= ts <= _MAX_TS_SECONDS
                and type(event_id) is str
                and 0 < len(event_id) <= MAX_ID
                and event_id.isascii()
                and (trace_id is None or _quick_id(trace_id))
                and (span_id is None or _quick_id(span_id))
            ):
                data = clean_data(raw.get("data"))
                return cls(topic, agent, data, ts, event_id, trace_id, span_id)
        if not isinstance(raw, Mapping):
            raise InvalidEvent("event", f"must be a JSON object, got {type(raw).__name__}")
        topic = raw.get("topic", raw.get("event_type"))
        if topic is None:
            raise InvalidEvent("topic", "missing (expected 'topic' or 'event_type')")
        agent = raw.get("agent", raw.get("agent_name"))
        ts = raw.get("ts", raw.get("timestamp"))
        event_id = raw.get("id", raw.get("event_id"))
        return cls.create(
            topic,
            agent,
            raw.get("data"),
            ts=ts,
            id=event_id if event_id not in ("", None) else None,
            trace_id=raw.get("trace_id") or None,
            span_id=raw.get("span_id") or None,
            clock=clock,
        )

    def to_dict(self) -> dict[str, Any]:
        """Our JSON form; ``Event.from_dict(e.to_dict())`` gives an equal event."""
        return {
            "topic": self.topic,
            "agent": self.agent,
            "data": self.data,
            "ts": self.ts,
            "id": self.id,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
        }

    def to_agent_event(self) -> dict[str, Any]:
        """Codeur's ``AgentEvent`` form (timestamp as epoch milliseconds)."""
        return {
            "event_type": self.topic,
            "agent_name": self.agent or "",
            "event_id": self.id,
            "timestamp": round(self.ts * 1000),
            "data": self.data,
            "trace_id": self.trace_id or "",
            "span_id": self.span_id or "",
        }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Event(topic={self.topic!r}, agent={self.agent!r}, ts={self.ts:.3f}, "
            f"data={self.data!r})"
        )


class Publisher(Protocol):
    """Where events are published by keyword: a :class:`~codeur_widgets.core.hub.Hub`, an
    :class:`~codeur_widgets.emit.Emitter`, or anything with the same ``publish`` (what
    :func:`~codeur_widgets.transports.bridge.bridge` forwards to).

    The hub and the emitter inherit :meth:`publish` from here, its one definition; each supplies
    ``clock`` and :meth:`_accept` (the hub applies the event, the emitter queues it for Redis).
    """

    clock: Any

    def publish(
        self,
        topic: str,
        agent: str | None = None,
        *,
        data: Mapping[str, Any] | None = None,
        ts: float | str | None = None,
        id: str | None = None,
        trace_id: str | None = None,
        span_id: str | None = None,
        **fields: Any,
    ) -> Event:
        """Validate one event and hand it on; returns it. A mistake raises
        :class:`InvalidEvent` naming the field, in the caller.

        Keyword arguments other than the envelope's go into ``data``:
        ``publish("job.enqueued", job_id="job-7", kind="code_generation")``. A hub applies the
        event now (from a thread other than its loop's, it buffers it like
        ``publish_threadsafe``); an emitter queues it for Redis and never blocks.
        """
        if fields:
            data = {**data, **fields} if data else fields
        event = Event.create(
            topic, agent, data, ts=ts, id=id, trace_id=trace_id, span_id=span_id, clock=self.clock
        )
        self._accept(event)
        return event

    def _accept(self, event: Event) -> None:
        """Take a validated event (apply it, queue it): what :meth:`publish` ends with."""
        raise NotImplementedError
