"""History: recording through the hub, restoring after a restart, queries, JSONL, rebuild, replay.

Every test uses a real SQLite file in ``tmp_path``; bad files and failures are in
``test_history_failures.py``.
"""

from __future__ import annotations

import asyncio
import gc
import io
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from codeur_widgets.core.clock import FakeClock
from codeur_widgets.core.events import Event
from codeur_widgets.core.history import History, HistoryError
from codeur_widgets.core.hub import Hub

T0 = 1_700_000_000.0


def open_history(path: Path, clock: FakeClock | None = None, **kwargs: Any) -> History:
    kwargs.setdefault("flush_interval", 0.02)
    return History(path, clock=clock or FakeClock(T0), **kwargs)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "runs.sqlite"


def test_public_api_exports_history_lazily() -> None:
    import codeur_widgets

    assert codeur_widgets.History is History
    assert codeur_widgets.HistoryError is HistoryError
    assert "History" in dir(codeur_widgets)


def test_without_history_the_hub_has_no_recorder() -> None:
    hub = Hub(collect_system=False)
    assert hub.history is None
    assert hub.health()["history"] is None
    assert all(sub.pattern != "*" for sub in hub.bus.subscriptions)


def test_every_accepted_event_is_stored_with_its_envelope(db: Path) -> None:
    clock = FakeClock(T0)
    hub = Hub(clock=clock, collect_system=False, history=db)
    assert hub.history is not None
    e = hub.publish(
        "agent.task.started",
        "coding_agent",
        data={"task": "Implement #42", "job_id": 7},
        trace_id="t-1",
        span_id="s-1",
    )
    hub.publish("system.sample", data={"cpu": 12.5, "ts": T0})
    with pytest.raises(ValueError):
        hub.publish("Bad Topic")  # rejected: never stored
    hub.stop()
    rows = hub.history.query()
    assert [r["topic"] for r in rows] == ["agent.task.started", "system.sample"]
    assert rows[0] == e.to_dict()
    assert hub.history.count(job="7") == 1  # an int job_id is stored as text
    health = hub.health()["history"]
    assert health["written"] == 2 and health["pending"] == 0
    assert health["degraded"] is False and health["error"] is None
    assert health["path"] == str(db) and health["size_bytes"] > 0
    hub.history.close()


def _fill(history: History, clock: FakeClock) -> list[Event]:
    """Thirty events over 30 s: three agents, jobs, logs with awkward characters."""
    events = []
    agents = ["planner", "coder", "git"]
    for i in range(30):
        agent = agents[i % 3]
        if i % 5 == 0:
            e = Event.create("job.enqueued", None, {"job_id": f"job-{i // 5}"}, ts=clock())
        elif i % 5 == 1:
            e = Event.create("agent.task.started", agent, {"task": f"task {i}"}, ts=clock())
        elif i % 5 == 2:
            msg = f'line {i}: 100% done_{i} "quoted" back\\slash é'
            e = Event.create("log", agent, {"level": "INFO", "message": msg}, ts=clock())
        elif i % 5 == 3:
            e = Event.create("agent.message", agent, {"target": "git", "kind": "x"}, ts=clock())
        else:
            e = Event.create("job.completed", agent, {"job_id": f"job-{i // 5}"}, ts=clock())
        history.record(e)
        events.append(e)
        clock.advance(1.0)
    assert history.flush(timeout=5.0)
    return events


def test_query_filters_paging_and_count(db: Path) -> None:
    clock = FakeClock(T0)
    h = open_history(db, clock)
    events = _fill(h, clock)
    ids = [e.id for e in events]

    everything = h.query()
    assert [r["id"] for r in everything] == ids  # time order
    assert h.count() == 30

    # topic: exact and glob ('*' spans dots, like the bus)
    assert h.count(topic="log") == 6
    assert h.count(topic="agent.*") == 12
    assert h.count(topic="job.*") == 12
    assert h.count(topic="agent.task.*") == 6
    assert h.count(topic="agent") == 0
    # agent, job
    assert {r["agent"] for r in h.query(agent="coder")} == {"coder"}
    assert [r["id"] for r in h.query(agent="coder")] == [e.id for e in events if e.agent == "coder"]
    assert [r["topic"] for r in h.query(job="job-2")] == ["job.enqueued", "job.completed"]
    # text: a substring of data, case-insensitive, LIKE wildcards and JSON escapes taken literally
    assert h.count(text="100% DONE_7") == 1
    assert h.count(text="%") == 6  # a literal '%', not "anything"
    assert h.count(text="line 1") == 2 and h.count(text="line_1") == 0  # '_' is literal too
    assert h.count(text='"quoted" back\\slash é') == 6
    assert h.count(text="CODER") == len([e for e in events if e.agent == "coder"])  # agent too
    # time range: inclusive bounds; ISO strings accepted
    assert h.count(since=T0 + 10, until=T0 + 19) == 10
    assert h.count(since="2023-11-14T22:13:30Z") == 20  # T0 + 10 s is 22:13:30 UTC
    # combined
    assert h.count(topic="log", agent="planner", since=T0 + 10) == 2
    # paging
    page1 = h.query(limit=12)
    page2 = h.query(limit=12, offset=12)
    page3 = h.query(limit=12, offset=24)
    assert [r["id"] for r in page1 + page2 + page3] == ids
    assert len(page3) == 6
    assert h.query(limit=None, offset=28) == everything[28:]
    assert [r["id"] for r in h.query(limit=3, descending=True)] == ids[::-1][:3]
    with pytest.raises(ValueError):
        h.query(limit=-1)
    with pytest.raises(ValueError):
        h.query(since="yesterday")
    assert h.time_range() == (T0, T0 + 29)
    assert [e.id for e in h.events(since=T0 + 28)] == ids[28:]
    h.close()


def test_query_sees_events_still_queued(db: Path) -> None:
    # A long flush interval: the read itself must commit what is pending first.
    h = open_history(db, flush_interval=60.0)
    h.record(Event.create("log", "a", {"message": "fresh"}, ts=T0))
    assert h.query(text="fresh")[0]["data"] == {"message": "fresh"}
    h.close()


def test_dataframe(db: Path) -> None:
    pd = pytest.importorskip("pandas")
    clock = FakeClock(T0)
    h = open_history(db, clock)
    _fill(h, clock)
    frame = h.dataframe(topic="job.*")
    assert len(frame) == 12
    assert list(frame.columns[:4]) == ["ts", "topic", "agent", "job_id"]
    assert frame["job_id"].iloc[0] == "job-0"
    # Datetimes, not floats (issue 14): what a person reads and plots.
    assert str(frame["ts"].dtype).startswith("datetime64") and str(frame["ts"].dt.tz) == "UTC"
    assert frame["ts"].iloc[0] == pd.Timestamp(T0, unit="s", tz="UTC")
    assert len(h.dataframe(limit=5, offset=2)) == 5
    h.close()


def test_dataframe_without_pandas_says_how_to_get_it(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # None in sys.modules makes `import pandas` fail exactly as when it is not installed.
    monkeypatch.setitem(sys.modules, "pandas", None)
    h = open_history(db)
    with pytest.raises(ImportError, match="pip install pandas"):
        h.dataframe()
    h.close()


KERNEL_RUN = textwrap.dedent(
    """
    import asyncio, logging, sys
    from codeur_widgets.core.hub import Hub

    async def main():
        hub = Hub(history=sys.argv[1], sample_interval=0.05)
        hub.start()
        coder = hub.agent("coding_agent", model="gpt-4o", role="executor")
        hub.agent("git_operations", role="service")
        hub.publish("job.enqueued", job_id="job-1", kind="code_generation")
        hub.publish("job.started", job_id="job-1")
        with coder.task("Implement #42", job_id="job-1") as t:
            t.tokens(prompt=812, completion=240, cost_usd=0.004)
        coder.metric("queue_depth", 3)
        coder.send("git_operations", "git_command")
        hub.publish("job.completed", job_id="job-1", success=True)
        hub.publish("job.enqueued", job_id="job-2", kind="review")
        hub.capture_logging("run", level="INFO")
        logging.getLogger("run").warning("disk almost full")
        # The real sampler publishes a few system samples (waited for: a loaded machine may
        # take longer than a few intervals to give two).
        deadline = asyncio.get_running_loop().time() + 20
        while len(hub.system.snapshot()["series"]["ts"]) < 2:
            assert asyncio.get_running_loop().time() < deadline, "no two system samples in 20 s"
            await asyncio.sleep(0.05)
        await hub.aclose()        # flushes the history
        print(hub.history.health()["written"])

    asyncio.run(main())
    """
)


def test_a_new_hub_after_a_kernel_restart_shows_the_previous_run(db: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", KERNEL_RUN, str(db)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    written = int(proc.stdout.strip())
    assert written >= 10

    hub = Hub(collect_system=False, history=db)  # "the kernel restarted"
    assert hub.history is not None
    health = hub.health()
    assert health["history"]["restored"] == written
    assert health["accepted"] == 0  # restoring is not ingest
    coder = hub.agents.get("coding_agent")
    assert coder is not None
    assert (coder["model"], coder["role"]) == ("gpt-4o", "executor")
    assert coder["tasks_completed"] == 1
    assert (coder["prompt_tokens"], coder["completion_tokens"]) == (812, 240)
    assert coder["metrics"] == {"queue_depth": 3.0}
    assert "git_operations" in hub.agents
    queue = hub.queue.snapshot()
    assert (queue["completed"], queue["queued"]) == (1, 1)
    lines = hub.logs.query()
    assert [(r["level"], r["message"]) for r in lines] == [("WARNING", "disk almost full")]
    assert hub.flows.snapshot()["stats"]["total"] == 1
    system = hub.system.snapshot()
    assert system["latest"] is not None and system["latest"]["mem_percent"] is not None
    assert len(system["series"]["ts"]) >= 2
    # Restored events were not written a second time; new ones are.
    hub.publish("log", "coding_agent", level="INFO", message="after restart")
    hub.stop()
    assert hub.history.count() == written + 1
    assert hub.history.health()["duplicates"] == 0
    hub.history.close()


def test_stop_flushes_a_running_hub(db: Path) -> None:
    async def main() -> Hub:
        hub = Hub(collect_system=False, history=History(db, flush_interval=30.0))
        hub.start()
        for i in range(500):
            hub.publish("job.enqueued", job_id=f"job-{i}")
        await hub.aclose()
        return hub

    hub = asyncio.run(main())
    assert hub.history is not None
    assert hub.history.pending == 0
    assert hub.history.count(topic="job.enqueued") == 500
    hub.history.close()


def test_rebuild_gives_the_state_at_a_past_moment(db: Path) -> None:
    clock = FakeClock(T0)
    hub = Hub(clock=clock, collect_system=False, history=db, heartbeat_timeout=30.0)
    hub.publish("agent.registered", "coder", role="executor")
    hub.publish("job.enqueued", job_id="job-1")
    clock.advance(10)
    hub.publish("agent.task.started", "coder", task="work", task_id="1", job_id="job-1")
    hub.publish("job.started", job_id="job-1")
    clock.advance(10)
    hub.publish("agent.task.completed", "coder", task_id="1", duration=10.0)
    hub.publish("job.completed", job_id="job-1")
    clock.advance(100)  # silence: the agent goes stale 30 s after its last event
    hub.publish("log", "other", message="late")
    hub.stop()
    assert hub.history is not None

    mid = hub.history.rebuild(until=T0 + 15)
    assert mid.history is None and not mid.running
    assert mid.clock() == T0 + 15
    agent = mid.agents.get("coder")
    assert agent is not None
    assert (agent["status"], agent["task"], agent["tasks_completed"]) == ("active", "work", 0)
    assert mid.queue.snapshot()["processing"] == 1
    assert mid.logs.query() == []

    end = hub.history.rebuild()  # until the last stored event
    assert end.clock() == T0 + 120
    agent = end.agents.get("coder")
    assert agent is not None and agent["tasks_completed"] == 1
    assert agent["stale"] is True  # as of T0 + 120, nothing heard for 100 s
    assert end.queue.snapshot()["completed"] == 1

    late = hub.history.rebuild(since=T0 + 100)  # a range that holds only the log line
    assert late.agents.names() == [] and len(late.logs.query()) == 1
    hub.history.close()


def test_a_rebuilt_hub_is_marked_past_and_never_starts(db: Path) -> None:
    clock = FakeClock(T0)
    hub = Hub(clock=clock, collect_system=False, history=db)
    hub.publish("agent.registered", "coder", role="executor")
    clock.advance(60)
    hub.publish("log", "coder", message="done")
    hub.stop()
    assert hub.history is not None and hub.past is None
    past = hub.history.rebuild()
    assert past.past == {"since": T0, "until": T0 + 60, "events": 2}
    assert past.health()["past"] == past.past
    assert repr(past).startswith("<Hub past ") and repr(past).endswith(": 2 events>")
    assert "–" in repr(past)  # the range, not "stopped: 0 events"

    async def try_start() -> None:
        past.start()

    with pytest.raises(RuntimeError, match="past moment"):
        asyncio.run(try_start())
    assert not past.running
    hub.history.close()


def test_export_import_round_trip(db: Path, tmp_path: Path) -> None:
    clock = FakeClock(T0)
    h = open_history(db, clock)
    events = _fill(h, clock)
    out = tmp_path / "export.jsonl"
    assert h.export_jsonl(out) == 30
    assert h.export_jsonl(io.StringIO(), topic="log") == 6

    other = open_history(tmp_path / "other.sqlite")
    assert other.import_jsonl(out) == 30
    assert other.query(limit=None) == [e.to_dict() for e in events]
    assert other.import_jsonl(out) == 0  # ids already stored: nothing duplicated
    assert other.count() == 30
    assert other.last_import_errors == []
    h.close()
    other.close()


def test_import_names_bad_lines_and_keeps_the_good_ones(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = Event.create("log", "a", {"message": "ok"}, ts=T0)
    codeur = {  # Codeur's AgentEvent form, epoch milliseconds
        "event_type": "agent.status",
        "agent_name": "coder",
        "event_id": "codeur-1",
        "timestamp": int(T0 * 1000) + 500,
        "data": {"status": "active"},
    }
    text = "\n".join(
        [
            json.dumps(good.to_dict()),
            "{not json",
            "",
            json.dumps({"topic": "BAD TOPIC", "ts": T0}),
            json.dumps(codeur),
            json.dumps([1, 2]),
        ]
    )
    h = open_history(db)
    assert h.import_jsonl(io.StringIO(text)) == 2
    errors = h.last_import_errors
    assert [e.split(":")[0] for e in errors] == ["line 2", "line 4", "line 6"]
    assert "not JSON" in errors[0] and "topic" in errors[1]
    assert "skipped 3 bad line(s)" in caplog.text
    rows = h.query()
    assert [r["id"] for r in rows] == [good.id, "codeur-1"]
    assert rows[1]["ts"] == T0 + 0.5
    h.close()


def test_replay_keeps_the_spacing_divided_by_speed(db: Path) -> None:
    clock = FakeClock(T0)
    h = open_history(db, clock)
    for i in range(3):  # 0, 1, 2 s apart in the file
        h.record(Event.create("agent.message", "a", {"target": "b", "n": i}, ts=T0 + i))
    assert h.flush(5.0)

    async def replay(speed: float) -> tuple[float, list[float], int]:
        live = Hub(collect_system=False)
        seen: list[float] = []
        live.bus.subscribe("agent.message", lambda e: seen.append(time.monotonic()))
        t0 = time.monotonic()
        n = await h.replay(live, speed=speed)
        return t0, seen, n

    t0, seen, n = asyncio.run(replay(10.0))  # 2 s of session in 0.2 s
    assert n == 3
    # Each event is due 0.1 s after the one before it, on a schedule that starts after t0: never
    # early, and late by at most a loaded machine's scheduling delay. (The gap between two
    # deliveries can be shorter than 0.1 s: one that came late is followed by one on time.)
    due = [seen[i] - t0 - 0.1 * i for i in range(3)]
    assert all(0.0 <= late < 0.2 for late in due), due
    t0, seen, n = asyncio.run(replay(float("inf")))
    assert n == 3 and seen[-1] - t0 < 0.05
    t0, seen, n = asyncio.run(replay(0))
    assert n == 3 and seen[-1] - t0 < 0.05
    with pytest.raises(ValueError):
        asyncio.run(replay(-1.0))
    h.close()


def test_replay_retimes_into_the_present_and_never_duplicates_rows(db: Path) -> None:
    clock = FakeClock(T0)
    h = open_history(db, clock)
    for i in range(5):
        h.record(Event.create("agent.message", "a", {"target": "b"}, ts=T0 + i))
    assert h.flush(5.0)

    now = T0 + 10_000
    live = Hub(clock=FakeClock(now), collect_system=False, history=h)  # restores the 5
    assert live.flows.snapshot()["stats"]["messages_last_minute"] == 0  # long ago
    got: list[Event] = []
    live.bus.subscribe("agent.message", got.append)
    assert asyncio.run(h.replay(live, speed=float("inf"))) == 5
    # As fast as possible: the last event lands now, the spacing kept before it.
    assert [e.ts for e in got] == [now - 4, now - 3, now - 2, now - 1, now]
    assert live.flows.snapshot()["stats"]["messages_last_minute"] == 5
    got.clear()
    assert asyncio.run(h.replay(live, speed=1000.0, since=T0 + 3)) == 2
    assert [e.ts for e in got] == [now, now + 0.001]  # first event now, then the replayed pace
    assert asyncio.run(h.replay(live, speed=float("inf"), retime=False)) == 5
    assert h.flush(5.0)
    assert h.count() == 5  # same ids: INSERT OR IGNORE
    assert h.health()["duplicates"] == 12
    h.close()


def test_retention_by_age(db: Path) -> None:
    clock = FakeClock(T0)
    h = open_history(db, clock, retention_seconds=3600.0)
    for i in range(10):
        h.record(Event.create("log", "a", {"message": str(i)}, ts=T0 + i * 600))
    assert h.flush(5.0)
    clock.set(T0 + 9 * 600)
    assert h.apply_retention() == 3  # older than an hour before now: 0, 600, 1200 s
    assert h.time_range() == (T0 + 1800, T0 + 5400)
    assert h.health()["deleted"] == 3
    clock.advance(100_000)
    assert h.apply_retention() == 7
    assert h.time_range() is None
    h.close()


def _filled(path: Path) -> History:
    """A history of 4,000 log rows of about 400 bytes each (ts T0 + i), all written."""
    h = open_history(path, retention_seconds=None, retention_interval=3_600)
    for i in range(4_000):
        h.record(Event.create("log", "a", {"message": "x" * 400, "i": i}, ts=T0 + i))
    assert h.flush(10.0)
    return h


def test_retention_by_size_deletes_the_oldest(db: Path) -> None:
    h = _filled(db)
    before = h._used_bytes()
    assert before > 1_500_000
    limit = before // 2
    h.max_bytes = limit
    h.apply_retention()
    # The worker may have run its own pass meanwhile (one at a time): count what both deleted.
    deleted = h.deleted
    assert 1_000 <= deleted <= 3_000
    assert h._used_bytes() <= limit
    first, last = h.time_range() or (0.0, 0.0)
    assert first == T0 + deleted and last == T0 + 3_999  # the oldest went, the newest stayed
    h.close()
    assert db.stat().st_size <= limit * 1.2  # pages given back to the file system
    with pytest.raises(ValueError):
        History(db, max_bytes=10)


def test_retention_passes_at_once_delete_what_one_pass_deletes(tmp_path: Path) -> None:
    """apply_retention() from two threads at once (as the worker's own pass may run beside a
    caller's): one pass at a time, so the second finds the size already fits and deletes nothing.
    Without that, both measured the same size and each deleted its own share of the oldest rows."""
    import threading

    reference = _filled(tmp_path / "reference.sqlite")
    limit = reference._used_bytes() // 2
    reference.max_bytes = limit
    expected = reference.apply_retention()
    reference.close()
    assert expected > 0
    for trial in range(3):
        h = _filled(tmp_path / f"both-{trial}.sqlite")
        h.max_bytes = limit
        start = threading.Barrier(2)
        counts: list[int] = []

        def one_pass(
            h: History = h, start: threading.Barrier = start, counts: list[int] = counts
        ) -> None:
            start.wait()
            counts.append(h.apply_retention())

        threads = [threading.Thread(target=one_pass) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # The pass that ran deleted what one pass deletes (within the pages' layout, which
        # differs a little from file to file); the other one found nothing to delete.
        assert min(counts) == 0 and abs(max(counts) - expected) <= expected * 0.02, counts
        first, _ = h.time_range() or (0.0, 0.0)
        assert first == T0 + max(counts)
        h.close()


def test_the_worker_applies_retention_itself(db: Path) -> None:
    clock = FakeClock(T0)
    h = open_history(db, clock, retention_seconds=60.0, retention_interval=0.05)
    h.record(Event.create("log", "a", {"message": "old"}, ts=T0 - 3600))
    h.record(Event.create("log", "a", {"message": "new"}, ts=T0))
    deadline = time.monotonic() + 5
    while h.health()["deleted"] < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [r["data"]["message"] for r in h.query()] == ["new"]
    h.close()


def test_close_is_idempotent_and_later_events_are_counted_as_dropped(db: Path) -> None:
    h = open_history(db)
    h.record(Event.create("log", "a", {"message": "kept"}, ts=T0))
    h.close()
    h.close()
    h.record(Event.create("log", "a", {"message": "late"}, ts=T0))
    health = h.health()
    assert health["closed"] and health["written"] == 1 and health["dropped"] == 1
    assert health["degraded"] is True
    with pytest.raises(HistoryError, match="closed"):
        h.query()
    again = open_history(db)
    assert [r["data"]["message"] for r in again.query()] == ["kept"]
    again.close()


def test_events_recorded_from_many_threads_at_once_keep_their_fields_together(db: Path) -> None:
    # record() queues an event as its seven fields in one extend(): threads racing must never
    # interleave two events' fields (each row's data names the id it was published with).
    import gc
    import threading

    history = open_history(db, queue_size=100_000)
    n, threads = 5_000, 4

    def publish(worker: int) -> None:
        for i in range(n):
            event_id = f"w{worker}-{i}"
            history.record(
                Event.create("agent.status", f"agent-{worker}", {"me": event_id}, id=event_id)
            )

    workers = [threading.Thread(target=publish, args=(w,)) for w in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert history.flush(timeout=30)
    rows = history.query(limit=n * threads)
    assert len(rows) == n * threads == history.written
    assert all(r["data"]["me"] == r["id"] and r["agent"] == f"agent-{r['id'][1]}" for r in rows)
    # What waits in the queue is plain fields, not objects the garbage collector walks.
    paused = History(db.with_name("paused.sqlite"), flush_interval=3600.0, batch_size=10**6)
    paused.record(Event.create("agent.status", "a", {"status": "idle"}))
    gc.collect()
    assert not any(gc.is_tracked(x) for x in paused._queue)
    paused.close()
    history.close()


def test_rows_another_program_wrote_are_read_by_the_standard_librarys_rules(db: Path) -> None:
    """The fast decoder reads our own rows; what it refuses (NaN, numbers past 64 bits, which
    our writer never stores) is read as ``json.loads`` reads it, and a row that is not JSON
    object is skipped, never raised."""
    import sqlite3

    hub = Hub(clock=FakeClock(T0), collect_system=False, history=db)
    hub.publish("log", "a", data={"level": "INFO", "message": "ours"})
    hub.stop()
    assert hub.history is not None
    hub.history.close()
    with sqlite3.connect(db) as con:
        for i, data in enumerate(['{"x": NaN}', '{"big": 1e999}', "[1, 2]", "{not json"]):
            con.execute(
                "INSERT INTO events (id, ts, topic, agent, data) VALUES (?, ?, 'log', 'b', ?)",
                (f"foreign-{i}", T0 + 1 + i, data),
            )
    past = open_history(db).rebuild(since=T0, until=T0 + 10)
    events = list(open_history(db).events())
    datas = [e.data for e in events]
    assert datas[0]["message"] == "ours"
    assert str(datas[1]["x"]) == "nan" and datas[2]["big"] == float("inf")
    assert len(events) == 3  # the list and the broken row are skipped
    assert past.past is not None and past.past["events"] == 3


def test_restore_applies_each_batch_with_the_collector_paused(db: Path) -> None:
    # History.restore reads, decodes and applies batch after batch with the cyclic collector
    # paused (core/gcpause): none of it is cyclic garbage. It is on again when restore is done.
    hub = Hub(clock=FakeClock(T0), collect_system=False, history=db)
    for i in range(5):
        hub.publish("job.enqueued", job_id=f"job-{i}")
    hub.stop()
    assert hub.history is not None
    past = Hub(clock=FakeClock(T0), collect_system=False)
    seen: list[bool] = []
    past.bus.subscribe("job.*", lambda event: seen.append(gc.isenabled()))
    assert gc.isenabled()
    assert hub.history.restore(past) == 5
    assert seen == [False] * 5
    assert gc.isenabled()
