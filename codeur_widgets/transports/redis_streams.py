"""Redis Streams transport: the Hub's source (:class:`RedisStreamSource`) and the agents' emitter
(:class:`Emitter`).

Wire format: an entry holds one event, in field ``e`` (the JSON of
:meth:`Event.to_dict() <codeur_widgets.core.events.Event.to_dict>`; Codeur's ``AgentEvent`` JSON
form is accepted too), or several, in field ``p`` (a JSON array of those objects). The emitter
packs the events it sends in one round trip into entries of up to ``pack`` events (100): Redis,
the reader's parsing and its acks then work per entry, not per event, which is what lets one hub
read more than 50,000 events/s on two cores. ``pack=1`` writes one event per entry. Entries
written by other producers as flat fields (``topic``/``event_type``, ``agent``, ``data`` as JSON,
``ts``...) are also read. The source's counters (``read``, ``applied``, ``acked``, ``claimed``...)
count events.

Delivery guarantee (what the tests check):

* The emitter keeps events in a bounded local buffer until Redis acknowledged their ``XADD``; when
  the buffer is full it drops the oldest and counts them. A batch that failed mid-way is sent
  again, so the stream may hold a duplicate of an event: the reader skips it by event id.
* The source reads with a consumer group and acknowledges an entry only after its event was
  applied to the hub's stores. A stop, crash or lost connection between the two leaves the entry
  pending; the source reads its own pending list (id ``0``) before new entries, and claims the
  stale pending entries of other consumers of its group (``XAUTOCLAIM``).
* Each source remembers the ids of the last ``dedupe`` events it applied (default 100,000), so an
  event delivered twice (redelivery after a reconnect, a re-sent batch) is applied once to the
  stores of that hub. A new hub (a restarted kernel) starts with empty stores: entries that the
  previous one applied but did not acknowledge are applied again there, which is what those new
  stores need. Entries trimmed by ``MAXLEN`` before they were read are lost and counted
  (``trimmed``); choose ``maxlen`` larger than events/s times the longest dashboard outage.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import itertools
import json
import logging
import os
import re
import socket
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from ..core.clock import Clock, wall_clock
from ..core.events import Event, InvalidEvent, Publisher
from ..core.gcpause import paused_gc
from ..core.tasks import wait_cancelled
from ._common import Backoff, LagStats, ParsedURL, int_param, mask_url, parse_url, scrub
from ._resp import parser_class

if TYPE_CHECKING:
    from ..core.agent import AgentHandle
    from ..core.hub import Hub
    from ..core.logs import LogHandler

__all__ = [
    "DEFAULT_GROUP",
    "DEFAULT_STREAM",
    "DEFAULT_URL",
    "Emitter",
    "RedisStreamSource",
    "mask_url",
]

log = logging.getLogger("codeur_widgets.transports.redis")

DEFAULT_URL = "redis://localhost:6379/0"
DEFAULT_STREAM = "codeur:events"
DEFAULT_GROUP = "codeur-widgets"
DEFAULT_PACK = 100
"""Events the emitter packs into one entry by default (``pack``)."""
FIELD = "e"
"""The field of an entry that holds one event: the event's JSON."""
PACK_FIELD = "p"
"""The field of an entry that packs several events: a JSON array of their objects."""
MAX_PACKED = 10_000
"""The most events the reader takes from one packed entry; a larger pack is dead-lettered."""
PACK_BYTES = 128 << 10
"""The most bytes of events the emitter packs into one entry, before the last one it adds (a
larger event is an entry of its own): a pack holds at most twice this."""
_PACK_LIMIT = 2 * PACK_BYTES + 16
"""A packed entry this large is read whatever ``max_entry_bytes`` says, which would otherwise
dead-letter a whole pack of valid events when set below it."""

_FIELD_B = FIELD.encode()
_PACK_FIELD_B = PACK_FIELD.encode()
_NET_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
_SOURCE_PARAMS = (
    "stream",
    "group",
    "consumer",
    "count",
    "block_ms",
    "claim_idle_ms",
    "dead_letter",
    "start",
    "dedupe",
    "max_entry_bytes",
)
_EMITTER_PARAMS = ("stream", "maxlen", "buffer", "batch", "pack")
_NAME_RE = re.compile(r"[^A-Za-z0-9_.:@-]")
# json.loads on bytes sniffs the encoding and re-checks types on every call; entries are UTF-8.
_json_decode = json.JSONDecoder().decode


def _json_entry(payload: bytes) -> Any:
    """The standard library's reading of an entry's JSON (UTF-8 bytes)."""
    return _json_decode(payload.decode("utf-8"))


def _entry_decoder() -> Callable[[bytes], Any]:
    """The reader's JSON decoder for entry payloads: msgspec's (C, reads the bytes as they are:
    about 5x the standard library's per entry) where it is installed (the ``redis`` extra),
    else the standard library's (:func:`_json_entry`). The reader gives whatever msgspec
    refuses to the standard library again, so both accept the same entries (NaN, lone surrogate
    escapes) and reject the same."""
    try:
        import msgspec
    except ImportError:
        return _json_entry
    decode: Callable[[bytes], Any] = msgspec.json.Decoder().decode
    return decode


_decode_entry = _entry_decoder()


def _json_payload(entry: dict[str, Any]) -> bytes:
    """The standard library's serialisation of an entry: ASCII (lone surrogates escaped)."""
    return json.dumps(entry, separators=(",", ":")).encode("ascii")


def _entry_encoder() -> Callable[[dict[str, Any]], bytes]:
    """The emitter's JSON encoder for entries: msgspec's (C, about 8x ``json.dumps`` on the
    mixed workload's events: most of an agent's cost per published event) where it is installed,
    else :func:`_json_payload`. msgspec writes UTF-8, which both of the reader's decoders read;
    what it refuses (a lone surrogate, which UTF-8 cannot hold) goes to :func:`_json_payload`,
    which escapes it. The two differ on NaN and infinities (msgspec writes null), which
    validation refuses: only an :class:`Event` built unchecked and given to ``publish_event``
    could hold one."""
    try:
        import msgspec
    except ImportError:
        return _json_payload
    encode = msgspec.json.Encoder().encode

    def payload(entry: dict[str, Any]) -> bytes:
        try:
            return encode(entry)
        except Exception:  # a lone surrogate, or an object neither can write: json decides
            return _json_payload(entry)

    return payload


_encode_entry = _entry_encoder()
_PARSER = parser_class()
_PARSER_OPTIONS: dict[str, Any] = {"parser_class": _PARSER} if _PARSER is not None else {}


def _raw_reply(response: Any, **options: Any) -> Any:
    # The source parses XREADGROUP / XAUTOCLAIM replies itself: redis-py's callbacks build a dict
    # per entry that would be thrown away at once (a third of the reader's time at 50k events/s).
    return response


def _default_consumer() -> str:
    # Stable across kernel restarts on one machine, so a restarted dashboard finds its own pending
    # entries at once (another machine's dashboard gets them by XAUTOCLAIM after claim_idle_ms).
    name = _NAME_RE.sub("_", socket.gethostname() or "hub")[:64]
    return name or "hub"


def _entry_ms(entry_id: bytes) -> int:
    """The millisecond part of a stream id (``b"1718000000000-3"``); 0 if it is not one."""
    head, _, _ = entry_id.partition(b"-")
    try:
        return int(head)
    except ValueError:
        return 0


def _xadd_head(stream: str, maxlen: int, field: bytes = _FIELD_B) -> bytes:
    """The RESP encoding of ``XADD <stream> MAXLEN ~ <maxlen> * <field>`` (the value follows)."""
    parts = [b"XADD", stream.encode(), b"MAXLEN", b"~", str(maxlen).encode(), b"*", field]
    return b"*8\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


class _Endpoint:
    """What the reader and the emitter share: a Redis URL whose credentials never show (``url``
    is masked, errors are scrubbed), and the connection and error counters of their health."""

    url: str
    """The URL with credentials masked (safe to show)."""

    def _open_url(self, url: str, ours: tuple[str, ...]) -> ParsedURL:
        parsed = parse_url(url, ours)
        self._redis_url = parsed.redis_url
        self._secrets = parsed.secrets
        self.url = parsed.masked
        self.connected = False
        self.reconnects = 0
        self.errors = 0
        self.last_error: str | None = None
        return parsed

    def _error(self, exc: BaseException) -> str:
        """Count an error and keep its text, credentials scrubbed, as ``last_error``."""
        self.errors += 1
        message = scrub(f"{type(exc).__name__}: {exc}", self._secrets)[:300]
        self.last_error = message
        return message

    @staticmethod
    def _text_param(name: str, value: str, masked: str) -> None:
        """Check a name option (stream, group...): 1 to 256 printable characters."""
        if not value or len(value) > 256 or not value.isprintable():
            raise ValueError(f"{name} must be 1 to 256 printable characters (in {masked})")


class RedisStreamSource(_Endpoint):
    """Feeds a :class:`~codeur_widgets.core.hub.Hub` from a Redis stream through a consumer group.

    Usually created from a URL by ``Hub(sources=["redis://host:6379/0?stream=codeur:events"])``.
    Query parameters (keywords of the same name win over them):

    * ``stream``: the stream key (default ``codeur:events``);
    * ``group``: the consumer group (default ``codeur-widgets``). Every group sees every event, and
      the consumers of one group share them, so give each dashboard that must see everything its
      own group (``group=alice``). Keep the name stable: it is what resumes after a restart;
    * ``consumer``: this reader's name in the group (default: the host name, stable per machine);
    * ``count``: events per read (default 1000), asked as entries at the packing of the last
      batch read; ``block_ms``: how long a read waits (1000);
    * ``claim_idle_ms``: pending entries of other consumers idle this long are claimed (60000);
    * ``dead_letter``: where malformed entries go (default ``<stream>:dead``);
    * ``start``: where a *new* group starts: ``0`` (default: the whole retained stream, so a new
      dashboard learns the agents registered before it) or ``$`` (only new entries);
    * ``dedupe``: how many recent event ids are remembered to skip redeliveries (100000);
    * ``max_entry_bytes``: larger entries are dead-lettered unread (default 1 MiB; an emitter's
      packed entry of up to 256 KiB is read whatever this says).

    Connection options of redis-py (``password``, ``socket_timeout``, ``ssl_*``...) pass through.
    Credentials never appear in :meth:`health`, ``repr``, logs or the errors it raises.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        stream: str | None = None,
        group: str | None = None,
        consumer: str | None = None,
        count: int | None = None,
        block_ms: int | None = None,
        claim_idle_ms: int | None = None,
        dead_letter: str | None = None,
        start: str | None = None,
        dedupe: int | None = None,
        max_entry_bytes: int | None = None,
        dead_letter_maxlen: int = 10_000,
        backoff: tuple[float, float] = (0.1, 5.0),
    ) -> None:
        parsed = self._open_url(url, _SOURCE_PARAMS)
        masked = parsed.masked
        pick = parsed.pick

        self.stream: str = pick(stream, "stream", DEFAULT_STREAM)
        self.group: str = pick(group, "group", DEFAULT_GROUP)
        self.consumer: str = pick(consumer, "consumer", None) or _default_consumer()
        self.count = int_param("count", pick(count, "count", 1000), 1, masked)
        self.block_ms = int_param("block_ms", pick(block_ms, "block_ms", 1000), 1, masked)
        self.claim_idle_ms = int_param(
            "claim_idle_ms", pick(claim_idle_ms, "claim_idle_ms", 60_000), 1, masked
        )
        self.dead_letter: str = pick(dead_letter, "dead_letter", None) or f"{self.stream}:dead"
        self.start_id: str = pick(start, "start", "0")
        self.dedupe = int_param("dedupe", pick(dedupe, "dedupe", 100_000), 1, masked)
        self.max_entry_bytes = int_param(
            "max_entry_bytes", pick(max_entry_bytes, "max_entry_bytes", 1 << 20), 64, masked
        )
        self.dead_letter_maxlen = dead_letter_maxlen
        for name in ("stream", "group", "consumer", "dead_letter", "start_id"):
            self._text_param(name, getattr(self, name), masked)
        self._backoff = Backoff(*backoff)

        self._hub: Hub | None = None
        self._task: asyncio.Task[None] | None = None
        self._token: _RunToken | None = None
        self._stopping: set[asyncio.Task[None]] = set()
        self._seen: set[str] = set()
        self._seen_order: deque[str] = deque()
        self.lag = LagStats()
        """Delivery lag from ``XADD`` (the entry id's time) to applied, in milliseconds."""
        self.state = "stopped"
        self.read = 0
        self.applied = 0
        # Events per entry in the last batch read (packed entries hold many; at first, the
        # emitter's default is assumed): reads ask for about ``count`` events, whatever the
        # producers' packing.
        self._per_entry = float(DEFAULT_PACK)
        self.acked = 0
        self.duplicates = 0
        self.malformed = 0
        self.oversized = 0
        self.dead_lettered = 0
        self.trimmed = 0
        self.claimed = 0
        self.groups_created = 0
        self.pending: int | None = None
        self.group_lag: int | None = None
        self.warnings: list[str] = []
        self._reported: set[type] = set()

    # -- Source protocol -----------------------------------------------------------------------
    def start(self, hub: Hub) -> None:
        """Start reading into ``hub`` on the running loop (idempotent)."""
        if self._task is not None and not self._task.done():
            return
        loop = asyncio.get_running_loop()
        self._hub = hub
        self.state = "connecting"
        self._token = token = _RunToken()
        self._task = loop.create_task(self._run(token), name=f"codeur_widgets.redis[{self.stream}]")

    def stop(self) -> None:
        """Stop reading now. Entries read but not yet acknowledged stay pending in Redis."""
        task, self._task = self._task, None
        if self._token is not None:
            self._token.stopped = True
        if task is not None and not task.done():
            task.cancel()
            self._stopping.add(task)
        self.state = "stopped"
        self.connected = False

    async def aclose(self) -> None:
        """Stop and wait until the reader has closed its connection."""
        self.stop()
        await wait_cancelled(self._stopping)

    def health(self) -> dict[str, Any]:
        """Counters and state; JSON-serialisable; never contains credentials."""
        return {
            "kind": "redis-streams",
            "url": self.url,
            "stream": self.stream,
            "group": self.group,
            "consumer": self.consumer,
            "state": self.state,
            "connected": self.connected,
            "read": self.read,
            "applied": self.applied,
            "acked": self.acked,
            "duplicates": self.duplicates,
            "malformed": self.malformed,
            "oversized": self.oversized,
            "dead_lettered": self.dead_lettered,
            "dead_letter": self.dead_letter,
            "trimmed": self.trimmed,
            "claimed": self.claimed,
            "reconnects": self.reconnects,
            "errors": self.errors,
            "last_error": self.last_error,
            "pending": self.pending,
            "group_lag": self.group_lag,
            "lag_ms": self.lag.summary(),
            "warnings": list(self.warnings),
        }

    def __repr__(self) -> str:
        return (
            f"<RedisStreamSource {self.url} stream={self.stream!r} group={self.group!r} "
            f"consumer={self.consumer!r} {self.state}>"
        )

    # -- the reader ----------------------------------------------------------------------------
    def _client(self, *, single: bool = False) -> aioredis.Redis:
        """A client of the source's server; ``single``: one connection, used in turn (a command
        is then written as soon as it is issued, not after the pool's checks have yielded)."""
        client = aioredis.Redis.from_url(
            self._redis_url,
            protocol=2,
            decode_responses=False,
            # A blocking read must not time out client-side before the server answers it.
            socket_timeout=self.block_ms / 1000.0 + 10.0,
            socket_connect_timeout=5.0,
            # Our own loop retries with backoff and counts reconnects; redis-py must not retry
            # underneath it (that would hide outages and stretch the time a stop takes).
            retry=AsyncRetry(NoBackoff(), 0),
            client_name=f"codeur-widgets:{self.group}:{self.consumer}"[:120],
            single_connection_client=single,
            **_PARSER_OPTIONS,
        )
        client.set_response_callback("XREADGROUP", _raw_reply)
        client.set_response_callback("XAUTOCLAIM", _raw_reply)
        return client

    async def _run(self, token: _RunToken) -> None:
        loop = asyncio.get_running_loop()
        first = True
        # Bounded by stop(): a reader runs as long as its hub.
        while not token.stopped:
            client = self._client()
            try:
                await self._ensure_group(client, self.start_id)
                self._set_state(token, "reading", connected=True)
                if not first:
                    log.info("reconnected to %s (stream %r)", self.url, self.stream)
                first = False
                await self._read_pending(client, token)
                await self._read_new(client, token, loop)
            except (asyncio.CancelledError, _Stopped):
                return
            except ResponseError as exc:
                if "NOGROUP" in str(exc):
                    # The stream or group vanished (deleted, or Redis restarted without its data):
                    # recreate it from the start of whatever the stream now holds.
                    self._record(exc, "the consumer group is gone; recreating it")
                    with contextlib.suppress(*_NET_ERRORS, ResponseError):
                        await self._ensure_group(client, "0")
                else:
                    self._record(exc, "Redis refused a command")
            except _NET_ERRORS as exc:
                self.reconnects += 1
                self._record(exc, "lost the connection; reconnecting with backoff")
            except Exception as exc:  # a bug guard: the reader must outlive anything
                self._record(exc, "unexpected error in the reader", unexpected=True)
            finally:
                self._set_state(token, None, connected=False)
                with contextlib.suppress(Exception):
                    await client.aclose()
            if token.stopped:
                return
            self._set_state(token, "reconnecting", connected=False)
            await asyncio.sleep(self._backoff.next())

    async def _read_new(
        self, client: aioredis.Redis, token: _RunToken, loop: asyncio.AbstractEventLoop
    ) -> None:
        """Read and apply new entries until stopped, one batch read ahead.

        The next ``XREADGROUP`` is sent (on a connection of its own) before the batch at hand is
        applied, and the batch's ``XACK`` goes out while the next one is applied: Redis works
        while this thread applies, instead of the reader waiting two round trips per batch. On
        the 2-core benchmark machine shared with four emitters and redis-server, those waits
        were half the reader's time (4.3 s reading and 1.2 s acking beside 5.2 s applying, for
        400,000 events). A batch read ahead and never applied (a stop, a lost connection) stays
        pending in the group and is read again first (``_read_pending``), as one read before a
        crash is.
        """
        next_claim = next_info = 0.0
        ahead: asyncio.Task[Any] | None = None
        acking: asyncio.Task[None] | None = None
        # New entries are read on a connection of their own, so a read ahead is written at once.
        reader = self._client(single=True)
        try:
            while not token.stopped:
                now = loop.time()
                if now >= next_claim:
                    await self._claim(client, token)
                    next_claim = now + max(1.0, self.claim_idle_ms / 2000.0)
                if now >= next_info:
                    await self._refresh_info(client)
                    next_info = now + 5.0
                if ahead is None:
                    entries = await self._read(reader, ">", block=True)
                else:
                    entries, ahead = await ahead, None
                self._backoff.reset()
                if not entries:
                    continue
                ahead = asyncio.ensure_future(self._read(reader, ">", block=True))
                await asyncio.sleep(0)  # the read ahead sends its request now
                ids, dead, read = self._apply_batch(entries, token)
                # The ack goes out while the next batch is applied; one at a time, and a failed
                # one raises here (reconnect), its batch left pending to be read again.
                if acking is not None:
                    await acking
                acking = asyncio.ensure_future(self._ack(client, ids, dead, read))
            if acking is not None:
                await acking
                acking = None
        finally:
            # Cancelled (a stop, a lost connection): what was read and not acknowledged stays
            # pending in Redis, as stop() says.
            late = {t for t in (ahead, acking) if t is not None}
            for task in late:
                task.cancel()
            await wait_cancelled(late)
            with contextlib.suppress(Exception):
                await reader.aclose()

    def _set_state(self, token: _RunToken, state: str | None, connected: bool) -> None:
        # Only the current reader reports: one that was stopped may still be winding down
        # while a restarted one already reads.
        if token is self._token and not token.stopped:
            self.connected = connected
            if state is not None:
                self.state = state

    def _record(self, exc: BaseException, what: str, unexpected: bool = False) -> None:
        message = self._error(exc)
        # Logged once per error type: an outage must not flood the log (or the dashboard's tail).
        if type(exc) not in self._reported:
            self._reported.add(type(exc))
            if unexpected:
                log.error("%s on %s: %s", what, self.url, message)
            else:
                log.warning("%s on %s: %s", what, self.url, message)

    async def _ensure_group(self, client: aioredis.Redis, start_id: str) -> None:
        try:
            await client.xgroup_create(self.stream, self.group, id=start_id, mkstream=True)
            self.groups_created += 1
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _read_pending(self, client: aioredis.Redis, token: _RunToken) -> None:
        """Apply this consumer's pending entries (read before a stop or crash, never acked)."""
        last: bytes | str = b"0"
        # Each round acks what it read, so the list shrinks; the bound is a guard, not a limit.
        for _ in range(1_000_000):
            entries = await self._read(client, last, block=False)
            if not entries:
                return
            await self._handle(client, entries, token)
            last = entries[-1][0]

    async def _read(self, client: aioredis.Redis, after: bytes | str, block: bool) -> Any:
        """One ``XREADGROUP`` of up to ``count`` entries after ``after`` (``">"``: new ones,
        waiting up to ``block_ms`` when ``block``); the raw entries, or None."""
        wait = ("BLOCK", self.block_ms) if block else ()
        reply = await client.execute_command(
            "XREADGROUP", "GROUP", self.group, self.consumer, "COUNT", self._entries(), *wait,
            "STREAMS", self.stream, after,
        )  # fmt: skip
        return reply[0][1] if reply else None

    def _entries(self) -> int:
        """Entries per read: about ``count`` events at the packing of the last batch read."""
        return max(1, round(self.count / self._per_entry))

    async def _claim(self, client: aioredis.Redis, token: _RunToken) -> None:
        """Take over entries that other consumers of the group read but never acknowledged."""
        cursor: bytes | str = b"0-0"
        for _ in range(1_000):
            reply = await client.execute_command(
                "XAUTOCLAIM",
                self.stream,
                self.group,
                self.consumer,
                self.claim_idle_ms,
                cursor,
                "COUNT",
                self._entries(),
            )
            cursor = reply[0]
            entries = reply[1]
            if len(reply) > 2 and reply[2]:  # Redis 7: pending ids trimmed from the stream
                self.trimmed += len(reply[2])
            if entries:
                self.claimed += await self._handle(client, entries, token)
            if cursor in (b"0-0", "0-0"):
                return

    async def _refresh_info(self, client: aioredis.Redis) -> None:
        """Pending count, group lag and a warning when another live reader shares the group."""
        try:
            groups = await client.xinfo_groups(self.stream)
            consumers = await client.xinfo_consumers(self.stream, self.group)
        except ResponseError:
            return
        for g in groups:
            if _text(g.get("name")) == self.group:
                self.pending = g.get("pending")
                lag = g.get("lag")
                self.group_lag = lag if isinstance(lag, int) else None
        live_after = max(10_000, 3 * self.block_ms)
        others = [
            _text(c.get("name"))
            for c in consumers
            if _text(c.get("name")) != self.consumer
            and isinstance(c.get("idle"), int)
            and c["idle"] < live_after
        ]
        self.warnings = (
            [
                f"group {self.group!r} is shared with {len(others)} other live reader(s) "
                f"({', '.join(sorted(others)[:3])}): each sees only part of the events; give "
                "each dashboard its own group=..."
            ]
            if others
            else []
        )

    async def _handle(self, client: aioredis.Redis, entries: list[Any], token: _RunToken) -> int:
        """Apply a batch and acknowledge it; the number of events it held."""
        ids, dead, read = self._apply_batch(entries, token)
        await self._ack(client, ids, dead, read)
        return read

    def _apply_batch(
        self, entries: list[Any], token: _RunToken
    ) -> tuple[list[bytes], list[dict[Any, Any]], int]:
        """:meth:`_apply`, unless a stop was asked for since the batch was read."""
        if token.stopped:
            # Read after stop() was asked for: leave the entries pending, apply nothing more.
            raise _Stopped
        with paused_gc():  # a batch's events are no cyclic garbage (see core.gcpause)
            return self._apply(entries)

    async def _ack(
        self, client: aioredis.Redis, ids: list[bytes], dead: list[Any], events: int
    ) -> None:
        """Acknowledge a batch applied (its entries, holding ``events`` events), after copying its
        malformed entries to the dead letters."""
        if not ids:
            return
        # Dead-letter copies and the ack go together (MULTI/EXEC): a malformed entry is either
        # moved and acknowledged, or left pending to be tried again.
        pipe = client.pipeline(transaction=bool(dead))
        for fields in dead:
            pipe.xadd(self.dead_letter, fields, maxlen=self.dead_letter_maxlen, approximate=True)
        pipe.xack(self.stream, self.group, *ids)
        await pipe.execute()
        self.acked += events
        self.dead_lettered += len(dead)

    def _apply(self, entries: list[Any]) -> tuple[list[bytes], list[dict[Any, Any]], int]:
        """Validate, dedupe and apply a batch; returns the ids to ack, the dead-letter entries and
        the number of events read (an entry unread counts one)."""
        hub = self._hub
        assert hub is not None
        clock = hub.clock
        from_dict = Event.from_dict
        seen = self._seen
        order = self._seen_order
        limit = self.dedupe
        ids: list[bytes] = []
        events: list[Event] = []
        stamps: list[int] = []
        dead: list[dict[Any, Any]] = []
        read = 0
        for entry in entries:
            entry_id = entry[0]
            fields = entry[1]
            ids.append(entry_id)
            raws = self._unpack(hub, entry_id, fields, dead)
            if not raws:
                read += 1  # trimmed, oversized or unreadable: counted and dead-lettered there
                continue
            read += len(raws)
            packed = len(fields) == 2 and fields[0] == _PACK_FIELD_B
            ms = _entry_ms(entry_id)
            for index, raw in enumerate(raws):
                try:
                    if type(raw) is dict and not raw.get("id") and not raw.get("event_id"):
                        # A stable id for events from producers that give none: redeliveries of
                        # the same entry are then recognised too.
                        raw["id"] = f"{entry_id.decode()}:{index}" if packed else entry_id.decode()
                    event = from_dict(raw, clock=clock)
                except Exception as exc:  # InvalidEvent names its field; the rest is hostile input
                    if isinstance(exc, InvalidEvent):
                        field, reason = exc.field, exc.reason
                    else:
                        field, reason = "event", type(exc).__name__
                    self._reject(hub, entry_id, fields, raw, index if packed else None, field,
                                 reason, dead)  # fmt: skip
                    continue
                key = event.id
                if key in seen:
                    self.duplicates += 1
                    continue
                seen.add(key)
                order.append(key)
                if len(order) > limit:
                    seen.discard(order.popleft())
                events.append(event)
                stamps.append(ms)
        self.read += read
        if entries:
            self._per_entry = read / len(entries)
        if events:
            # Event objects only: cannot raise; handlers are isolated. From the network: span
            # content is kept only when the hub's capture_content is True.
            hub.publish_many(events, remote=True)
            self.applied += len(events)
            now_ms = int(time.time() * 1000.0)
            self.lag.add_many([now_ms - ms for ms in stamps])
        return ids, dead, read

    def _unpack(
        self, hub: Hub, entry_id: bytes, fields: list[bytes] | None, dead: list[dict[Any, Any]]
    ) -> list[Any]:
        """The raw events of one entry (decoded JSON, not validated yet): one for an ``e`` entry
        or a flat one, the array's items for a packed one; none for an entry trimmed, oversized
        or unreadable (counted, and dead-lettered with its reason)."""
        if fields is None:  # pending, but trimmed from the stream before it was read
            self.trimmed += 1
            return []
        max_bytes = self.max_entry_bytes
        try:
            kind = fields[0] if len(fields) == 2 else None
            if kind in (_FIELD_B, _PACK_FIELD_B):
                payload = fields[1]
                if kind == _PACK_FIELD_B:
                    max_bytes = max(max_bytes, _PACK_LIMIT)
                size = len(payload)
                if size > max_bytes:
                    self._oversized(hub, entry_id, fields, size, max_bytes, payload[:200], dead)
                    return []
                try:
                    raw = _decode_entry(payload)
                except Exception:  # msgspec's refusal: the standard library decides
                    raw = _json_entry(payload)
                if kind == _FIELD_B:
                    return [raw]
                if type(raw) is not list or not raw:
                    self._malformed(hub, entry_id, fields, "event", "a pack is not a list of "
                                    "events", dead)  # fmt: skip
                    return []
                if len(raw) > MAX_PACKED:
                    self._malformed(hub, entry_id, fields, "event", f"a pack of {len(raw)} "
                                    f"events > {MAX_PACKED}", dead)  # fmt: skip
                    return []
                return raw
            size = sum(len(f) for f in fields)
            if size > max_bytes:
                self._oversized(hub, entry_id, fields, size, max_bytes, fields[:4], dead)
                return []
            return [_flat_event(fields)]
        except Exception as exc:  # bad JSON, bad UTF-8, nesting too deep, hostile input
            self._malformed(hub, entry_id, fields, "event", type(exc).__name__, dead)
            return []

    def _oversized(
        self,
        hub: Hub,
        entry_id: bytes,
        fields: list[bytes],
        size: int,
        max_bytes: int,
        sample: object,
        dead: list[dict[Any, Any]],
    ) -> None:
        """An entry over the size cap: counted, rejected with ``sample``, its head dead-lettered."""
        self.oversized += 1
        dead.append(self._dead(entry_id, fields, "oversized", size))
        hub.bus.reject(sample, "event", f"entry of {size} bytes > {max_bytes}")

    def _reject(
        self,
        hub: Hub,
        entry_id: bytes,
        fields: list[bytes],
        raw: Any,
        index: int | None,
        field: str,
        reason: str,
        dead: list[dict[Any, Any]],
    ) -> None:
        """An event that failed validation: the entry is dead-lettered, or for the event at
        ``index`` of a packed one, the event alone (its JSON as field ``e``, and its index)."""
        if index is None:
            self._malformed(hub, entry_id, fields, field, reason, dead)
            return
        try:
            item = _json_payload(raw)
        except Exception:  # not JSON-writable (it came from JSON, so a guard only)
            item = repr(raw).encode("utf-8", "replace")[:1024]
        self._malformed(hub, entry_id, [_FIELD_B, item], field, reason, dead)
        dead[-1]["index"] = index

    def _malformed(
        self,
        hub: Hub,
        entry_id: bytes,
        fields: list[bytes],
        field: str,
        reason: str,
        dead: list[dict[Any, Any]],
    ) -> None:
        self.malformed += 1
        sample = fields[1] if len(fields) == 2 else fields
        hub.bus.reject(sample, field, reason)
        dead.append(self._dead(entry_id, fields, f"{field}: {reason}"[:200], None))

    def _dead(
        self, entry_id: bytes, fields: list[bytes], reason: str, size: int | None
    ) -> dict[Any, Any]:
        out: dict[Any, Any] = {
            "reason": reason,
            "id": entry_id,
            "stream": self.stream,
            "group": self.group,
        }
        if size is not None:
            # Only the head of an oversized entry is copied: the dead-letter stream stays small.
            out["size"] = size
            out["head"] = b"".join(fields[1::2])[:1024]
            return out
        for i in range(0, len(fields) - 1, 2):
            out[b"f:" + fields[i][:100]] = fields[i + 1]
        return out


class _RunToken:
    """Tells one reader task that it was stopped.

    Cancelling the task is not enough on its own: with Python 3.11, ``asyncio.wait_for`` inside
    redis-py swallows a cancellation that arrives while the task is running (a hub stopped from
    one of its own event handlers), and the reader would go on. The task checks this flag after
    every await.
    """

    __slots__ = ("stopped",)

    def __init__(self) -> None:
        self.stopped = False


class _Stopped(Exception):
    """Raised inside a reader whose token was stopped."""


def _flat_event(fields: list[bytes]) -> dict[str, Any]:
    """An event written as separate fields by another producer (``data`` as JSON text)."""
    raw: dict[str, Any] = {}
    for i in range(0, len(fields) - 1, 2):
        raw[fields[i].decode("utf-8")] = fields[i + 1].decode("utf-8")
    data = raw.get("data")
    if isinstance(data, str):
        raw["data"] = json.loads(data) if data else None
    ts = raw.get("ts", raw.get("timestamp"))
    if isinstance(ts, str):
        with contextlib.suppress(ValueError):
            number = float(ts)
            raw["ts" if "ts" in raw else "timestamp"] = number
    return raw


# ---------------------------------------------------------------------------------------------
# The emitter (agent side)
# ---------------------------------------------------------------------------------------------

_live_emitters: weakref.WeakSet[Emitter] = weakref.WeakSet()


def _close_all_at_exit() -> None:
    for emitter in list(_live_emitters):
        with contextlib.suppress(Exception):
            emitter.close(timeout=emitter.exit_timeout)


def _after_fork_in_child() -> None:
    for emitter in list(_live_emitters):
        emitter._after_fork()


atexit.register(_close_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _NoCommandBus:
    """Stands in for a hub's bus on an emitter: admin commands do not travel back to agents."""

    def subscribe(self, pattern: str, handler: Callable[..., Any]) -> Any:
        raise NotImplementedError(
            "admin commands are not delivered to agents in other processes (the Redis transport "
            "carries events one way, agents to dashboard)"
        )


class Emitter(_Endpoint, Publisher):
    """Publishes events to a Redis stream from an agent process, without ever blocking it.

    ``publish`` validates the event (a mistake raises :class:`InvalidEvent` in the caller),
    serialises it and appends it to a bounded local buffer; a background thread sends the buffer
    in pipelined batches of ``XADD … MAXLEN ~ maxlen``. When Redis is unreachable the buffer keeps
    the newest ``buffer`` events (the oldest are dropped and counted in ``dropped``) and the thread
    reconnects with exponential backoff. While a batch is in flight the agent keeps publishing into
    the buffer, so for the length of one round trip up to ``buffer + batch`` events are held; if
    that batch fails it is put back at the head and the oldest beyond ``buffer`` are dropped then.
    Nothing here imports Jupyter, networkx or psutil.

    A thread rather than an asyncio task does the I/O so that the same emitter serves sync code,
    threads and async code alike, and keeps sending while an agent's loop is busy with CPU work.

    Args:
        url: ``redis://[user:password@]host:port/db`` (also ``rediss://``, ``unix://``); query
            parameters ``stream``, ``maxlen``, ``buffer``, ``batch`` are read like the keywords.
        stream: the stream key (default ``codeur:events``).
        maxlen: approximate length cap of the stream (``MAXLEN ~``), default 1,000,000 entries.
        buffer: events kept locally while they cannot be sent (default 100,000).
        batch: events per pipelined round trip (default 1,000).
        pack: events packed into one stream entry (default 100; at most :data:`PACK_BYTES` of
            JSON, one event alone when it is larger). Packing is what lets one hub read 50,000
            events/s and more: Redis, the reader's parsing and its acks work per entry. ``pack=1``
            writes one event per entry, for consumers other than codeur-widgets that expect it.
        max_entry_bytes: a larger serialised event is refused by ``publish`` (default 1 MiB).
        exit_timeout: seconds spent delivering what is buffered when the process exits.
        heartbeat_interval: seconds between heartbeats of :meth:`agent` handles.
        clock: unix-seconds clock for event timestamps.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        stream: str | None = None,
        maxlen: int | None = None,
        buffer: int | None = None,
        batch: int | None = None,
        pack: int | None = None,
        max_entry_bytes: int = 1 << 20,
        exit_timeout: float = 2.0,
        heartbeat_interval: float = 5.0,
        connect_timeout: float = 2.0,
        backoff: tuple[float, float] = (0.05, 5.0),
        clock: Clock = wall_clock,
    ) -> None:
        parsed = self._open_url(url, _EMITTER_PARAMS)
        masked = parsed.masked
        pick = parsed.pick

        self.stream: str = pick(stream, "stream", DEFAULT_STREAM)
        self._text_param("stream", self.stream, masked)
        self.maxlen = int_param("maxlen", pick(maxlen, "maxlen", 1_000_000), 1, masked)
        self.capacity = int_param("buffer", pick(buffer, "buffer", 100_000), 1, masked)
        self.batch = int_param("batch", pick(batch, "batch", 1000), 1, masked)
        self.pack = int_param("pack", pick(pack, "pack", DEFAULT_PACK), 1, masked)
        self.max_entry_bytes = max_entry_bytes
        self.exit_timeout = exit_timeout
        self.heartbeat_interval = heartbeat_interval
        self.connect_timeout = connect_timeout
        self.clock = clock
        Backoff(*backoff)  # validates now: a bad value must fail here, not in the thread
        self._backoff_args = backoff
        self.bus = _NoCommandBus()

        self._lock = threading.Lock()
        self._buf: deque[bytes] = deque()
        self._head = _xadd_head(self.stream, self.maxlen)
        self._pack_head = _xadd_head(self.stream, self.maxlen, _PACK_FIELD_B)
        self._inflight = 0
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._deadline = float("inf")
        self._thread: threading.Thread | None = None
        self._handles: weakref.WeakSet[AgentHandle] = weakref.WeakSet()
        self.closed = False
        self.published = 0
        self.sent = 0
        self.dropped = 0
        self.failed = 0
        self._down_since: float | None = None
        _live_emitters.add(self)

    # -- publishing (any thread, never blocks) ------------------------------------------------
    # publish(topic, agent, *, data, ts, id, trace_id, span_id, **fields): see Publisher. It
    # validates in the caller and queues; after close() the event is counted in ``dropped``.

    publish_threadsafe = Publisher.publish
    """The same as :meth:`publish` (already safe from any thread); lets an emitter stand in for a
    hub where code expects ``publish_threadsafe`` (agent handles, the bridge)."""

    async def apublish(
        self,
        topic: str,
        agent: str | None = None,
        *,
        data: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> Event:
        """:meth:`publish` for async code (it returns at once too; the I/O is on the thread)."""
        return self.publish(topic, agent, data=data, **fields)

    def publish_event(self, event: Event) -> None:
        """Queue an already validated :class:`Event`."""
        self._accept(event)

    def _accept(self, event: Event) -> None:
        payload = _encode_entry(event.to_dict())
        if len(payload) > self.max_entry_bytes:
            raise InvalidEvent(
                "event", f"{len(payload)} bytes serialised, more than {self.max_entry_bytes}"
            )
        if self._thread is None:
            self._start_thread()
        with self._lock:
            if self.closed:
                self.dropped += 1
                return
            buf = self._buf
            if len(buf) >= self.capacity:
                buf.popleft()
                self.dropped += 1
            buf.append(payload)
            self.published += 1
            # Wake the sender only when the buffer was empty: while it is busy it comes back for
            # more by itself, so a busy agent pays no wake-up per event.
            wake = len(buf) == 1
        if wake:
            self._wake.set()

    # -- agent handles and logging ----------------------------------------------------------------
    def agent(
        self,
        name: str,
        model: str | None = None,
        role: str | None = None,
        heartbeat_interval: float | None = None,
    ) -> AgentHandle:
        """Register an agent and return its handle, as ``hub.agent(...)`` does in a notebook.

        Tasks, tokens, flows, errors and logs of the handle go to Redis; heartbeats are sent by the
        emitter's thread. Admin commands (``on_command``) are not available over Redis.
        """
        from ..core.agent import AgentHandle  # pure Python; imported only when asked for

        return AgentHandle(
            self,  # type: ignore[arg-type]  # duck-types the hub's publishing side
            name,
            model=model,
            role=role,
            heartbeat_interval=heartbeat_interval,
        )

    def _register_handle(self, handle: AgentHandle) -> None:
        self._handles.add(handle)
        if self._thread is None:
            self._start_thread()

    def _unregister_handle(self, handle: AgentHandle) -> None:
        self._handles.discard(handle)

    def _publish_log(self, topic: str, agent: str | None, data: dict[str, Any]) -> None:
        self.publish(topic, agent, data=data)

    def log_handler(self, level: int | str = "INFO", source: str | None = None) -> LogHandler:
        """A :class:`logging.Handler` shipping records as ``log`` events (not attached)."""
        from ..core.logs import LogHandler

        return LogHandler(self._publish_log, source=source, level=level)

    def capture_logging(
        self,
        logger: str | logging.Logger | None = None,
        level: int | str = "INFO",
        source: str | None = None,
    ) -> LogHandler:
        """Attach a log handler to ``logger`` (root if None), like ``hub.capture_logging``."""
        from ..core.logs import capture_logging

        return capture_logging(self._publish_log, logger, level, source, owner=self)

    # -- delivery --------------------------------------------------------------------------------
    @property
    def buffered(self) -> int:
        """Events not yet acknowledged by Redis (queued or in flight)."""
        return len(self._buf) + self._inflight

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Wait until everything published so far was sent (True) or ``timeout`` passed (False).

        Meant for the end of a script or a test, not for the hot path.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        # Polling keeps the hot path free of a second lock or condition; this is not hot.
        for _ in itertools.count():
            done = self._flushed(deadline)
            if done is not None:
                return done
            time.sleep(0.002)
        return False  # pragma: no cover - itertools.count never ends

    async def aflush(self, timeout: float | None = 5.0) -> bool:
        """:meth:`flush` for async code: waits without blocking the event loop."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for _ in itertools.count():
            done = self._flushed(deadline)
            if done is not None:
                return done
            await asyncio.sleep(0.005)
        return False  # pragma: no cover

    def _flushed(self, deadline: float | None) -> bool | None:
        """One look for :meth:`flush`: True when everything was sent, False when waiting is
        over (past ``deadline``, or no sender thread), None to look again."""
        with self._lock:  # a batch is taken and counted in flight under it: never half-seen
            if not self._buf and not self._inflight:
                return True
        if deadline is not None and time.monotonic() >= deadline:
            return False
        if self._thread is None or not self._thread.is_alive():
            return False
        return None

    def close(self, timeout: float = 5.0) -> bool:
        """Deliver what is buffered (up to ``timeout`` seconds) and stop the thread.

        Returns True when nothing was left undelivered. Idempotent; also run at process exit.
        """
        for handle in list(self._handles):
            with contextlib.suppress(Exception):
                handle.close()  # marks the agent offline, as a last event
        with self._lock:
            already = self.closed
            self.closed = True
            self._deadline = time.monotonic() + timeout
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._closing.set()
            self._wake.set()
            thread.join(timeout + 1.0)
        _live_emitters.discard(self)
        left = self.buffered
        if left and not already:
            log.warning(
                "closed with %d event(s) undelivered to %s (stream %r)", left, self.url, self.stream
            )
        return left == 0

    async def aclose(self, timeout: float = 5.0) -> bool:
        """:meth:`close` for async code (the waiting happens in a worker thread)."""
        return await asyncio.to_thread(self.close, timeout)

    def __enter__(self) -> Emitter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Emitter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def health(self) -> dict[str, Any]:
        """Counters and state; JSON-serialisable; never contains credentials."""
        return {
            "kind": "redis-streams-emitter",
            "url": self.url,
            "stream": self.stream,
            "connected": self.connected,
            "closed": self.closed,
            "published": self.published,
            "sent": self.sent,
            "buffered": self.buffered,
            "capacity": self.capacity,
            "dropped": self.dropped,
            "failed": self.failed,
            "reconnects": self.reconnects,
            "errors": self.errors,
            "last_error": self.last_error,
        }

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("connected" if self.connected else "disconnected")
        return (
            f"<Emitter {self.url} stream={self.stream!r} {state}: {self.sent} sent, "
            f"{self.buffered} buffered, {self.dropped} dropped>"
        )

    # -- the sender thread -----------------------------------------------------------------------
    def _start_thread(self) -> None:
        with self._lock:
            if self._thread is not None or self.closed:
                return
            thread = threading.Thread(
                target=self._run, name=f"codeur_widgets.emit[{self.stream}]", daemon=True
            )
            self._thread = thread
        thread.start()

    def _after_fork(self) -> None:
        # The child has the parent's buffer but not its thread; those events belong to the
        # parent, which sends them. The child starts clean and starts its own thread lazily.
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._buf = deque()
        self._inflight = 0
        self._thread = None
        self._handles = weakref.WeakSet()

    def _client(self) -> redis.Redis:
        return redis.Redis.from_url(
            self._redis_url,
            protocol=2,
            socket_timeout=max(5.0, self.connect_timeout),
            socket_connect_timeout=self.connect_timeout,
            retry=Retry(NoBackoff(), 0),  # our loop backs off and counts; see the source
            client_name="codeur-widgets-emitter",
        )

    def _take(self) -> list[bytes]:
        with self._lock:
            buf = self._buf
            n = min(len(buf), self.batch)
            batch = [buf.popleft() for _ in range(n)]
            self._inflight = n
            return batch

    def _requeue(self, batch: list[bytes]) -> None:
        """Put an unsent batch back at the head; drop the oldest beyond capacity (counted)."""
        with self._lock:
            buf = self._buf
            buf.extendleft(reversed(batch))
            self._inflight = 0
            excess = len(buf) - self.capacity
            for _ in range(max(0, excess)):
                buf.popleft()
            self.dropped += max(0, excess)

    def _run(self) -> None:
        client: redis.Redis | None = None
        backoff = Backoff(*self._backoff_args)
        next_beat = time.monotonic() + self.heartbeat_interval
        # Bounded by close(): the loop ends when closing and empty, or past the close deadline.
        while True:
            now = time.monotonic()
            if now >= next_beat:
                next_beat = now + self.heartbeat_interval
                self._beat()
            closing = self._closing.is_set()
            if closing and now >= self._deadline:
                break
            # Cleared before looking at the buffer: a publish after this look sets it again.
            self._wake.clear()
            batch = self._take()
            if not batch:
                if closing:
                    break
                self._wake.wait(min(1.0, max(0.0, next_beat - now)))
                continue
            try:
                if client is None:
                    client = self._client()
                refused, error = self._send(client, batch)
            except Exception as exc:  # the connection (or the client) failed: resend it all
                self._requeue(batch)
                self._failed(exc)
                if client is not None:
                    with contextlib.suppress(Exception):
                        client.close()
                    client = None
                self._pause(backoff.next())
                continue
            if error is None:
                backoff.reset()
                continue
            # Refused by the server (out of memory, wrong key type...): keep those, back off.
            self._requeue(refused)
            self._failed(error)
            self._pause(backoff.next())
        with self._lock:
            self._inflight = 0
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        self.connected = False

    def _pause(self, delay: float) -> None:
        """Sleep ``delay`` seconds, or until close(); never past the close deadline."""
        if self._closing.is_set():
            time.sleep(min(delay, max(0.0, self._deadline - time.monotonic())))
        else:
            self._closing.wait(delay)

    def _send(
        self, client: redis.Redis, batch: list[bytes]
    ) -> tuple[list[bytes], Exception | None]:
        """One pipelined round trip; returns the events the server refused and its first error.

        The events are packed into entries (:meth:`_packs`) and the commands are packed here
        rather than by redis-py's pipeline: the XADD head is the same for every entry, and
        packing it once makes sending five times cheaper per entry (this thread shares the
        agent's GIL, so its cost is the agent's cost).
        """
        packs = self._packs(batch)
        pool = client.connection_pool
        conn = pool.get_connection()
        try:
            head, pack_head = self._head, self._pack_head
            commands = []
            for start, stop in packs:
                if stop - start == 1:
                    p = batch[start]
                    commands.append(b"%s$%d\r\n%s\r\n" % (head, len(p), p))
                else:
                    p = b"[%s]" % b",".join(batch[start:stop])
                    commands.append(b"%s$%d\r\n%s\r\n" % (pack_head, len(p), p))
            conn.send_packed_command([b"".join(commands)], check_health=False)
            results: list[Any] = []
            for _ in range(len(packs)):
                try:
                    results.append(conn.read_response())
                except ResponseError as exc:  # one refused entry; the replies after it follow
                    results.append(exc)
        except BaseException:
            conn.disconnect()  # replies may be half read: never reuse this connection
            raise
        finally:
            pool.release(conn)
        refused = [
            p
            for (start, stop), r in zip(packs, results, strict=True)
            if isinstance(r, Exception)
            for p in batch[start:stop]
        ]
        with self._lock:
            self._inflight = len(refused)  # until _requeue puts them back: flush() waits
            self.sent += len(batch) - len(refused)
        if not self.connected:
            if self._down_since is not None:
                down = time.monotonic() - self._down_since
                log.info("connected again to %s after %.1f s", self.url, down)
            self.connected = True
            self._down_since = None
        if not refused:
            return refused, None
        self.failed += len(refused)
        error = next(r for r in results if isinstance(r, Exception))
        return refused, error

    def _packs(self, batch: list[bytes]) -> list[tuple[int, int]]:
        """The entries a batch is written as: ``(start, stop)`` runs of at most ``pack`` events
        and :data:`PACK_BYTES` bytes (an event larger than that is an entry of its own)."""
        limit = self.pack
        runs: list[tuple[int, int]] = []
        start = size = 0
        for i, payload in enumerate(batch):
            n = len(payload) + 1  # and its comma
            if i > start and (i - start >= limit or size + n > PACK_BYTES):
                runs.append((start, i))
                start, size = i, 0
            size += n
        if batch:
            runs.append((start, len(batch)))
        return runs

    def _failed(self, exc: BaseException) -> None:
        message = self._error(exc)
        if isinstance(exc, _NET_ERRORS):
            self.reconnects += 1
        if self.connected or self._down_since is None:
            self._down_since = time.monotonic()
            log.warning(
                "cannot send to %s (%s); buffering up to %d events and retrying with backoff",
                self.url,
                message,
                self.capacity,
            )
        self.connected = False

    def _beat(self) -> None:
        for handle in list(self._handles):
            try:
                handle._beat()
            except Exception as exc:
                self._failed(exc)
