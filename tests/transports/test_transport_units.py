"""Transport pieces that need no server: URLs and masking, backoff, lag, the RESP parser, the
emitter's light import, and the message-bus bridge."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codeur_widgets.core.events import Event, InvalidEvent
from codeur_widgets.core.hub import Hub
from codeur_widgets.transports import mask_url, open_source
from codeur_widgets.transports._common import Backoff, LagStats, parse_url, scrub
from codeur_widgets.transports.bridge import Bridge, bridge, normalise_topic, to_event_fields

redis = pytest.importorskip("redis")

from codeur_widgets.transports import _resp  # noqa: E402
from codeur_widgets.transports.redis_streams import Emitter, RedisStreamSource  # noqa: E402

SECRET = "pa%40ss-W0rd"  # percent-encoded "pa@ss-W0rd"


# -- URLs ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        (f"redis://:{SECRET}@db.example:6380/2?stream=x", "redis://***@db.example:6380/2"),
        (f"redis://alice:{SECRET}@h/0", "redis://***@h/0"),
        (f"rediss://u:{SECRET}@[::1]:7000/1", "rediss://***@[::1]:7000/1"),
        (f"unix://:{SECRET}@/run/redis.sock?db=1", "unix://***@/run/redis.sock"),
        (f"redis://h/0?password={SECRET}", "redis://h/0"),
        ("redis://h:notaport/0", "<unparseable url>"),
        (12, "<int>"),
    ],
)
def test_mask_url_hides_credentials_and_query(url: Any, masked: str) -> None:
    assert mask_url(url) == masked


def test_parse_url_splits_our_parameters_and_collects_secrets() -> None:
    parsed = parse_url(
        f"redis://u:{SECRET}@h:1/0?stream=s&group=g&socket_timeout=3&protocol=3",
        ("stream", "group"),
    )
    assert parsed.params == {"stream": "s", "group": "g"}
    assert "stream" not in parsed.redis_url and "protocol" not in parsed.redis_url
    assert "socket_timeout=3" in parsed.redis_url
    assert "pa@ss-W0rd" in parsed.secrets and SECRET in parsed.secrets
    assert SECRET not in repr(parsed) and "pa@ss-W0rd" not in repr(parsed)
    assert scrub("auth pa@ss-W0rd failed", parsed.secrets) == "auth *** failed"


@pytest.mark.parametrize(
    "url",
    [
        f"http://u:{SECRET}@h/0",
        f"redis://u:{SECRET}@h/0?strem=typo",
        f"redis://u:{SECRET}@/0",
        f"redis://u:{SECRET}@h:99999999/0",
    ],
)
def test_bad_urls_raise_without_the_password(url: str) -> None:
    with pytest.raises(ValueError) as info:
        open_source(url)
    assert "pa@ss" not in str(info.value) and SECRET not in str(info.value)


def test_source_options_from_url_and_keywords() -> None:
    src = RedisStreamSource(
        f"redis://:{SECRET}@h:6379/3?stream=s1&group=dash&count=50&block_ms=20&start=$",
        count=70,
    )
    assert (src.stream, src.group, src.count, src.block_ms, src.start_id) == (
        "s1",
        "dash",
        70,
        20,
        "$",
    )
    assert src.dead_letter == "s1:dead"
    assert src.consumer  # stable default: the host name
    text = repr(src) + json.dumps(src.health())
    assert "pa@ss" not in text and SECRET not in text and "***@h:6379/3" in text
    with pytest.raises(ValueError, match="count"):
        RedisStreamSource("redis://h/0?count=0")
    with pytest.raises(ValueError, match="group"):
        RedisStreamSource("redis://h/0", group="bad\nname")


def test_open_source_gives_a_redis_source() -> None:
    src = open_source("redis://localhost:6379/0?stream=codeur:events&group=g")
    assert isinstance(src, RedisStreamSource)
    with pytest.raises(ValueError, match="supported schemes"):
        open_source("kafka://broker:9092")


def test_hub_accepts_redis_urls_as_sources() -> None:
    hub = Hub(collect_system=False, sources=["redis://127.0.0.1:1/0?stream=s"])
    (health,) = hub.health()["sources"]
    assert health["kind"] == "redis-streams" and health["state"] == "stopped"


# -- backoff and lag ------------------------------------------------------------------------------
def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    b = Backoff(0.1, 1.0)
    delays = [b.next() for _ in range(8)]
    assert 0.05 <= delays[0] <= 0.1
    assert all(0.5 <= d <= 1.0 for d in delays[4:])
    b.reset()
    assert b.next() <= 0.1


def test_lag_stats_quantiles() -> None:
    now = [0.0]
    lag = LagStats(window=10.0, clock=lambda: now[0])
    lag.add_many(range(1, 101))  # 1..100 ms
    s = lag.summary()
    assert s["count"] == 100 and s["p50"] == 50 and s["p95"] == 95 and s["p99"] == 99
    lag.add_many([5_000, 50_000, 500_000])
    assert lag.max_ms == 500_000
    # 103 samples: the 102nd (p99) is 50 s, in a 100 ms bucket whose upper bound is reported.
    assert lag.summary()["p99"] == 50_100 and lag.summary()["p95"] == 98
    now[0] = 25.0  # two windows later the recent view is empty, the total is not
    lag.add_many([])
    now[0] = 40.0
    lag.add_many([])
    assert lag.summary()["count"] == 0 and lag.summary(total=True)["count"] == 103


# -- the RESP parser -------------------------------------------------------------------------------
def test_fast_parser_parses_stream_replies_and_errors() -> None:
    class Err(Exception):
        pass

    reply = (
        b"*1\r\n*2\r\n$1\r\ns\r\n*2\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\ne\r\n$2\r\n{}\r\n"
        b"*2\r\n$3\r\n2-0\r\n*-1\r\n"
    )
    value, pos = _resp._parse(reply + b":5\r\n", 0, Err)
    assert value == [[b"s", [[b"1-0", [b"e", b"{}"]], [b"2-0", None]]]]
    assert _resp._parse(reply + b":5\r\n", pos, Err) == (5, len(reply) + 4)
    err, _ = _resp._parse(b"-NOGROUP no such key\r\n", 0, Err)
    assert isinstance(err, Err) and "NOGROUP" in str(err)
    assert _resp._parse(b"+OK\r\n$-1\r\n", 0, Err) == (b"OK", 5)
    for cut in range(1, len(reply)):
        with pytest.raises(_resp._Incomplete):
            _resp._parse(reply[:cut], 0, Err)


# -- the emitter stays light ---------------------------------------------------------------------
def test_emit_imports_no_jupyter_networkx_or_psutil() -> None:
    # redis-py imports the OpenTelemetry SDK's metrics when it is installed (its optional
    # observability), and the SDK imports psutil: that is redis's doing, not ours, so the
    # check runs as in an agent process without the SDK. Our own OpenTelemetry code must not
    # be imported by the emitter either way.
    code = textwrap.dedent(
        """
        import sys
        sys.modules["opentelemetry"] = None  # as if not installed
        import codeur_widgets.emit as emit
        heavy = {"networkx", "psutil", "ipywidgets", "anywidget", "traitlets", "IPython",
                 "bqplot", "jupyter_client", "ipykernel", "codeur_widgets.core.hub",
                 "codeur_widgets.otel"}
        print(sorted(m for m in heavy if m in sys.modules))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"


def test_emitter_validates_in_the_caller() -> None:
    em = Emitter("redis://127.0.0.1:1/0", max_entry_bytes=2_000, backoff=(5.0, 5.0))
    try:
        with pytest.raises(InvalidEvent):
            em.publish("Bad Topic")
        with pytest.raises(InvalidEvent, match="bytes"):
            em.publish("log", data={f"k{i}": "x" * 100 for i in range(50)})
        event = em.publish("job.enqueued", job_id="job-1")
        assert event.data == {"job_id": "job-1"} and em.published == 1
    finally:
        em.close(timeout=0.1)
    em.publish("job.enqueued", job_id="late")  # after close: counted, not raised
    assert em.dropped == 1


# Any code point, and often the ones the two encoders write differently: lone surrogates (UTF-8
# cannot hold them), non-ASCII, the line separator, NUL.
_chars = st.sampled_from("\ud800\udfffé\u2028\x00a") | st.characters(exclude_categories=())
_json_values = st.recursive(
    # Finite floats: validation refuses NaN and infinities (msgspec would write them as null)
    st.none() | st.booleans() | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(_chars, max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(_chars, max_size=8),
                                                                 inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(_chars, max_size=12), _json_values, max_size=6))
def test_emitter_entries_read_back_alike_with_msgspec_and_the_standard_library(
    data: dict[str, Any],
) -> None:
    """The emitter writes an entry with msgspec (UTF-8) where it can and with ``json.dumps``
    (ASCII, lone surrogates escaped) where msgspec refuses; whichever wrote it, both of the
    reader's decoders must read back the event the standard library's entry gives. Checked for
    a validated event and for one given to ``publish_event`` unchecked (lone surrogates kept)."""
    from codeur_widgets.transports import redis_streams as rs

    if rs._encode_entry is rs._json_payload:
        assert os.environ.get("CI") != "true", "msgspec is not installed"
        pytest.skip("msgspec is not installed: only the standard library encodes here")
    events = [Event("log", None, {**data, "text": "a\ud800"}, 1_700_000_000.5, "id-1")]
    try:
        events.append(Event.create("log", None, data))
    except InvalidEvent:
        pass  # refused in the caller: never serialised
    for event in events:
        entry = event.to_dict()
        fast, slow = rs._encode_entry(entry), rs._json_payload(entry)
        expected = Event.from_dict(rs._json_entry(slow))
        for payload in (fast, slow):
            assert Event.from_dict(rs._json_entry(payload)) == expected
            try:
                decoded = rs._decode_entry(payload)
            except Exception:  # msgspec's refusal (a lone surrogate's escape): json decides
                decoded = rs._json_entry(payload)
            assert Event.from_dict(decoded) == expected


# -- packed entries -------------------------------------------------------------------------------
def test_emitter_packs_events_into_entries_by_count_and_bytes() -> None:
    from codeur_widgets.transports.redis_streams import PACK_BYTES

    em = Emitter("redis://127.0.0.1:1/0?pack=3", backoff=(5.0, 5.0))
    try:
        assert em.pack == 3
        small = [b"{}"] * 7
        assert em._packs(small) == [(0, 3), (3, 6), (6, 7)]
        big = b"x" * (PACK_BYTES + 1)  # larger than a pack may be: an entry of its own
        assert em._packs([b"{}", big, b"{}"]) == [(0, 1), (1, 2), (2, 3)]
        half = b"x" * (PACK_BYTES // 2)  # two, with their commas, exceed PACK_BYTES
        assert em._packs([half, half, b"{}"]) == [(0, 1), (1, 3)]
        assert em._packs([]) == []
        em.pack = 1
        assert em._packs(small) == [(i, i + 1) for i in range(7)]
    finally:
        em.close(timeout=0.1)
    with pytest.raises(ValueError, match="pack"):
        Emitter("redis://127.0.0.1:1/0", pack=0)


def _packed_source(hub: Hub, **options: Any) -> RedisStreamSource:
    source = RedisStreamSource("redis://127.0.0.1:1/0", **options)
    source._hub = hub  # the decode path, without a connection
    return source


def _pack(*items: Any) -> list[bytes]:
    return [b"p", json.dumps(list(items)).encode()]


def test_a_packed_entry_applies_its_valid_events_and_dead_letters_only_the_bad_one() -> None:
    hub = Hub(collect_system=False)
    seen: list[str] = []
    hub.bus.subscribe("agent.registered", lambda e: seen.append(e.agent or ""))
    source = _packed_source(hub)
    entries = [
        [b"1700000000000-0", _pack(
            {"topic": "agent.registered", "agent": "a", "id": "ev-a"},
            {"topic": "Bad Topic", "agent": "b"},
            {"topic": "agent.registered", "agent": "c"},  # no id: the entry's, and its index
        )],
        [b"1700000000001-0", [b"e", json.dumps({"topic": "agent.registered", "agent": "d"})
                              .encode()]],
    ]  # fmt: skip
    ids, dead, read = source._apply(entries)
    assert ids == [b"1700000000000-0", b"1700000000001-0"] and read == 4
    assert seen == ["a", "c", "d"]
    assert (source.applied, source.malformed, source.read) == (3, 1, 4)
    assert len(dead) == 1 and dead[0]["index"] == 1 and dead[0]["id"] == b"1700000000000-0"
    assert dead[0]["reason"].startswith("topic") and b"Bad Topic" in dead[0][b"f:e"]
    assert hub.bus.rejected == 1 and hub.bus.rejected_samples[-1]["field"] == "topic"
    # Redelivered (a reconnect before the ack): nothing is applied twice, ids or not.
    source._apply(entries)
    assert seen == ["a", "c", "d"] and source.duplicates == 3


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"[]", "not a list"),
        (b'{"topic": "log"}', "not a list"),
        (b"[" + b",".join([b"{}"] * 10_001) + b"]", "10001 events > 10000"),
        (b"[{", "JSONDecodeError"),
    ],
)
def test_a_pack_that_cannot_be_read_is_dead_lettered_whole(payload: bytes, reason: str) -> None:
    hub = Hub(collect_system=False)
    source = _packed_source(hub)
    entries = [[b"1-0", [b"p", payload]], [b"2-0", _pack({"topic": "log", "id": "ok"})]]
    ids, dead, read = source._apply(entries)
    assert ids == [b"1-0", b"2-0"] and read == 2
    assert source.malformed == 1 and source.applied == 1
    assert len(dead) == 1 and reason in dead[0]["reason"] and dead[0][b"f:p"] == payload


def test_a_pack_is_read_up_to_its_own_cap_whatever_max_entry_bytes_says() -> None:
    from codeur_widgets.transports.redis_streams import _PACK_LIMIT

    hub = Hub(collect_system=False)
    source = _packed_source(hub, max_entry_bytes=4096)
    pack = _pack(*({"topic": "log", "id": f"i{i}", "data": {"t": "x" * 1000}} for i in range(20)))
    assert 4096 < len(pack[1]) < _PACK_LIMIT
    huge = [b"p", b"[" + b" " * _PACK_LIMIT + b"]"]
    _, dead, _ = source._apply([[b"1-0", pack], [b"2-0", huge], [b"3-0", [b"e", b" " * 4097]]])
    assert source.applied == 20  # the emitter's pack: read, though above max_entry_bytes
    assert source.oversized == 2 and [d["reason"] for d in dead] == ["oversized", "oversized"]


def test_reads_ask_for_about_count_events_whatever_the_packing() -> None:
    hub = Hub(collect_system=False)
    source = _packed_source(hub, count=1000)
    assert source._entries() == 10  # at first, the emitter's packing (100) is assumed
    events = [{"topic": "log", "id": f"x{i}"} for i in range(50)]
    source._apply([[b"1-0", _pack(*events[:25])], [b"2-0", _pack(*events[25:])]])
    assert source._entries() == 40  # 25 events per entry lately
    source._apply([[b"3-0", [b"e", b'{"topic": "log"}']]])
    assert source._entries() == 1000  # one per entry: count entries


# -- the bridge ----------------------------------------------------------------------------------
class FakeBus:
    """Codeur-like in-process bus: subscribe(topic, handler); publish calls handlers."""

    def __init__(self, awaiting: bool = False) -> None:
        self.handlers: dict[str, list[Any]] = {}
        self.awaiting = awaiting

    def subscribe(self, topic: str, handler: Any) -> None:
        self.handlers.setdefault(topic, []).append(handler)

    def unsubscribe(self, topic: str, handler: Any) -> None:
        self.handlers[topic].remove(handler)

    async def apublish(self, topic: str, message: Any) -> None:
        for handler in self.handlers.get(topic, []):
            await handler(message)  # a bus that awaits its handlers

    def publish(self, topic: str, message: Any) -> None:
        for handler in self.handlers.get(topic, []):
            handler(message)


@dataclass
class TaskStarted:
    agent_type: str
    task_description: str


def test_bridge_forwards_codeur_messages_to_a_hub() -> None:
    hub = Hub(collect_system=False)
    bus = FakeBus()
    link = bridge(bus, ["agent.task.started", "agent_events", "job.status.changed"], hub)
    bus.publish("agent.task.started", {"agent_type": "coding_agent", "task_description": "Fix"})
    bus.publish("agent.task.started", TaskStarted("code_planner", "Plan #42"))
    bus.publish(
        "agent_events",
        {
            "event_type": "agent.status",
            "agent_name": "rag_service",
            "timestamp": 1_700_000_000_000,
            "event_id": "ev-1",
            "data": {"status": "active"},
        },
    )
    bus.publish("job.status.changed", {"job_id": "job-1", "status": "processing"})
    bus.publish("agent_events", {"event_type": "Bad Topic!", "agent_name": "x" * 500})
    agents = {a["name"]: a for a in hub.snapshot()["agents"]["agents"]}
    assert agents["coding_agent"]["task"] == "Fix"
    assert agents["code_planner"]["task"] == "Plan #42"
    assert agents["rag_service"]["status"] == "active"
    assert hub.snapshot()["queue"]["processing"] == 1
    assert link.forwarded == 4 and link.rejected == 1 and "agent" in (link.last_error or "")
    link.close()
    bus.publish("job.status.changed", {"job_id": "job-2", "status": "queued"})
    assert link.forwarded == 4 and not any(bus.handlers.values())


def test_bridge_handlers_can_be_awaited_by_an_async_bus() -> None:
    hub = Hub(collect_system=False)
    bus = FakeBus()
    bridge(bus, ["agent.error"], hub)
    Bridge(bus, ["agent.error"], hub, asynchronous=True)

    async def main() -> None:
        await bus.apublish("agent.error", {"agent": "coding_agent", "error": "boom"})

    asyncio.run(main())
    agents = {a["name"]: a for a in hub.snapshot()["agents"]["agents"]}
    assert agents["coding_agent"]["errors"] == 2


def test_bridge_topic_map_convert_and_odd_values() -> None:
    class Sink:
        def __init__(self) -> None:
            self.events: list[Event] = []

        def publish(self, topic: str, agent: str | None = None, **kw: Any) -> Event:
            event = Event.create(topic, agent, kw.get("data"))
            self.events.append(event)
            return event

    sink = Sink()
    bus = FakeBus()
    import datetime
    import enum

    class Color(enum.Enum):
        RED = "red"

    Bridge(bus, ["TaskDone"], sink, topic_map={"TaskDone": "agent.task.completed"})
    Bridge(bus, ["skip"], sink, convert=lambda t, m: None)
    bus.publish(
        "TaskDone",
        {
            "source": "git_operations",
            "when": datetime.date(2024, 1, 2),
            "c": Color.RED,
            "o": object,
        },
    )
    bus.publish("skip", {"x": 1})
    (event,) = sink.events
    assert event.topic == "agent.task.completed" and event.agent == "git_operations"
    assert event.data["when"] == "2024-01-02" and event.data["c"] == "red"
    assert normalise_topic("Agent Events/Started") == "agent_events_started"
    assert to_event_fields("t", 42)["data"] == {"value": "42"}
