"""Event envelope: validation, normalisation, Codeur's AgentEvent form, round trips."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codeur_widgets.core.events import (
    MAX_DEPTH,
    MAX_STRING,
    Event,
    InvalidEvent,
    parse_ts,
)


def test_create_fills_id_and_ts() -> None:
    e = Event.create("agent.status", "coding_agent", {"status": "idle"}, clock=lambda: 12.5)
    assert e.topic == "agent.status"
    assert e.agent == "coding_agent"
    assert e.ts == 12.5
    assert e.id and isinstance(e.id, str)
    assert Event.create("log").id != e.id


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("", "must match"),
        ("Agent.Status", "must match"),
        ("agent status", "must match"),
        ("a" * 129, "must match"),
        (42, "must be a string"),
        (None, "must be a string"),
    ],
)
def test_bad_topic_names_the_field(topic: object, reason: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        Event.create(topic)  # type: ignore[arg-type]
    assert info.value.field == "topic"
    assert reason in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("agent", ["", "x" * 129, "bad\nname", 7, b"bytes"])
def test_bad_agent_names_the_field(agent: object) -> None:
    with pytest.raises(InvalidEvent) as info:
        Event.create("log", agent)  # type: ignore[arg-type]
    assert info.value.field == "agent"


def test_agent_text_is_kept_verbatim_even_if_it_looks_like_markup() -> None:
    name = '<img src=x onerror="window.__pwned=1">'
    assert Event.create("agent.registered", name).agent == name


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"x": math.nan}, "data.x"),
        ({"x": [1, math.inf]}, "data.x[1]"),
        ({"x": object()}, "data.x"),
        ({1: "int key"}, "data"),
        ([1, 2], "data"),
        ("text", "data"),
    ],
)
def test_bad_data_names_the_path(data: object, field: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        Event.create("log", data=data)  # type: ignore[arg-type]
    assert info.value.field == field


def test_deep_nesting_is_rejected() -> None:
    data: dict = {}
    cursor = data
    for _ in range(MAX_DEPTH + 2):
        cursor["x"] = {}
        cursor = cursor["x"]
    with pytest.raises(InvalidEvent, match="nested deeper"):
        Event.create("log", data=data)


def test_long_strings_are_truncated_with_a_marker_not_rejected() -> None:
    text = "y" * (MAX_STRING + 500)
    e = Event.create("log", data={"message": text, "nested": {"m": text}})
    message = e.data["message"]
    assert MAX_STRING - 5 < len(message) <= MAX_STRING  # the marker included
    kept = message.index("…")
    assert message[:kept] == "y" * kept and kept > MAX_STRING - 40
    assert message.endswith(f"[truncated {len(text) - kept} chars]")
    assert e.data["nested"]["m"] == message
    again = Event.create("log", data={"message": message})
    assert again.data["message"] == message  # truncation is idempotent


def test_flat_valid_data_is_not_copied() -> None:
    data = {"a": 1, "b": "two", "c": 3.0, "d": None, "e": True}
    assert Event.create("log", data=data).data is data


def test_tuples_become_lists_and_result_is_json() -> None:
    e = Event.create("log", data={"t": (1, 2), "n": {"k": [None, 1.5]}})
    assert e.data["t"] == [1, 2]
    json.dumps(e.to_dict(), allow_nan=False)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1_700_000_000, 1_700_000_000.0),
        (1_700_000_000_123, 1_700_000_000.123),  # Codeur's epoch milliseconds
        ("2023-11-14T22:13:20Z", 1_700_000_000.0),
        ("2023-11-14T22:13:20+00:00", 1_700_000_000.0),
        ("2023-11-14T22:13:20", 1_700_000_000.0),  # naive = UTC
    ],
)
def test_timestamps_normalise_to_seconds(value: object, expected: float) -> None:
    assert parse_ts(value) == pytest.approx(expected)


@pytest.mark.parametrize("value", [math.nan, math.inf, -1, True, "yesterday", [1], 1e20])
def test_bad_timestamps_are_rejected(value: object) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_ts(value)
    assert info.value.field == "ts"


def test_round_trip_through_dict_and_json() -> None:
    e = Event.create(
        "agent.message",
        "coding_agent",
        {"target": "git_operations", "kind": "git_command"},
        trace_id="t1",
        span_id="s1",
    )
    again = Event.from_dict(json.loads(json.dumps(e.to_dict())))
    assert again == e


def test_codeur_agent_event_form_is_accepted() -> None:
    raw = {
        "agent_name": "code_planner",
        "event_type": "agent.task.started",
        "event_id": "abc-1",
        "timestamp": "2024-01-02T03:04:05.500Z",
        "data": {"task": "Plan #42"},
        "trace_id": "",
        "span_id": "",
    }
    e = Event.from_dict(raw)
    assert (e.topic, e.agent, e.id) == ("agent.task.started", "code_planner", "abc-1")
    assert e.ts == datetime(2024, 1, 2, 3, 4, 5, 500000, tzinfo=timezone.utc).timestamp()
    assert e.trace_id is None and e.span_id is None
    back = Event.from_dict(e.to_agent_event())
    assert back == e


def test_from_dict_without_topic_names_topic() -> None:
    with pytest.raises(InvalidEvent) as info:
        Event.from_dict({"agent": "x"})
    assert info.value.field == "topic"


def test_from_dict_rejects_non_mappings() -> None:
    with pytest.raises(InvalidEvent) as info:
        Event.from_dict(b"\xff\xfe")
    assert info.value.field == "event"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
anything = json_values | st.binary(max_size=40) | st.text(max_size=200)
envelope_keys = st.sampled_from(
    [
        "topic",
        "agent",
        "data",
        "ts",
        "id",
        "trace_id",
        "span_id",
        "event_type",
        "agent_name",
        "timestamp",
        "event_id",
        "other",
    ]
)
FIELDS = {"event", "topic", "agent", "ts", "id", "trace_id", "span_id"}


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(envelope_keys, anything, max_size=8) | anything)
def test_from_dict_gives_an_event_or_an_error_naming_a_field(raw: object) -> None:
    try:
        e = Event.from_dict(raw)
    except InvalidEvent as exc:
        assert exc.field in FIELDS or exc.field.startswith("data")
    else:
        json.dumps(e.to_dict(), allow_nan=False)
        assert Event.from_dict(e.to_dict()) == e


@settings(max_examples=200, deadline=None)
@given(
    st.from_regex(r"[a-z0-9_.\-]{1,128}", fullmatch=True),
    st.dictionaries(st.text(max_size=10), json_values, max_size=5),
)
def test_valid_topics_with_any_json_data(topic: str, data: dict) -> None:
    try:
        e = Event.create(topic, data=data)
    except InvalidEvent as exc:
        # Only non-finite floats and integers beyond ±2**63 can make JSON-looking data invalid.
        assert exc.field.startswith("data")
        assert "NaN" in exc.reason or "±2**63" in exc.reason
    else:
        assert e.topic == topic


def _outcome(make: Any) -> tuple[str, Any]:
    try:
        return "event", make().to_dict()
    except InvalidEvent as exc:
        return "error", (exc.field, exc.reason)


# Our own wire form, with every field drawn near the edges of the fast path in from_dict: topics
# and agents seen or never seen, an agent key left out, ts as seconds, milliseconds, text, NaN
# or negative, ids short, long, empty or non-ASCII, trace and span ids present or not.
seen_topic = "agent.task.started"
seen_agent = "coding_agent"
Event.create(seen_topic, seen_agent)  # seen from now on
ids = (
    st.none()
    | st.sampled_from(["", "x" * 256, "x" * 257, "é-1", "ok-1", "a\nb"])
    | st.text(max_size=12)
)
wire_form = st.fixed_dictionaries(
    {},
    optional={
        "topic": st.sampled_from([seen_topic, "never.seen.topic", "Bad Topic", 7]),
        "agent": st.sampled_from([None, seen_agent, "never_seen_agent", "", 3]),
        "agent_name": st.sampled_from(["codeur_name"]),
        "data": st.none() | json_values | st.dictionaries(st.text(max_size=5), json_values),
        "ts": st.sampled_from([1.7e9, 0.0, -1.0, 1e11, 1.5e12, math.nan, math.inf, 17, "2024"]),
        "timestamp": st.sampled_from([1.7e12]),
        "id": ids,
        "event_id": ids,
        "trace_id": ids,
        "span_id": ids,
    },
)


@settings(max_examples=500, deadline=None)
@given(wire_form)
def test_from_dict_fast_path_gives_what_the_full_checks_give(raw: dict[str, Any]) -> None:
    # A read-only view is a Mapping but not a dict: it always takes the full path.
    from types import MappingProxyType

    fast = _outcome(lambda: Event.from_dict(dict(raw), clock=lambda: 5.0))
    full = _outcome(lambda: Event.from_dict(MappingProxyType(raw), clock=lambda: 5.0))
    if fast[0] == "event" and raw.get("id") in (None, ""):
        # Ids are generated when absent: compare everything else.
        fast[1].pop("id")
        full[1].pop("id")
    assert fast == full
