"""History: every accepted event in a local SQLite file (standard library only).

A :class:`History` is attached to a hub with ``Hub(history="runs.sqlite")``. The hub subscribes
:meth:`History.record` to every topic; ``record`` only appends the event's seven fields to a
bounded in-memory queue (O(1), no serialisation, never blocks). A daemon worker thread takes the
queue in batches, serialises them and writes them in one transaction each, in WAL mode, so the
event loop never waits on the disk.

What it gives back:

* the state of a previous run: a new ``Hub(history=path)`` (say after a kernel restart) replays
  the stored events into its stores before going live, so agents, jobs, logs and metrics are back;
* any past moment: :meth:`History.rebuild` returns a new, not-started hub whose stores hold the
  state as of ``until``;
* queries by topic (glob), agent, job, text and time range, paged, as dicts or a pandas DataFrame
  (pandas is optional); export and import as JSON Lines;
* :meth:`History.replay` re-publishes a stored session onto a hub, at its own pace or faster.

Failures: a file that cannot be opened for writing (corrupt, locked, read-only, missing directory,
not a history file) raises :class:`HistoryError` at open, naming the path and the reason. A write
that fails later (disk full, a lock held too long) never reaches the hub: the batch is kept and
retried with a backoff, the history is reported as degraded in :meth:`History.health`, and events
keep queueing until the queue is full; only then are new events dropped (and counted).

Retention: rows older than ``retention_seconds`` and, when ``max_bytes`` is set, the oldest rows
beyond that size are deleted by the worker about once a minute (:meth:`History.apply_retention`
runs it now). See ``docs/history.md`` for the schema and measured numbers.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import io
import json
import logging
import math
import os
import sqlite3
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import msgspec

from .clock import Clock, wall_clock
from .events import Event, InvalidEvent, parse_ts
from .gcpause import paused_gc

if TYPE_CHECKING:
    from .hub import Hub

__all__ = ["FORMAT", "SCHEMA_VERSION", "History", "HistoryError"]

log = logging.getLogger("codeur_widgets.history")

FORMAT = "codeur-widgets-history"
"""Value of ``meta.format``: tells our files from other SQLite databases."""
SCHEMA_VERSION = 1

# The schema. ``seq`` (the rowid) is the insertion order and breaks ties between equal timestamps;
# ``id`` is UNIQUE so that a replay or an import into the same file never duplicates a row
# (INSERT OR IGNORE). ``job_id`` is copied out of ``data`` so that a job's events are an index
# lookup; ``data`` is the compact JSON of the event's data.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq      INTEGER PRIMARY KEY,
    id       TEXT NOT NULL UNIQUE,
    ts       REAL NOT NULL,
    topic    TEXT NOT NULL,
    agent    TEXT,
    job_id   TEXT,
    trace_id TEXT,
    span_id  TEXT,
    data     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
CREATE INDEX IF NOT EXISTS events_topic_ts ON events (topic, ts);
CREATE INDEX IF NOT EXISTS events_agent_ts ON events (agent, ts) WHERE agent IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_job_ts ON events (job_id, ts) WHERE job_id IS NOT NULL;
"""

_INSERT = (
    "INSERT OR IGNORE INTO events (id, ts, topic, agent, job_id, trace_id, span_id, data) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_COLUMNS = "id, ts, topic, agent, trace_id, span_id, data"

# SQLite before 3.32 allows 999 bound parameters per statement, later versions 32766.
ROWS_PER_INSERT = 250 if sqlite3.sqlite_version_info >= (3, 32) else 120
"""Rows per INSERT statement (8 parameters each)."""


@functools.cache  # at most ROWS_PER_INSERT distinct sizes
def _insert_sql(rows: int) -> str:
    return _INSERT + ", (?, ?, ?, ?, ?, ?, ?, ?)" * (rows - 1)


def _flat(rows: list[tuple[Any, ...]], start: int, count: int) -> list[Any]:
    return [value for row in rows[start : start + count] for value in row]


# The encoder the worker uses: compact, UTF-8 kept as is (so text search sees real characters),
# no circular-reference check (event data is validated JSON: a tree, never a cycle).
_encode = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), check_circular=False, allow_nan=False
).encode

READ_CHUNK = 2_000
"""Rows fetched at a time when iterating events (bounded memory for any file size)."""
DELETE_CHUNK = 5_000
"""Rows deleted per statement by retention (the write lock is released between chunks)."""
MAX_BACKOFF = 2.0
"""Longest pause between two attempts to write a failed batch (seconds)."""

_open_histories: weakref.WeakSet[History] = weakref.WeakSet()


@atexit.register
def _flush_all_at_exit() -> None:
    # A script that ends without hub.stop() still gets its last events written.
    for history in list(_open_histories):
        with contextlib.suppress(Exception):
            history.close(timeout=5.0)


class HistoryError(RuntimeError):
    """A history file that cannot be used; names the ``path`` and the ``reason``."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"history file {path!r}: {reason}")
        self.path = path
        self.reason = reason


def _explain(exc: BaseException, path: str) -> str:
    """A reason a person can act on, from a sqlite3/OS error."""
    text = str(exc)
    low = text.lower()
    if "not a database" in low or "malformed" in low or "corrupt" in low:
        return f"not a valid SQLite database (corrupt, or another kind of file): {text}"
    if "locked" in low or "busy" in low:
        return f"locked by another connection or process: {text}"
    if "readonly" in low or "read-only" in low or "read only" in low:
        return f"read-only (the file, its directory or the way it was opened): {text}"
    if "full" in low:
        return f"disk full: {text}"
    if "unable to open" in low:
        if not path.startswith("file:"):
            parent = Path(path).resolve().parent
            if not parent.is_dir():
                return f"directory {str(parent)!r} does not exist"
            if not os.access(parent, os.W_OK | os.X_OK):
                return f"directory {str(parent)!r} is not writable"
        return f"cannot open the file: {text}"
    return f"{type(exc).__name__}: {text}"


def _as_ts(value: float | int | str | datetime | None, field: str) -> float | None:
    """A bound of a time range: unix seconds, an ISO-8601 string or a datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    try:
        return parse_ts(value, field)
    except InvalidEvent as exc:
        raise ValueError(f"{field}: {exc.reason}") from None


def _like_pattern(text: str) -> str:
    """A LIKE pattern (ESCAPE '\\') finding ``text`` inside JSON-encoded data or a plain column."""
    # The data column holds JSON: a quote or backslash in a string is stored escaped, so look for
    # the escaped form (which equals the text itself for everything else).
    needle = json.dumps(text, ensure_ascii=False)[1:-1]
    needle = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{needle}%"


def _where(
    topic: str | None,
    agent: str | None,
    job: str | int | None,
    text: str | None,
    since: float | int | str | datetime | None,
    until: float | int | str | datetime | None,
) -> tuple[str, list[Any]]:
    """The WHERE clause and its bound parameters for the query filters (values never formatted)."""
    clauses: list[str] = []
    params: list[Any] = []
    if topic is not None:
        if not isinstance(topic, str) or not topic:
            raise ValueError("topic must be a non-empty string (a glob such as 'agent.*')")
        # Topics are [a-z0-9_.-]: GLOB (case-sensitive, '*' spans dots) matches like the bus's
        # fnmatchcase. An exact topic uses '=' so the index is always used.
        clauses.append("topic GLOB ?" if any(c in topic for c in "*?[") else "topic = ?")
        params.append(topic)
    if agent is not None:
        clauses.append("agent = ?")
        params.append(str(agent))
    if job is not None:
        clauses.append("job_id = ?")
        params.append(str(job))
    if text:
        pattern = _like_pattern(str(text))
        clauses.append(
            "(data LIKE ? ESCAPE '\\' OR agent LIKE ? ESCAPE '\\' OR topic LIKE ? ESCAPE '\\')"
        )
        params += [pattern, pattern, pattern]
    lo = _as_ts(since, "since")
    hi = _as_ts(until, "until")
    if lo is not None:
        clauses.append("ts >= ?")
        params.append(lo)
    if hi is not None:
        clauses.append("ts <= ?")
        params.append(hi)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


_msgspec_decode = msgspec.json.Decoder().decode


def _decode_data(data: str) -> Any:
    """A stored ``data`` column as Python: msgspec's C decoder (8x the standard library's on
    event payloads: most of a replay's time was ``json.loads``), the standard library's for what
    it refuses (a file written by another program: NaN, integers past 64 bits)."""
    try:
        return _msgspec_decode(data)
    except msgspec.DecodeError:
        return json.loads(data)


def _event_from_row(row: tuple[Any, ...]) -> Event | None:
    event_id, ts, topic, agent, trace_id, span_id, data = row
    try:
        payload = _decode_data(data)
    except (TypeError, ValueError):
        return None
    if not isinstance(payload, dict):
        return None
    return Event(topic, agent, payload, ts, event_id, trace_id, span_id)


def _job_of(data: dict[str, Any]) -> str | None:
    job = data.get("job_id")
    if job is None or isinstance(job, bool):
        return None
    if isinstance(job, (str, int)):
        return str(job) if job != "" else None
    return None


_FIELDS = 7
"""Queue slots per event: ``record`` appends an event as its seven fields (see :func:`_rows`)."""


def _fields(event: Event) -> tuple[Any, ...]:
    """An event's fields in the queue's order (what :meth:`History.record` appends)."""
    return (event.id, event.ts, event.topic, event.agent, event.trace_id, event.span_id, event.data)


def _rows(flat: list[Any]) -> list[tuple[Any, ...]]:
    """INSERT rows from queued fields, :data:`_FIELDS` per event (see :meth:`History.record`)."""
    it = iter(flat)
    rows = []
    for event_id, ts, topic, agent, trace_id, span_id, data in zip(
        it, it, it, it, it, it, it, strict=True
    ):
        try:
            payload = _encode(data)
        except (TypeError, ValueError):
            # publish_event() accepts Events built without validation: store what can be shown.
            payload = json.dumps(data, ensure_ascii=False, default=repr)
        job = _job_of(data) if type(data) is dict else None
        rows.append((event_id, ts, topic, agent, job, trace_id, span_id, payload))
    return rows


class History:
    """Events stored in a SQLite file, written in batches off the hot path.

    Args:
        path: the database file (created with its schema when new; its directory must exist), or
            a ``file:`` URI.
        retention_seconds: rows older than this are deleted (None: keep forever). Default 7 days.
        max_bytes: when set, the oldest rows are deleted while the database's pages in use exceed
            it (the file shrinks too: it is created with incremental auto-vacuum).
        batch_size: events written per transaction.
        flush_interval: seconds between writes when fewer than ``batch_size`` events wait.
        queue_size: events held in memory while waiting to be written; when full (the disk cannot
            keep up or fails), further events are dropped and counted in :meth:`health`.
        clock: unix-seconds clock used by retention (a ``FakeClock`` in tests).
        busy_timeout: seconds to wait for another connection's lock, at open and per write.
        retention_interval: seconds between two retention passes of the worker.

    Raises:
        HistoryError: the file cannot be used (corrupt, locked, read-only, missing directory, not
            a history file); the message names the path and the reason.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        retention_seconds: float | None = 7 * 86400.0,
        max_bytes: int | None = None,
        batch_size: int = 2_000,
        flush_interval: float = 0.25,
        queue_size: int = 200_000,
        clock: Clock = wall_clock,
        busy_timeout: float = 5.0,
        retention_interval: float = 60.0,
    ) -> None:
        if retention_seconds is not None and not retention_seconds > 0:
            raise ValueError("retention_seconds must be > 0 or None")
        if max_bytes is not None and max_bytes < 64 * 1024:
            raise ValueError("max_bytes must be at least 65536 (or None)")
        if batch_size < 1 or queue_size < 1:
            raise ValueError("batch_size and queue_size must be >= 1")
        if not flush_interval > 0 or busy_timeout < 0 or not retention_interval > 0:
            raise ValueError("flush_interval and retention_interval must be > 0")
        self.path = os.fspath(path)
        self._uri = self.path.startswith("file:")
        self.retention_seconds = retention_seconds
        self.max_bytes = max_bytes
        self.batch_size = int(batch_size)
        self.flush_interval = float(flush_interval)
        self.queue_size = int(queue_size)
        self.clock = clock
        self.busy_timeout = float(busy_timeout)
        self.retention_interval = float(retention_interval)

        # The hot path: record() appends here, _FIELDS slots an event; the worker pops from the
        # other end.
        self._queue: deque[Any] = deque()
        self._limit = self.queue_size * _FIELDS  # 0 once closed: record() then drops (and counts)
        self._batch_ready = (self.batch_size - 1) * _FIELDS
        self._cond = threading.Condition()  # guards taking from the queue and the counters below
        self._wake = threading.Event()
        self._taken = 0  # events taken from the queue by the worker
        self._handled = 0  # events taken and committed (inserted or ignored as duplicates)
        self._inflight: tuple[int, list[tuple[Any, ...]]] | None = None
        self.written = 0
        self.duplicates = 0
        self.dropped = 0
        self.failures = 0
        self.deleted = 0
        self.restored = 0
        self.error: str | None = None
        self.last_error: str | None = None
        self._full = False
        self._last_write: float | None = None
        self._closed = False
        self._closing = False
        self._close_deadline = 0.0
        self.last_import_errors: list[str] = []

        self._write_lock = threading.Lock()
        # One retention pass at a time: the worker's and apply_retention()'s would each measure
        # the same size and delete their own fraction of it, together more than needed.
        self._retention_lock = threading.Lock()
        self._conn = self._open_writer()
        self._reader: sqlite3.Connection | None = None
        self._read_lock = threading.Lock()
        self._next_retention = 0.0  # the worker's first pass runs at once
        self._thread = threading.Thread(
            target=self._run, name=f"codeur_widgets.history:{Path(self.path).name}", daemon=True
        )
        self._thread.start()
        _open_histories.add(self)

    # -- opening -------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
        # check_same_thread=False: the worker writes, and apply_retention()/import_jsonl() may
        # write from the caller's thread; _write_lock makes them take turns.
        return sqlite3.connect(
            self.path,
            timeout=self.busy_timeout,
            isolation_level=None,
            check_same_thread=False,
            uri=self._uri,
        )

    def _open_writer(self) -> sqlite3.Connection:
        path = self.path
        if not self._uri:
            parent = Path(path).resolve().parent
            if not parent.is_dir():
                raise HistoryError(path, f"directory {str(parent)!r} does not exist")
            if Path(path).is_dir():
                raise HistoryError(path, "is a directory, not a file")
        try:
            conn = self._connect()
        except sqlite3.Error as exc:
            raise HistoryError(path, _explain(exc, path)) from exc
        try:
            self._prepare(conn)
        except HistoryError:
            conn.close()
            raise
        except sqlite3.Error as exc:
            conn.close()
            raise HistoryError(path, _explain(exc, path)) from exc
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """Check the file is ours (or empty), create the schema, and prove it is writable."""
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and "meta" not in tables:
            shown = ", ".join(sorted(tables)[:5])
            raise HistoryError(self.path, f"not a codeur-widgets history file (tables: {shown})")
        if "meta" in tables:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            if meta.get("format") != FORMAT:
                raise HistoryError(self.path, "not a codeur-widgets history file (no format mark)")
            version = int(meta.get("version", "0") or 0)
            if version > SCHEMA_VERSION:
                raise HistoryError(
                    self.path,
                    f"written by a newer codeur-widgets (schema {version} > {SCHEMA_VERSION})",
                )
        else:
            # Must precede the first table: lets retention give pages back to the file system.
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise HistoryError(self.path, f"cannot use WAL journal mode (got {mode!r})")
        # NORMAL in WAL mode: a power cut may lose the last transactions, never corrupt the file.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA journal_size_limit = 67108864")  # truncate the WAL to 64 MB
        # BEGIN IMMEDIATE takes the write lock now, so a lock held by another connection, a
        # read-only file or a full disk is an error at open rather than a surprise later.
        conn.execute("BEGIN IMMEDIATE")
        try:
            # One statement at a time: executescript() would COMMIT the transaction first.
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (FORMAT,))
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('version', ?)", (str(SCHEMA_VERSION),))
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('created', ?)", (repr(time.time()),))
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    def _read_conn(self) -> sqlite3.Connection:
        conn = self._connect()
        conn.execute("PRAGMA query_only = 1")
        return conn

    # -- the hot path --------------------------------------------------------------------------
    def record(self, event: Event) -> None:
        """Queue one event for writing: O(1), never blocks, never raises.

        When the queue is full (the disk is failing or cannot keep up) the event is dropped,
        counted in ``health()["dropped"]``, and the history is marked degraded.
        """
        # The fields, not the Event: a queue of 200,000 Event objects (each tracked by the garbage
        # collector) made every collection while they waited walk them all, which was most of
        # what history cost the hot path. Strings, floats and a flat dict of them are not
        # tracked, and one extend() of a tuple is atomic under the GIL, so an event's fields stay
        # together even when threads record at once. Publishing with history, writer paused,
        # vs without: 0.79-0.81x -> 0.87-0.93x (benchmarks/README.md, "History").
        q = self._queue
        n = len(q)
        if n < self._limit:
            q.extend(
                (event.id, event.ts, event.topic, event.agent, event.trace_id, event.span_id,
                 event.data)
            )  # fmt: skip
            if n == self._batch_ready:
                self._wake.set()  # a full batch is ready: no need to wait for the interval
        else:
            self.dropped += 1
            self._full = True

    # -- the worker ----------------------------------------------------------------------------
    def _run(self) -> None:
        backoff = 0.0
        while True:
            self._wake.wait(backoff or self.flush_interval)
            self._wake.clear()
            closing = self._closing
            try:
                ok = self._drain()
                if ok and time.monotonic() >= self._next_retention:
                    self._next_retention = time.monotonic() + self.retention_interval
                    self._retention()
            except sqlite3.Error as exc:
                self._failed(exc)
                ok = False
            except Exception as exc:  # a bug must not kill the writer: report it and go on
                log.exception("history worker error")
                self._failed(exc)
                ok = False
            backoff = 0.0 if ok else min(MAX_BACKOFF, max(0.05, backoff * 2))
            if closing and (ok or time.monotonic() >= self._close_deadline):
                return

    def _drain(self) -> bool:
        """Write everything queued, batch by batch; False when a write failed (kept for retry)."""
        q = self._queue
        while True:
            if self._inflight is None:
                with self._cond:
                    n = min(len(q) // _FIELDS, self.batch_size)
                    if n == 0:
                        if self._full and len(q) < self._limit:
                            self._full = False  # room again: no longer dropping
                        return True
                    popleft = q.popleft
                    flat = [popleft() for _ in range(n * _FIELDS)]
                    self._taken += n
                # Serialise outside the lock (and off the loop's thread).
                self._inflight = (n, _rows(flat))
            n, rows = self._inflight
            try:
                inserted = self._write(rows)
            except sqlite3.Error as exc:
                self._failed(exc)
                return False
            self._inflight = None
            with self._cond:
                self._handled += n
                self.written += inserted
                self.duplicates += n - inserted
                self._last_write = time.time()
                if self.error is not None:
                    log.warning("history %r: writing again after %s", self.path, self.error)
                self.error = None
                self._cond.notify_all()

    def _write(self, rows: list[tuple[Any, ...]]) -> int:
        with self._write_lock:
            conn = self._conn
            before = conn.total_changes
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Many rows per statement: sqlite3 releases the GIL around each step, and a
                # thread waiting to get it back waits for the publishing thread's switch
                # interval (5 ms). One step per row starves the writer during a flood; one
                # step per ROWS_PER_INSERT rows keeps it going, and costs the loop less.
                full = len(rows) - len(rows) % ROWS_PER_INSERT
                for i in range(0, full, ROWS_PER_INSERT):
                    conn.execute(_insert_sql(ROWS_PER_INSERT), _flat(rows, i, ROWS_PER_INSERT))
                if full < len(rows):
                    conn.execute(_insert_sql(len(rows) - full), _flat(rows, full, len(rows) - full))
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
            return conn.total_changes - before

    def _failed(self, exc: BaseException) -> None:
        reason = _explain(exc, self.path)
        with self._cond:
            self.failures += 1
            if self.error is None:
                log.error("history %r: write failed, will retry (%s)", self.path, reason)
            self.error = self.last_error = reason
            self._cond.notify_all()

    # -- flushing and closing ------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Events recorded but not yet committed (queued, or in a batch waiting for a retry)."""
        inflight = self._inflight
        return len(self._queue) // _FIELDS + (inflight[0] if inflight is not None else 0)

    @property
    def degraded(self) -> bool:
        """True while writes fail or while the queue is full and events are being dropped."""
        return self.error is not None or self._full

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event recorded before this call is committed.

        Returns False if that did not happen within ``timeout`` seconds (None: wait as long as
        it takes; beware a failing disk), True otherwise. Safe from any thread.
        """
        if self._closed:
            return self.pending == 0
        with self._cond:
            target = self._taken + len(self._queue) // _FIELDS
            if self._handled >= target:
                return True
            self._wake.set()  # one wake is enough: the worker drains batch after batch
            deadline = None if timeout is None else time.monotonic() + timeout
            while self._handled < target:
                if not self._thread.is_alive():
                    return False  # closed meanwhile, with writes failing
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(0.5 if remaining is None else min(remaining, 0.5))
            return True

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued (waiting at most ``timeout`` s), stop the worker, close the file.

        Idempotent. Events still unwritten after the timeout (a failing disk) are lost and
        logged. Events recorded after closing are dropped and counted.
        """
        if self._closed:
            return
        self._close_deadline = time.monotonic() + timeout
        self._closing = True
        self._wake.set()
        self._thread.join(timeout + 1.0)
        self._limit = 0
        self._closed = True
        lost = self.pending
        if lost:
            log.error(
                "history %r closed with %d events unwritten (%s)", self.path, lost, self.error
            )
        with self._write_lock:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA optimize")
            self._conn.close()
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        _open_histories.discard(self)

    @property
    def closed(self) -> bool:
        return self._closed

    def _catch_up(self) -> None:
        """Before reading: commit what is pending, unless writing is failing (bounded wait)."""
        if self.pending and self.error is None and not self._closed:
            self.flush(timeout=2.0)

    # -- health --------------------------------------------------------------------------------
    def size_bytes(self) -> int:
        """Bytes on disk: the database file plus its write-ahead log."""
        if self._uri:
            return 0
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                total += os.stat(self.path + suffix).st_size
        return total

    def health(self) -> dict[str, Any]:
        """How the history is doing (JSON-serialisable); shown as ``hub.health()["history"]``.

        ``degraded`` is True while writes fail (``error`` says why) or events are being dropped
        because the queue is full; ``pending`` events are kept and retried meanwhile.
        """
        error = self.error
        if error is None and self._full:
            error = f"queue full ({self.queue_size} events): new events are dropped"
        if self._closed and self._full:
            error = "closed: events recorded since are dropped"
        return {
            "path": self.path,
            "degraded": error is not None,
            "error": error,
            "last_error": self.last_error,
            "written": self.written,
            "pending": self.pending,
            "dropped": self.dropped,
            "duplicates": self.duplicates,
            "failures": self.failures,
            "deleted": self.deleted,
            "restored": self.restored,
            "size_bytes": self.size_bytes(),
            "last_write": self._last_write,
            "retention_seconds": self.retention_seconds,
            "max_bytes": self.max_bytes,
            "closed": self._closed,
        }

    # -- retention -----------------------------------------------------------------------------
    def apply_retention(self) -> int:
        """Delete rows past the age and size limits now; returns how many were deleted."""
        self._catch_up()
        try:
            return self._retention()
        except sqlite3.Error as exc:
            raise HistoryError(self.path, _explain(exc, self.path)) from exc

    def _retention(self) -> int:
        with self._retention_lock:
            return self._retention_pass()

    def _retention_pass(self) -> int:
        deleted = 0
        if self.retention_seconds is not None:
            cutoff = self.clock() - self.retention_seconds
            while True:
                n = self._delete_oldest("ts < ?", (cutoff,), DELETE_CHUNK)
                deleted += n
                if n < DELETE_CHUNK:
                    break
        if self.max_bytes is not None:
            deleted += self._shrink(self.max_bytes)
        if deleted:
            self._vacuum()
        return deleted

    def _delete_oldest(self, where: str, params: tuple[Any, ...], limit: int) -> int:
        with self._write_lock:
            conn = self._conn
            before = conn.total_changes
            conn.execute(
                "DELETE FROM events WHERE seq IN "
                f"(SELECT seq FROM events WHERE {where} ORDER BY ts, seq LIMIT ?)",
                (*params, limit),
            )
            n = conn.total_changes - before
        with self._cond:
            self.deleted += n
        return n

    def _used_bytes(self) -> int:
        with self._write_lock:
            conn = self._conn
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            free = conn.execute("PRAGMA freelist_count").fetchone()[0]
            size = conn.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)

    def _row_span(self) -> int:
        with self._write_lock:
            lo, hi = self._conn.execute("SELECT min(seq), max(seq) FROM events").fetchone()
        return 0 if lo is None else int(hi - lo + 1)

    def _shrink(self, max_bytes: int) -> int:
        """Delete the oldest rows until the pages in use fit in ``max_bytes``."""
        deleted = 0
        for _ in range(20):  # converges in a few passes; bounded whatever the page layout
            used = self._used_bytes()
            if used <= max_bytes:
                break
            rows = self._row_span()
            if rows == 0:
                break
            # Aim 10 % below the limit so that the next few batches do not trigger a pass each;
            # deleted rows leave partly filled index pages, hence the re-measure and loop.
            fraction = min(0.5, max(0.02, (used - 0.9 * max_bytes) / used))
            n = self._delete_oldest("1", (), max(1, math.ceil(rows * fraction)))
            deleted += n
            if n == 0:
                break
            self._vacuum()
        return deleted

    def _vacuum(self) -> None:
        with self._write_lock:
            # Each step of this pragma frees one page and execute() steps once; executescript()
            # steps it to the end (no transaction is open here, so its implicit COMMIT is moot).
            self._conn.executescript("PRAGMA incremental_vacuum;")
            # Move the freed pages out of the WAL into the file so it really shrinks.
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- reading -------------------------------------------------------------------------------
    def _reader_conn(self) -> sqlite3.Connection:
        if self._closed:
            raise HistoryError(self.path, "closed")
        if self._reader is None:
            self._reader = self._read_conn()
        return self._reader

    def _fetch(self, sql: str, params: list[Any] | tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._read_lock:
            try:
                return self._reader_conn().execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise HistoryError(self.path, _explain(exc, self.path)) from exc

    def time_range(self) -> tuple[float, float] | None:
        """The first and last stored event timestamps, or None when the file has no event."""
        self._catch_up()
        lo, hi = self._fetch("SELECT min(ts), max(ts) FROM events", ())[0]
        return None if lo is None else (float(lo), float(hi))

    def count(
        self,
        *,
        topic: str | None = None,
        agent: str | None = None,
        job: str | int | None = None,
        text: str | None = None,
        since: float | int | str | datetime | None = None,
        until: float | int | str | datetime | None = None,
    ) -> int:
        """How many stored events match the filters (see :meth:`query`)."""
        self._catch_up()
        where, params = _where(topic, agent, job, text, since, until)
        return int(self._fetch(f"SELECT count(*) FROM events{where}", params)[0][0])

    def query(
        self,
        *,
        topic: str | None = None,
        agent: str | None = None,
        job: str | int | None = None,
        text: str | None = None,
        since: float | int | str | datetime | None = None,
        until: float | int | str | datetime | None = None,
        limit: int | None = 1000,
        offset: int = 0,
        descending: bool = False,
    ) -> list[dict[str, Any]]:
        """Stored events matching every given filter, as ``Event.to_dict()`` dicts, in time order.

        Args:
            topic: an exact topic or a glob (``"agent.*"``, ``"job.*"``; ``*`` spans dots).
            agent: the agent name (exact).
            job: a ``job_id`` found in the event's data (str or int).
            text: a substring of the data (any field, including keys), the agent or the topic;
                case-insensitive for ASCII letters.
            since, until: inclusive time bounds: unix seconds, ISO-8601 strings or datetimes.
            limit, offset: paging (``limit=None``: everything from ``offset``).
            descending: newest first.

        Events still waiting to be written are committed first (a bounded wait), so what was just
        published is found.
        """
        self._catch_up()
        where, params = _where(topic, agent, job, text, since, until)
        sql, params = self._paged(f"SELECT {_COLUMNS} FROM events{where}", params, limit, offset)
        if descending:
            sql = sql.replace("ORDER BY ts, seq", "ORDER BY ts DESC, seq DESC")
        out = []
        for row in self._fetch(sql, params):
            event = _event_from_row(row)
            if event is not None:
                out.append(event.to_dict())
        return out

    @staticmethod
    def _paged(
        sql: str, params: list[Any], limit: int | None, offset: int
    ) -> tuple[str, list[Any]]:
        if limit is not None and (isinstance(limit, bool) or limit < 0):
            raise ValueError("limit must be >= 0 or None")
        if isinstance(offset, bool) or offset < 0:
            raise ValueError("offset must be >= 0")
        return (
            sql + " ORDER BY ts, seq LIMIT ? OFFSET ?",
            [*params, -1 if limit is None else int(limit), int(offset)],
        )

    def dataframe(
        self,
        *,
        topic: str | None = None,
        agent: str | None = None,
        job: str | int | None = None,
        text: str | None = None,
        since: float | int | str | datetime | None = None,
        until: float | int | str | datetime | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> Any:
        """The matching events as a pandas DataFrame (pandas is optional: install it for this).

        Columns: ``ts`` (timezone-aware UTC datetimes; ``.dt.tz_convert(None)`` or
        ``.dt.tz_convert("Europe/Paris")`` for another zone), ``topic``, ``agent``, ``job_id``,
        ``id``, ``trace_id``, ``span_id``, ``data`` (dicts). Filters as in :meth:`query`, but
        ``limit`` defaults to every matching row.
        """
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError(
                "History.dataframe() needs pandas, which codeur-widgets does not install: "
                "`pip install pandas`, or use History.query(), which returns the same rows as "
                "dicts"
            ) from exc
        rows = self.query(
            topic=topic,
            agent=agent,
            job=job,
            text=text,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        )
        columns = ["ts", "topic", "agent", "job_id", "id", "trace_id", "span_id", "data"]
        frame = pd.DataFrame(
            [
                (
                    r["ts"],
                    r["topic"],
                    r["agent"],
                    _job_of(r["data"]),
                    r["id"],
                    r["trace_id"],
                    r["span_id"],
                    r["data"],
                )
                for r in rows
            ],
            columns=columns,
        )
        # Datetimes, not floats: what a person reads, plots and resamples (UTC, tz-aware).
        frame["ts"] = pd.to_datetime(frame["ts"].astype(float), unit="s", utc=True)
        return frame

    def events(
        self,
        since: float | int | str | datetime | None = None,
        until: float | int | str | datetime | None = None,
        **filters: Any,
    ) -> Iterator[Event]:
        """Stored events in time order, read in chunks (any file size, bounded memory).

        The iteration sees one consistent snapshot of the file (its own read transaction), even
        while the worker keeps writing. Other keyword filters are those of :meth:`query`.
        """
        self._catch_up()
        where, params = _where(
            filters.pop("topic", None),
            filters.pop("agent", None),
            filters.pop("job", None),
            filters.pop("text", None),
            since,
            until,
        )
        if filters:
            raise TypeError(f"unknown filter(s): {sorted(filters)}")
        if self._closed:
            raise HistoryError(self.path, "closed")
        return self._iter_events(f"SELECT {_COLUMNS} FROM events{where} ORDER BY ts, seq", params)

    def _iter_events(self, sql: str, params: list[Any]) -> Iterator[Event]:
        try:
            conn = self._read_conn()
        except sqlite3.Error as exc:
            raise HistoryError(self.path, _explain(exc, self.path)) from exc
        try:
            conn.execute("BEGIN")  # one snapshot for the whole iteration
            cursor = conn.execute(sql, params)
            while True:
                rows = cursor.fetchmany(READ_CHUNK)
                if not rows:
                    return
                for row in rows:
                    event = _event_from_row(row)
                    if event is not None:
                        yield event
        except sqlite3.Error as exc:
            raise HistoryError(self.path, _explain(exc, self.path)) from exc
        finally:
            conn.close()

    def _batches(
        self, since: float | None, until: float | None, size: int = READ_CHUNK
    ) -> Iterator[list[Event]]:
        batch: list[Event] = []
        for event in self.events(since, until):
            batch.append(event)
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch

    # -- state of the past ---------------------------------------------------------------------
    def restore(
        self,
        hub: Hub,
        *,
        since: float | int | str | datetime | None = None,
        until: float | int | str | datetime | None = None,
    ) -> int:
        """Apply the stored events in ``[since, until]`` to ``hub``'s stores, in time order.

        They go straight to the hub's bus, not through ``hub.publish``: the hub's own counters
        (``accepted``) do not move, and a hub subscribes its recorder only after restoring, so
        nothing is written twice. Returns the number of events applied.
        """
        bus = hub.bus
        accepted = bus.accepted
        n = 0
        batches = self._batches(_as_ts(since, "since"), _as_ts(until, "until"))
        while True:
            # A batch read, decoded and applied with the cyclic collector paused (none of it is
            # cyclic garbage; see gcpause): the collector's work in a rebuild of 100,000 events
            # went from ~120 to ~40 ms.
            with paused_gc():
                batch = next(batches, None)
                if batch is None:
                    break
                n += bus.dispatch_many(batch)
        bus.accepted = accepted
        return n

    def rebuild(
        self,
        *,
        until: float | int | str | datetime | None = None,
        since: float | int | str | datetime | None = None,
        topology: Any = "codeur",
        **hub_options: Any,
    ) -> Hub:
        """A new hub, never started, whose stores hold the state as of ``until``.

        Built from the stored events in ``[since, until]`` (both inclusive; None: from the first
        / to the last stored event). Its clock is a ``FakeClock`` frozen at ``until`` (or the last
        event's time), so snapshots show ages, rates and staleness as they were then. It has no
        history and samples nothing; bind views to it to show the past. Its ``past`` is
        ``{"since", "until", "events"}`` (the range and the events applied), which keeps it from
        ever being started (by a widget or by ``start()``). ``hub_options`` go to
        :class:`~codeur_widgets.core.hub.Hub` (``heartbeat_timeout``, ``log_capacity``, ...).
        """
        from .clock import FakeClock
        from .hub import Hub

        lo, hi = _as_ts(since, "since"), _as_ts(until, "until")
        if hi is None:
            span = self.time_range()
            hi = span[1] if span is not None else self.clock()
        hub_options.setdefault("collect_system", False)
        hub = Hub(clock=FakeClock(hi), topology=topology, history=None, **hub_options)
        applied = self.restore(hub, since=lo, until=hi)
        if lo is None:
            span = self.time_range()
            lo = min(span[0], hi) if span is not None else hi
        # Marks it as a past moment: widgets never start it and it says so (repr, header).
        hub.past = {"since": lo, "until": hi, "events": applied}
        for store in hub.stores.values():
            try:
                store.tick(hi)  # staleness and expiry as of `until`
            except Exception as exc:
                hub.bus.report_error(store.tick, "history.rebuild", exc)
        return hub

    async def replay(
        self,
        hub: Hub,
        since: float | int | str | datetime | None = None,
        until: float | int | str | datetime | None = None,
        speed: float = 1.0,
        *,
        retime: bool = True,
    ) -> int:
        """Re-publish the stored events in ``[since, until]`` onto ``hub``, in time order.

        The gaps between events are kept, divided by ``speed`` (2.0: twice as fast); ``speed``
        0 or infinity publishes as fast as possible (yielding to the loop between batches).
        With ``retime`` (default) timestamps are moved to the hub's present, so a live dashboard
        shows the session as if it happened now: at a finite speed the first event is stamped
        now and the others follow at the replayed pace; as fast as possible, the last one is
        stamped now and the others keep their spacing before it. Event ids are kept, so
        replaying into a hub whose history is this file adds no row. Returns how many events
        were published. Call it on the hub's event loop (``await`` in a notebook cell).
        """
        if not (speed >= 0):  # also rejects NaN
            raise ValueError("speed must be >= 0 (0 or inf: as fast as possible)")
        fast = speed == 0 or math.isinf(speed)
        loop = asyncio.get_running_loop()
        lo, hi = _as_ts(since, "since"), _as_ts(until, "until")
        shift: float | None = None
        if fast and retime:
            self._catch_up()
            where, params = _where(None, None, None, None, lo, hi)
            last = self._fetch(f"SELECT max(ts) FROM events{where}", params)[0][0]
            if last is None:
                return 0
            shift = hub.clock() - float(last)
        start = loop.time()
        now0 = hub.clock()
        first: float | None = None
        n = 0
        pending: list[Event] = []
        for event in self.events(lo, hi):
            if first is None:
                first = event.ts
            offset = 0.0 if fast else (event.ts - first) / speed
            if not fast:
                delay = start + offset - loop.time()
                if delay > 0.002:
                    if pending:
                        n += hub.publish_many(pending)
                        pending = []
                    await asyncio.sleep(delay)
            if retime:
                ts = event.ts + shift if shift is not None else now0 + offset
                event = Event(
                    event.topic,
                    event.agent,
                    _moved_times(event.topic, event.data, ts - event.ts),
                    ts,
                    event.id,
                    event.trace_id,
                    event.span_id,
                )
            pending.append(event)
            if len(pending) >= 1_000:
                n += hub.publish_many(pending)
                pending = []
                await asyncio.sleep(0)  # let the render tick and other tasks run
        if pending:
            n += hub.publish_many(pending)
        return n

    # -- JSON Lines ----------------------------------------------------------------------------
    def export_jsonl(
        self,
        path_or_file: str | os.PathLike[str] | IO[str],
        **filters: Any,
    ) -> int:
        """Write the matching events (filters of :meth:`query`, no paging) as JSON Lines.

        One ``Event.to_dict()`` object per line, in time order. Returns the number written.
        """
        since = filters.pop("since", None)
        until = filters.pop("until", None)
        n = 0
        with _open_text(path_or_file, "w") as out:
            for event in self.events(since, until, **filters):
                out.write(json.dumps(event.to_dict(), ensure_ascii=False, separators=(",", ":")))
                out.write("\n")
                n += 1
        return n

    def import_jsonl(self, path_or_file: str | os.PathLike[str] | IO[str]) -> int:
        """Store the events of a JSON Lines file (ours, or Codeur's ``AgentEvent`` form).

        Each line is validated like input from a transport. Bad lines are skipped and named by
        line number in :attr:`last_import_errors` (and logged); the valid ones are imported.
        Events whose id is already stored are ignored. Returns the number of new rows. The
        imported events go to the file only: :meth:`rebuild` (or a new hub) shows them.
        """
        errors: list[str] = []
        inserted = 0
        batch: list[tuple[Any, ...]] = []

        def write() -> int:
            try:
                return self._write(batch)
            except sqlite3.Error as exc:
                raise HistoryError(self.path, _explain(exc, self.path)) from exc

        if self._closed:
            raise HistoryError(self.path, "closed")
        with _open_text(path_or_file, "r") as src:
            for lineno, line in enumerate(src, 1):
                if not line.strip():
                    continue
                try:
                    raw = json.loads(line)
                    event = Event.from_dict(raw, clock=self.clock)
                except json.JSONDecodeError as exc:
                    errors.append(f"line {lineno}: not JSON ({exc.msg})")
                    continue
                except InvalidEvent as exc:
                    errors.append(f"line {lineno}: {exc}")
                    continue
                batch += _rows(list(_fields(event)))
                if len(batch) >= self.batch_size:
                    inserted += write()
                    batch = []
        if batch:
            inserted += write()
        with self._cond:
            self.written += inserted
        self.last_import_errors = errors
        if errors:
            shown = "; ".join(errors[:10]) + (
                f"; … {len(errors) - 10} more" if len(errors) > 10 else ""
            )
            log.warning("import into %r skipped %d bad line(s): %s", self.path, len(errors), shown)
        return inserted

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("degraded" if self.degraded else "ok")
        return f"<History {self.path!r} {state}: {self.written} written, {self.pending} pending>"


_SPAN_TIMES = ("start", "first_token_at")


def _moved_times(topic: str, data: dict[str, Any], delta: float) -> dict[str, Any]:
    """``data`` with the times a span event carries in it (its start when only the end was
    seen, its first token) moved by ``delta`` seconds, as the event's own time is."""
    if not topic.startswith("span.") or not any(k in data for k in _SPAN_TIMES):
        return data
    moved = dict(data)
    for key in _SPAN_TIMES:
        value = moved.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            moved[key] = value + delta
    return moved


@contextlib.contextmanager
def _open_text(target: str | os.PathLike[str] | IO[str], mode: str) -> Iterator[IO[str]]:
    if isinstance(target, (str, os.PathLike)):
        with open(target, mode, encoding="utf-8", newline="\n" if mode == "w" else None) as f:
            yield f
    elif isinstance(target, io.TextIOBase) or hasattr(target, "write" if mode == "w" else "read"):
        yield target  # the caller's file: left open
    else:
        raise TypeError(f"expected a path or a text file, got {type(target).__name__}")
