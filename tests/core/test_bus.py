"""EventBus: glob routing, isolation of failing handlers, rejects from untrusted input."""

from __future__ import annotations

import logging
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codeur_widgets.core.bus import EventBus, ThreadInbox
from codeur_widgets.core.events import Event


def ev(topic: str, **data: object) -> Event:
    return Event.create(topic, "a", data)


def test_glob_patterns_route_as_documented() -> None:
    bus = EventBus()
    seen: dict[str, list[str]] = {"agent.*": [], "*": [], "log": [], "job.status.*": []}
    for pattern, sink in seen.items():
        bus.subscribe(pattern, lambda e, sink=sink: sink.append(e.topic))
    for topic in ["agent.task.started", "log", "job.status.changed", "job.started"]:
        bus.dispatch(ev(topic))
    assert seen["agent.*"] == ["agent.task.started"]
    assert seen["*"] == ["agent.task.started", "log", "job.status.changed", "job.started"]
    assert seen["log"] == ["log"]
    assert seen["job.status.*"] == ["job.status.changed"]
    assert bus.accepted == 4


def test_unsubscribe_takes_effect_for_cached_routes() -> None:
    bus = EventBus()
    got: list[str] = []
    sub = bus.subscribe("log", lambda e: got.append(e.topic))
    bus.dispatch(ev("log"))
    sub.close()
    bus.dispatch(ev("log"))
    sub.close()  # idempotent
    assert got == ["log"]


def test_failing_handler_never_stops_the_others_and_is_reported_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus()
    got: list[int] = []

    def broken(event: Event) -> None:
        raise RuntimeError("boom")

    bus.subscribe("*", broken)
    bus.subscribe("*", lambda e: got.append(1))
    with caplog.at_level(logging.ERROR, logger="codeur_widgets.bus"):
        for _ in range(100):
            bus.dispatch(ev("log"))
        bus.dispatch_many([ev("log") for _ in range(50)])
    assert len(got) == 150
    assert bus.handler_errors == 150
    reports = [r for r in caplog.records if "failed on topic" in r.getMessage()]
    assert len(reports) == 1


def test_ingest_counts_rejects_keeps_samples_and_applies_valid_input() -> None:
    bus = EventBus()
    got: list[str] = []
    bus.subscribe("*", lambda e: got.append(e.topic))
    inputs = [{"topic": "log"}, {"topic": "BAD"}, b"\xff\x00", {"event_type": "job.started"}, None]
    results = [bus.ingest(raw) for raw in inputs]
    assert [r is not None for r in results] == [True, False, False, True, False]
    assert got == ["log", "job.started"]
    assert bus.rejected == 3
    assert [s["field"] for s in bus.rejected_samples] == ["topic", "event", "event"]
    assert all(len(s["sample"]) <= 200 for s in bus.rejected_samples)


def test_ingest_survives_hostile_mappings() -> None:
    class Hostile(dict):
        def get(self, *args: object) -> object:
            raise KeyError("nope")

    bus = EventBus()
    assert bus.ingest(Hostile(topic="log")) is None
    assert bus.rejected == 1


anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=15,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(anything | st.fixed_dictionaries({"topic": st.text(max_size=20)}), max_size=10))
def test_bus_never_crashes_and_counts_every_reject(raws: list[object]) -> None:
    bus = EventBus()
    applied: list[Event] = []
    bus.subscribe("*", applied.append)
    results = [bus.ingest(raw) for raw in raws]
    ok = [r for r in results if r is not None]
    assert applied == ok
    assert bus.rejected + len(ok) == len(raws)
    assert bus.accepted == len(ok)


def test_thread_inbox_wakes_once_per_batch_and_drops_oldest() -> None:
    wakes: list[int] = []
    inbox = ThreadInbox(capacity=3, wake=lambda: wakes.append(1))
    events = [ev("log", n=i) for i in range(5)]
    for e in events:
        inbox.put(e)
    assert len(wakes) == 1
    assert inbox.dropped == 2 and len(inbox) == 3
    assert [e.data["n"] for e in inbox.take(10)] == [2, 3, 4]
    inbox.put(events[0])
    assert len(wakes) == 2  # the drain cleared the pending flag


def test_thread_inbox_accounts_for_every_event_while_full_and_drained_at_once() -> None:
    # Publishers overflow a small inbox while the "loop" takes from it: each event is either
    # taken or counted as dropped, exactly once, and what is taken keeps each thread's order.
    inbox = ThreadInbox(capacity=100, wake=lambda: None)
    per_thread, n_threads = 20_000, 4
    taken: list[Event] = []
    done = threading.Event()

    def consumer() -> None:
        while not done.is_set() or len(inbox):
            taken.extend(inbox.take(64))

    def worker(k: int) -> None:
        for i in range(per_thread):
            inbox.put(ev("log", k=k, n=i))

    drain = threading.Thread(target=consumer)
    drain.start()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    drain.join()
    assert len(taken) + inbox.dropped == per_thread * n_threads
    assert inbox.dropped > 0 and len(inbox) == 0
    assert len({id(e) for e in taken}) == len(taken)
    for k in range(n_threads):
        seen = [e.data["n"] for e in taken if e.data["k"] == k]
        assert seen == sorted(seen)


def test_thread_inbox_exact_under_contention() -> None:
    inbox = ThreadInbox(capacity=1_000_000, wake=lambda: None)
    e = ev("log")

    def worker() -> None:
        for _ in range(20_000):
            inbox.put(e)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(inbox) == 160_000 and inbox.dropped == 0
    assert len(inbox.take(1_000_000)) == 160_000
