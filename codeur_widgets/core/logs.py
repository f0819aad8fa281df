"""Log lines: a bounded, searchable ring buffer (:class:`LogBuffer`) and a logging bridge.

:class:`LogBuffer` is the ``logs`` store: it folds ``log`` events into a thread-safe ring of the
newest ``capacity`` records and answers filtered queries for the log tail.

:class:`LogHandler` turns :mod:`logging` records into ``log`` events through an injected
``publish(topic, agent, data)`` callable (for a hub: a wrapper around ``hub.publish_threadsafe``).
Unlike the original plan's handler (DESIGN section 10, defect 6) it never touches asyncio, so it
works from any thread, with or without an event loop, and it cannot recurse when the dashboard's
own code logs while a record is being published (see :class:`LogHandler` for the exact rule).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import operator
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from .clock import Clock, wall_clock
from .events import MAX_STRING, Event, check_agent
from .spans import current_span
from .store import Store

__all__ = [
    "LEVELS",
    "LogBuffer",
    "LogHandler",
    "capture_logging",
    "normalise_level",
]

LEVELS: dict[str, int] = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
}
"""The five level names a record can carry, with their :mod:`logging` numbers."""

# Accepted spellings (after strip().upper()) -> canonical name.
_LEVEL_ALIASES: dict[str, str] = {
    **{name: name for name in LEVELS},
    "WARN": "WARNING",
    "FATAL": "CRITICAL",
}

MAX_SOURCES = 1_000
"""Distinct sources remembered for :meth:`LogBuffer.sources` (a bound against unbounded names)."""

SNAPSHOT_BUDGET = 60_000
"""Serialised bytes the ``lines`` of a snapshot may take (the whole message must stay ≤ 64 KB)."""

SNAPSHOT_FIELD_CAP = 4_096
"""Characters of ``message`` and ``exc`` kept per snapshot line (``query`` returns them whole)."""

_SNAPSHOT_FIELD_MIN = 1_000
_CUT_MARKER = "…[{n} more chars]"

_HIERARCHY = "codeur_widgets"


class _Record(NamedTuple):
    # A tuple, not a dict: scanning 100,000 of them must stay well under 100 ms, and attribute
    # access on a named tuple is cheap while memory is a third of a dict's.
    seq: int
    ts: float
    levelno: int
    level: str
    source: str
    message: str
    thread: str | None
    function: str | None
    exc: str | None
    trace: str | None = None  # the trace (job) the line was written in, if known

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "ts": self.ts,
            "level": self.level,
            "source": self.source,
            "message": self.message,
            "thread": self.thread,
            "function": self.function,
            "exc": self.exc,
            "trace": self.trace,
        }


def _level_from_number(value: float) -> str:
    if value >= logging.CRITICAL:
        return "CRITICAL"
    if value >= logging.ERROR:
        return "ERROR"
    if value >= logging.WARNING:
        return "WARNING"
    if value >= logging.INFO:
        return "INFO"
    return "DEBUG"


def normalise_level(value: object) -> str | None:
    """The canonical level name for ``value``, or ``None`` if it is not a level.

    Names are case-insensitive (``warn`` and ``fatal`` are accepted); numbers, and strings of
    digits, map to the highest standard level they reach (``25`` → ``INFO``, ``5`` → ``DEBUG``).
    """
    if isinstance(value, str):
        name = _LEVEL_ALIASES.get(value)  # fast path: already canonical
        if name is not None:
            return name
        text = value.strip().upper()
        name = _LEVEL_ALIASES.get(text)
        if name is not None:
            return name
        if text.isdigit():
            return _level_from_number(int(text))
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return _level_from_number(value)
    return None


def _level_threshold(level: object) -> int:
    """A query's minimum level as a number; raises ``ValueError`` for something else."""
    name = normalise_level(level)
    if name is None:
        raise ValueError(f"unknown log level {level!r}: use one of {', '.join(LEVELS)} or a number")
    if isinstance(level, (int, float)) and not isinstance(level, bool):
        return int(level)  # a number keeps its exact threshold (e.g. 25 excludes INFO)
    return LEVELS[name]


def _text_field(value: object) -> tuple[str | None, bool]:
    """``(text or None, was_bad)`` for an optional string field of a ``log`` event."""
    if value is None or isinstance(value, str):
        return value, False
    return None, True


def _as_message(value: object) -> tuple[str, bool]:
    """``(message, was_coerced)``: messages are shown verbatim; non-strings as JSON text."""
    if isinstance(value, str):
        return value, False
    if value is None:
        return "", False
    try:
        text = json.dumps(value, default=repr, ensure_ascii=False)
    except Exception:  # e.g. a circular structure from an unvalidated event
        text = f"<unprintable {type(value).__name__}>"
    if len(text) > MAX_STRING:
        text = text[:MAX_STRING] + _CUT_MARKER.format(n=len(text) - MAX_STRING)
    return text, True


def _trace_of(data: dict[str, Any]) -> str | None:
    for key in ("trace_id", "job_id"):
        value = data.get(key)
        if isinstance(value, str) and 0 < len(value) <= 256:
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    return None


def _cap(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[:limit] + _CUT_MARKER.format(n=len(text) - limit)


DESTRUCTIVE_COMMANDS = frozenset(
    {"cancel", "restart", "mark_offline", "forget", "reset_counters", "simulator.stop"}
)
"""Admin commands that change or lose something: their log line is a WARNING (the others,
such as view changes, pauses and speeds, are INFO)."""

_TIME_ARGS = frozenset({"since", "until", "ts", "first", "last"})


def _arg_text(key: str, value: object) -> str:
    """An admin argument as a person reads it: times (``since``, ``until``) in local time."""
    if (
        key in _TIME_ARGS
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 1e8  # unix seconds, not a duration
    ):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _admin_line(event: Event) -> Event:
    """The log line that shows an admin event: ``admin: forget coding_agent (by dashboard)``.

    WARNING for destructive commands (:data:`DESTRUCTIVE_COMMANDS`), INFO for the others.
    """
    data = event.data if isinstance(event.data, dict) else {}
    command = data.get("command")
    words = [str(command) if command is not None else event.topic]
    if event.agent:
        words.append(event.agent)
    args = data.get("args")
    if isinstance(args, dict) and args:
        words.append(" ".join(f"{k}={_arg_text(k, v)}" for k, v in args.items()))
    origin = data.get("origin")
    if origin:
        words.append(f"(by {origin})")
    message = f"{event.topic}: " + " ".join(words)
    level = "WARNING" if command in DESTRUCTIVE_COMMANDS else "INFO"
    return Event("log", "admin", {"level": level, "message": message}, event.ts, event.id)


def _alert_line(event: Event) -> Event:
    """The log line that shows an alert event (``core/alerts.py``), from the source ``alerts``."""
    data = event.data if isinstance(event.data, dict) else {}
    level = data.get("level") if data.get("level") in LEVELS else "WARNING"
    message = f"{event.topic}: {data.get('message') or data.get('alert') or ''}"
    return Event("log", "alerts", {"level": level, "message": message}, event.ts, event.id)


class LogBuffer(Store):
    """The ``logs`` store: the newest ``capacity`` log records, searchable.

    Each ``log`` event becomes a record ``{seq, ts, level, source, message, thread, function,
    exc}``: ``seq`` numbers records from 0 in arrival order, ``source`` is the event's agent, else
    ``data["logger"]``, else ``"?"``; ``level`` is one of :data:`LEVELS` (numbers map to names; an
    unknown level becomes ``INFO`` and is counted in :attr:`unknown_levels`). Fields of the wrong
    type are ignored and counted in :attr:`bad_fields`. Messages are plain data, never formatted.

    The ring is thread-safe: :meth:`apply` and :meth:`query` may run on different threads.
    :attr:`total` counts every record ever accepted, :attr:`dropped` those overwritten by the ring.
    """

    name = "logs"
    topics = ("log", "admin.*", "alert.*")

    def __init__(self, clock: Clock = wall_clock, capacity: int = 10_000) -> None:
        super().__init__(clock)
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be a positive int, got {capacity!r}")
        self.capacity = capacity
        self._ring: deque[_Record] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self.total = 0
        self.dropped = 0
        self.unknown_levels = 0
        self.bad_fields = 0
        self._sources: dict[str, None] = {}  # insertion-ordered set, bounded by MAX_SOURCES
        self._snap_key: tuple[Any, ...] | None = None
        self._snap_lines: list[dict[str, Any]] = []

    # -- ingest --------------------------------------------------------------------------------
    def apply(self, event: Event) -> None:
        """Append one ``log`` event (O(1)); odd fields are ignored and counted, never raised.

        ``admin.*`` events (the audit trail of ``core/admin.py``) become lines from the source
        ``admin`` (WARNING for destructive commands, INFO for views and settings), so every admin
        action is visible in the log tail; ``alert.*`` events (fired, resolved, acknowledged)
        become lines from the source ``alerts``.
        """
        if event.topic != "log":
            event = _alert_line(event) if event.topic.startswith("alert.") else _admin_line(event)
        data = event.data if isinstance(event.data, dict) else {}
        bad = 0 if isinstance(event.data, dict) else 1

        raw_level = data.get("level", "INFO")
        level = normalise_level(raw_level)
        unknown = level is None
        if level is None:
            level = "INFO"

        source = event.agent
        if not source:
            logger, was_bad = _text_field(data.get("logger"))
            bad += was_bad
            source = logger or "?"

        message, coerced = _as_message(data.get("message"))
        bad += coerced
        thread, was_bad = _text_field(data.get("thread"))
        bad += was_bad
        function, was_bad = _text_field(data.get("function"))
        bad += was_bad
        exc, was_bad = _text_field(data.get("exc"))
        bad += was_bad
        # The trace a line belongs to: its span's (envelope), else the one a handler saw, else
        # its job's (a job's trace id is its job id): a view can open it from the line.
        trace = event.trace_id or _trace_of(data)
        ts = event.ts if isinstance(event.ts, (int, float)) else self.clock()

        with self._lock:
            if len(self._ring) == self.capacity:
                self.dropped += 1
            self._ring.append(
                _Record(
                    next(self._seq),
                    ts,
                    LEVELS[level],
                    level,
                    source,
                    message,
                    thread,
                    function,
                    exc,
                    trace,
                )
            )
            self.total += 1
            self.unknown_levels += unknown
            self.bad_fields += bad
            if source not in self._sources and len(self._sources) < MAX_SOURCES:
                self._sources[source] = None
            self.version += 1

    def clear(self) -> None:
        """Forget the buffered records and sources.

        ``total`` and ``dropped`` are lifetime counters and keep their values; ``seq`` keeps
        counting, so a ``before_seq`` cursor held by a view stays meaningful.
        """
        with self._lock:
            self._ring.clear()
            self._sources.clear()
            self.version += 1

    # -- reading -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._ring)

    def sources(self) -> list[str]:
        """The distinct sources seen since the last :meth:`clear` (at most
        :data:`MAX_SOURCES`), sorted."""
        with self._lock:
            return sorted(self._sources)

    def query(
        self,
        level: str | int | None = None,
        source: str | Iterable[str] | None = None,
        text: str | None = None,
        regex: bool = False,
        limit: int | None = 200,
        before_seq: int | None = None,
    ) -> list[dict[str, Any]]:
        """The newest records matching every given filter, oldest first.

        Args:
            level: minimum level (a name such as ``"WARNING"`` or a number).
            source: one source, or a collection of sources (exact match); an empty collection
                means no source filter.
            text: a substring of ``message`` or ``exc``, matched case-insensitively; with
                ``regex=True`` a regular expression searched in them (use ``(?i)`` to ignore case).
            limit: at most this many records (the newest ones); ``None`` for all.
            before_seq: only records with ``seq < before_seq`` (to page backwards).

        Raises:
            ValueError: an unknown level, a negative limit, or an invalid regular expression
                (the message names the pattern).
        """
        if limit is not None and (isinstance(limit, bool) or limit < 0):
            raise ValueError(f"limit must be >= 0 or None, got {limit!r}")
        min_level = None if level is None else _level_threshold(level)
        wanted: set[str] | None = None
        if isinstance(source, str):
            wanted = {source}
        elif source is not None:
            wanted = set(source) or None
        search: Callable[[str], Any] | None = None
        needle: str | None = None
        if text:
            if regex:
                try:
                    search = re.compile(text).search
                except re.error as err:
                    raise ValueError(f"invalid regular expression {text!r}: {err}") from None
            else:
                needle = text.casefold()

        with self._lock:
            items = list(self._ring)  # O(n) pointer copy (~1 ms per 100k); scan outside the lock
        if not items or limit == 0:
            return []
        end = len(items)
        if before_seq is not None:
            # seqs in the ring are consecutive, so the cut is an index computation, not a scan.
            end = max(0, min(end, before_seq - items[0].seq))

        out: list[_Record] = []
        # Newest first, in chunks that grow (the usual query is answered by the newest lines).
        hi = end
        size = _FIRST_CHUNK
        while hi > 0 and (limit is None or len(out) < limit):
            lo = max(0, hi - size)
            size = min(size * 2, _MAX_CHUNK)
            chunk = items[lo:hi]
            chunk.reverse()
            hi = lo
            if min_level is not None or wanted is not None:
                chunk = [
                    r
                    for r in chunk
                    if (min_level is None or r.levelno >= min_level)
                    and (wanted is None or r.source in wanted)
                ]
            if needle is not None:
                chunk = _containing(chunk, needle)
            elif search is not None:
                chunk = [
                    r
                    for r in chunk
                    if search(r.message) is not None
                    or (r.exc is not None and search(r.exc) is not None)
                ]
            out.extend(chunk if limit is None else chunk[: limit - len(out)])
        out.reverse()
        return [rec.as_dict() for rec in out]

    def snapshot(
        self,
        limit: int = 200,
        *,
        level: str | int | None = None,
        source: str | Iterable[str] | None = None,
        text: str | None = None,
        regex: bool = False,
    ) -> dict[str, Any]:
        """The ``logs`` snapshot of ``docs/internals.md``: counters and the newest lines.

        Without filters the lines are the newest ``limit`` records; the keyword filters are those
        of :meth:`query` (a view showing a filtered tail can use them). To keep the message small
        (≤ 64 KB serialised) ``message`` and ``exc`` are cut at :data:`SNAPSHOT_FIELD_CAP`
        characters with a marker, and older lines are left out once :data:`SNAPSHOT_BUDGET`
        serialised bytes are used. ``rejected`` counts unknown levels and bad fields.
        """
        src_key = source if source is None or isinstance(source, str) else tuple(source)
        key = (self.version, limit, level, src_key, text, regex)
        if key != self._snap_key:
            records = self.query(level=level, source=src_key, text=text, regex=regex, limit=limit)
            self._snap_lines = _fit_lines(records)
            self._snap_key = key
        return {
            "now": self.clock(),
            "total": self.total,
            "dropped": self.dropped,
            "capacity": self.capacity,
            "lines": list(self._snap_lines),
            "rejected": {"levels": self.unknown_levels, "fields": self.bad_fields},
        }


_SEP = "\x00"
_FIRST_CHUNK = 512
_MESSAGE = operator.itemgetter(_Record._fields.index("message"))
_EXC = operator.itemgetter(_Record._fields.index("exc"))
_MAX_CHUNK = 2_048  # ~0.4 MB of text: larger joins page-fault (glibc mmaps them) and run slower


def _containing(chunk: list[_Record], needle: str) -> list[_Record]:
    """The records of ``chunk`` whose casefolded message or exception contains ``needle``
    (casefolded already), in chunk order.

    A whole chunk is searched at once: its texts joined by a separator the needle lacks, folded
    in one C call, first tested for each of the needle's characters (memchr speed: a rare text
    usually has one the chunk lacks), then searched, each hit mapped back to its record by
    counting separators. Several times faster than folding and searching line by line.
    """
    texts = list(map(_MESSAGE, chunk))
    with_exc = [i for i, exc in enumerate(map(_EXC, chunk)) if exc is not None]
    texts.extend(chunk[i].exc for i in with_exc)
    joined = _SEP.join(texts)
    folded = joined.casefold()
    if _SEP in needle or len(folded) != len(joined) or joined.count(_SEP) != len(texts) - 1:
        # The separator could be matched or is in a text, or a character folded to several
        # (ß -> ss) and moved the offsets: line by line.
        return [
            r
            for r in chunk
            if needle in r.message.casefold() or (r.exc is not None and needle in r.exc.casefold())
        ]
    if any(c not in folded for c in set(needle)):
        return []
    hits: set[int] = set()
    k = 0  # the text that starts at or before `at` (texts are separated by one _SEP each)
    at = 0
    pos = folded.find(needle)
    while pos >= 0:
        k += folded.count(_SEP, at, pos)
        hits.add(k if k < len(chunk) else with_exc[k - len(chunk)])
        at = folded.find(_SEP, pos)
        if at < 0:
            break
        pos = folded.find(needle, at)
    return [chunk[i] for i in sorted(hits)]


def _fit_lines(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cap long fields and keep the newest lines that fit :data:`SNAPSHOT_BUDGET`."""
    kept: list[dict[str, Any]] = []
    used = 0
    for rec in reversed(records):  # newest first, so the budget keeps the newest
        line = dict(rec)
        line["message"] = _cap(line["message"], SNAPSHOT_FIELD_CAP)
        line["exc"] = _cap(line["exc"], SNAPSHOT_FIELD_CAP)
        # ensure_ascii=True is the largest of the usual encodings (\uXXXX per non-ASCII char).
        size = len(json.dumps(line)) + 2
        if used + size > SNAPSHOT_BUDGET and not kept:
            # A single huge line (e.g. astral characters) must still be shown, smaller.
            line["message"] = _cap(line["message"], _SNAPSHOT_FIELD_MIN)
            line["exc"] = _cap(line["exc"], _SNAPSHOT_FIELD_MIN)
            size = len(json.dumps(line)) + 2
        if used + size > SNAPSHOT_BUDGET:
            break
        kept.append(line)
        used += size
    kept.reverse()
    return kept


# -- logging bridge ----------------------------------------------------------------------------

Publish = Callable[[str, str | None, dict[str, Any]], object]
"""``publish(topic, agent, data)``: how a :class:`LogHandler` hands an event on."""

MAX_NESTING = 2
"""Nested emits allowed per thread for records from outside ``codeur_widgets`` (see LogHandler)."""

# One guard for all LogHandlers of the process: a record published by handler A may make the
# dashboard log, and that record may reach handler B (attached to another logger) on this thread.
_guard = threading.local()
_EXC_FORMATTER = logging.Formatter()


def _is_ours(logger_name: str) -> bool:
    return logger_name == _HIERARCHY or logger_name.startswith(_HIERARCHY + ".")


class LogHandler(logging.Handler):
    """A :class:`logging.Handler` that publishes each record as a ``log`` event.

    ``publish(topic, agent, data)`` is called synchronously in the thread that logged; with a hub
    it should be ``hub.publish_threadsafe`` (safe from any thread, never blocks). ``emit`` never
    touches asyncio (DESIGN section 10, defect 6), never raises (failures go to
    :meth:`logging.Handler.handleError`, like every standard handler), and cannot recurse.

    Re-entrancy rule (a thread-local depth shared by all ``LogHandler`` instances): while this
    thread is inside a ``LogHandler.emit`` (depth ≥ 1),

    * a record from the ``codeur_widgets`` logger or any of its children is dropped, because it
      was caused by publishing (the bus or a store reporting a problem) and showing it could loop;
    * any other record is published only while the depth is below :data:`MAX_NESTING` (so a
      user's ``log`` subscriber that logs is shown once, but cannot recurse without bound).

    Dropped records are counted in :attr:`suppressed`; records that failed are counted in
    :attr:`failed`.

    The event's ``data`` holds ``level`` (name), ``message`` (``record.getMessage()``),
    ``logger`` (``record.name``), ``thread`` (``record.threadName``), ``function``
    (``record.funcName``) and ``exc`` (the formatted exception and stack, or ``None``); its
    agent is ``source``, or ``None`` so the buffer shows the logger's name.
    """

    def __init__(
        self,
        publish: Publish,
        source: str | None = None,
        level: int | str = logging.INFO,
    ) -> None:
        super().__init__(_level_number(level))
        if not callable(publish):
            raise TypeError("publish must be callable: publish(topic, agent, data)")
        self.publish = publish
        # Validated here so that a bad name fails once, at setup, not on every record.
        self.source = check_agent(source)
        self.suppressed = 0
        self.failed = 0
        self.emitted = 0
        self._owner: object = publish  # capture_logging's idempotence key
        self._attached: tuple[logging.Logger, int] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        """Publish ``record``; see the class docstring for the re-entrancy rule."""
        depth: int = getattr(_guard, "depth", 0)
        if depth and (_is_ours(record.name) or depth >= MAX_NESTING):
            self.suppressed += 1
            return
        _guard.depth = depth + 1
        try:
            self.publish("log", self.source, self.record_data(record))
            self.emitted += 1
        except Exception:
            self.failed += 1
            self.handleError(record)
        finally:
            _guard.depth = depth

    @staticmethod
    def record_data(record: logging.LogRecord) -> dict[str, Any]:
        """The ``data`` of the ``log`` event for ``record`` (plain, JSON-serialisable)."""
        exc: str | None = record.exc_text or None
        if exc is None and record.exc_info and record.exc_info[0] is not None:
            exc = _EXC_FORMATTER.formatException(record.exc_info)
        if record.stack_info:
            stack = _EXC_FORMATTER.formatStack(record.stack_info)
            exc = f"{exc}\n{stack}" if exc else stack
        level = record.levelname
        if level not in LEVELS:  # a custom level (TRACE, NOTICE…): the standard one below it
            level = _level_from_number(record.levelno)
        data = {
            "level": level,
            "message": record.getMessage(),
            "logger": record.name,
            "thread": record.threadName,
            "function": record.funcName,
            "exc": exc,
        }
        # emit() runs in the logging code's own context: a record written inside a task or an
        # LLM call belongs to that span's trace.
        span = current_span.get()
        if span is not None:
            data["trace_id"] = span.trace_id
        return data

    def detach(self) -> None:
        """Remove this handler from the logger :func:`capture_logging` attached it to, and put
        back that logger's level if :func:`capture_logging` lowered it. Idempotent."""
        attached, self._attached = self._attached, None
        if attached is None:
            return
        logger, previous = attached
        logger.removeHandler(self)
        if previous != logger.level:
            logger.setLevel(previous)


def _level_number(level: int | str) -> int:
    """A handler level from a name (``"info"``, ``"WARN"``), a digit string or an int."""
    if isinstance(level, bool) or not isinstance(level, (int, str)):
        raise ValueError(f"level must be a name or an int, got {level!r}")
    if isinstance(level, int):
        return level
    if level.strip().isdigit():
        return int(level)
    name = normalise_level(level)
    if name is None:
        raise ValueError(f"unknown log level {level!r}: use one of {', '.join(LEVELS)}")
    return LEVELS[name]


def capture_logging(
    publish: Publish,
    logger: str | logging.Logger | None = None,
    level: int | str = "INFO",
    source: str | None = None,
    *,
    owner: object = None,
) -> LogHandler:
    """Attach a :class:`LogHandler` to ``logger`` (the root logger if ``None``) and return it.

    Idempotent per (logger, owner): when ``logger`` already has a ``LogHandler`` of the same
    ``owner`` (``owner`` defaults to ``publish`` itself, compared with ``==`` so a bound method of
    the same object matches), that handler is returned with its level and source updated; no
    second handler is added, so no line is shown twice. A hub passes ``owner=self`` because its
    ``publish`` wrapper is a new function on every call.

    If the logger's effective level is above ``level`` (a fresh named logger inherits the root's
    ``WARNING``), the logger's own level is lowered to ``level`` so the records actually reach the
    handler; :meth:`LogHandler.detach` restores it.
    """
    target = logger if isinstance(logger, logging.Logger) else logging.getLogger(logger)
    number = _level_number(level)
    key = publish if owner is None else owner
    handler: LogHandler | None = None
    for existing in target.handlers:
        if isinstance(existing, LogHandler) and existing._owner == key:
            handler = existing
            break
    if handler is None:
        handler = LogHandler(publish, source=source, level=number)
        handler._owner = key
        previous = target.level
        target.addHandler(handler)
        handler._attached = (target, previous)
    else:
        handler.setLevel(number)
        handler.source = check_agent(source)
    if target.getEffectiveLevel() > number:
        target.setLevel(number)
    return handler
