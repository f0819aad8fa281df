"""LogBuffer (the ``logs`` store) and LogHandler (the logging bridge), incl. DESIGN defect 6."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codeur_widgets.core.clock import FakeClock
from codeur_widgets.core.events import Event, InvalidEvent
from codeur_widgets.core.logs import (
    MAX_NESTING,
    MAX_SOURCES,
    LogBuffer,
    LogHandler,
    capture_logging,
    normalise_level,
)

_ids = iter(range(10**9))


def log_event(
    message: Any = "hello",
    level: Any = "INFO",
    agent: str | None = None,
    ts: float = 1_700_000_000.0,
    **data: Any,
) -> Event:
    # The unchecked constructor: the store must cope with whatever a transport let through.
    return Event("log", agent, {"level": level, "message": message, **data}, ts, f"e{next(_ids)}")


def filled(n: int, capacity: int | None = None) -> LogBuffer:
    buf = LogBuffer(clock=FakeClock(), capacity=capacity or max(n, 1))
    levels = ("DEBUG", "INFO", "WARNING", "ERROR")
    for i in range(n):
        buf.apply(log_event(f"message {i}", levels[i % 4], agent=f"agent{i % 3}", ts=1e9 + i))
    return buf


# -- the store ------------------------------------------------------------------------------------
def test_record_shape_and_source_fallbacks() -> None:
    buf = LogBuffer(clock=FakeClock())
    buf.apply(log_event("a", agent="coding_agent", logger="x", thread="T", function="run"))
    buf.apply(log_event("b", logger="codeur.planner"))
    buf.apply(log_event("c"))
    lines = buf.query()
    assert lines[0] == {
        "seq": 0,
        "ts": 1_700_000_000.0,
        "level": "INFO",
        "source": "coding_agent",
        "message": "a",
        "thread": "T",
        "function": "run",
        "exc": None,
        "trace": None,
    }
    assert [line["source"] for line in lines] == ["coding_agent", "codeur.planner", "?"]
    assert [line["seq"] for line in lines] == [0, 1, 2]
    assert buf.version == 3


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("INFO", "INFO"),
        ("warn", "WARNING"),
        (" Warning ", "WARNING"),
        ("fatal", "CRITICAL"),
        ("critical", "CRITICAL"),
        (10, "DEBUG"),
        (20, "INFO"),
        (25, "INFO"),
        (30, "WARNING"),
        (40.0, "ERROR"),
        (55, "CRITICAL"),
        (0, "DEBUG"),
        ("40", "ERROR"),
        ("verbose", None),
        (True, None),
        (None, None),
        ([], None),
        (float("nan"), None),
    ],
)
def test_normalise_level(raw: Any, expected: str | None) -> None:
    assert normalise_level(raw) == expected


def test_unknown_levels_become_info_and_are_counted() -> None:
    buf = LogBuffer(clock=FakeClock())
    buf.apply(log_event(level="verbose"))
    buf.apply(log_event(level={"x": 1}))
    buf.apply(log_event(level=40))
    assert [line["level"] for line in buf.query()] == ["INFO", "INFO", "ERROR"]
    assert buf.unknown_levels == 2
    assert buf.snapshot()["rejected"]["levels"] == 2


def test_messages_are_plain_data_never_interpreted() -> None:
    buf = LogBuffer(clock=FakeClock())
    raw = "%s %d {x} %(name)s <b>bold</b> \x1b[31m"
    buf.apply(log_event(raw))
    buf.apply(log_event({"k": [1, 2]}))  # a non-string message is shown as JSON text
    buf.apply(log_event(None))
    lines = buf.query()
    assert lines[0]["message"] == raw
    assert lines[1]["message"] == '{"k": [1, 2]}'
    assert lines[2]["message"] == ""
    assert buf.bad_fields == 1


def test_wrong_field_types_are_ignored_and_counted() -> None:
    buf = LogBuffer(clock=FakeClock())
    buf.apply(log_event("m", thread=7, function=["f"], exc={"e": 1}, logger=3))
    (line,) = buf.query()
    assert line["thread"] is None and line["function"] is None and line["exc"] is None
    assert line["source"] == "?"
    assert buf.bad_fields == 4


def test_ring_overwrite_counts_total_and_dropped() -> None:
    buf = filled(10, capacity=4)
    assert buf.total == 10
    assert buf.dropped == 6
    assert len(buf) == 4
    assert [line["seq"] for line in buf.query()] == [6, 7, 8, 9]
    snap = buf.snapshot()
    assert (snap["total"], snap["dropped"], snap["capacity"]) == (10, 6, 4)


def test_capacity_must_be_positive() -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="capacity"):
            LogBuffer(capacity=bad)  # type: ignore[arg-type]


# -- queries --------------------------------------------------------------------------------------
def test_query_level_is_a_minimum() -> None:
    buf = filled(8)
    assert {line["level"] for line in buf.query(level="WARNING")} == {"WARNING", "ERROR"}
    assert {line["level"] for line in buf.query(level=logging.ERROR)} == {"ERROR"}
    assert buf.query(level="critical") == []
    assert len(buf.query(level="debug")) == 8
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        buf.query(level="loud")


def test_query_source_exact_or_list() -> None:
    buf = filled(9)
    assert {line["source"] for line in buf.query(source="agent1")} == {"agent1"}
    assert len(buf.query(source="agent")) == 0  # exact, not a prefix
    both = buf.query(source=["agent0", "agent2"])
    assert {line["source"] for line in both} == {"agent0", "agent2"}
    assert len(both) == 6
    assert len(buf.query(source=[])) == 9  # an empty selection means no filter


def test_query_text_is_case_insensitive_and_searches_exc() -> None:
    buf = LogBuffer(clock=FakeClock())
    buf.apply(log_event("Connection Reset by peer"))
    buf.apply(log_event("job failed", exc="Traceback...\nTimeoutError: slow"))
    buf.apply(log_event("all fine"))
    assert [line["message"] for line in buf.query(text="connection reset")] == [
        "Connection Reset by peer"
    ]
    assert [line["message"] for line in buf.query(text="timeouterror")] == ["job failed"]
    assert len(buf.query(text="")) == 3


_TEXT_ALPHABET = st.sampled_from(list("abAB xß\x00Kk\u212aſs\n\u0130i"))


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(
        st.tuples(
            st.text(_TEXT_ALPHABET, max_size=12),
            st.none() | st.text(_TEXT_ALPHABET, max_size=8),
        ),
        max_size=1_200,  # more than the first chunk, so chunks of two sizes are searched
    ),
    needle=st.text(_TEXT_ALPHABET, min_size=1, max_size=4),
    limit=st.none() | st.integers(0, 50),
)
def test_property_text_filter_is_the_line_by_line_casefold_match(
    lines: list[tuple[str, str | None]], needle: str, limit: int | None
) -> None:
    # The text filter searches whole chunks at once (joined, folded, mapped back by offsets);
    # its answer must be exactly the line-by-line definition, with folds that change lengths
    # (ß -> ss, İ -> i̇), the Kelvin sign, the chunks' separator and newlines in the texts.
    buf = LogBuffer(clock=FakeClock(), capacity=max(len(lines), 1))
    for i, (message, exc) in enumerate(lines):
        extra = {"exc": exc} if exc is not None else {}
        buf.apply(log_event(message or ".", ts=1e9 + i, **extra))
    fold = needle.casefold()
    expected = [
        rec["seq"]
        for rec in buf.query(limit=None)
        if fold in rec["message"].casefold() or (rec["exc"] and fold in rec["exc"].casefold())
    ]
    if limit is not None:
        expected = expected[-limit:] if limit else []
    assert [rec["seq"] for rec in buf.query(text=needle, limit=limit)] == expected


def test_query_regex_and_invalid_regex() -> None:
    buf = filled(20)
    hits = buf.query(text=r"^message 1\d$", regex=True)
    assert [line["message"] for line in hits] == [f"message {i}" for i in range(10, 20)]
    assert buf.query(text="MESSAGE", regex=True) == []  # regex is case-sensitive...
    assert len(buf.query(text="(?i)MESSAGE", regex=True)) == 20  # ...unless asked
    with pytest.raises(ValueError, match=r"invalid regular expression '\(unclosed'"):
        buf.query(text="(unclosed", regex=True)


def test_query_limit_newest_oldest_first_and_paging() -> None:
    buf = filled(50)
    page = buf.query(limit=10)
    assert [line["seq"] for line in page] == list(range(40, 50))
    older = buf.query(limit=10, before_seq=page[0]["seq"])
    assert [line["seq"] for line in older] == list(range(30, 40))
    assert [line["seq"] for line in buf.query(limit=3, before_seq=2)] == [0, 1]
    assert buf.query(before_seq=0) == []
    assert buf.query(limit=0) == []
    assert len(buf.query(limit=None)) == 50
    with pytest.raises(ValueError, match="limit"):
        buf.query(limit=-1)
    # Filters combine with paging: the 5 newest ERRORs from agent2 before seq 40.
    combo = buf.query(level="ERROR", source="agent2", limit=5, before_seq=40)
    assert all(line["seq"] < 40 and line["level"] == "ERROR" for line in combo)
    assert [line["seq"] for line in combo] == sorted(line["seq"] for line in combo)


def test_paging_still_works_after_the_ring_wrapped() -> None:
    buf = filled(100, capacity=30)  # holds seqs 70..99
    assert [line["seq"] for line in buf.query(limit=5, before_seq=75)] == [70, 71, 72, 73, 74]
    assert buf.query(before_seq=50) == []
    assert len(buf.query(before_seq=10**9)) == 30


def test_query_100k_records_is_fast() -> None:
    buf = filled(100_000, capacity=100_000)
    timings = {}
    for label, kwargs in {
        "newest 200": {},
        "text, no match (full scan)": {"text": "no such line"},
        "regex, no match (full scan)": {"text": r"no\s+such", "regex": True},
        "level CRITICAL (full scan)": {"level": "CRITICAL"},
        "source list + text, all": {"source": ["agent1", "agent2"], "text": "7", "limit": None},
    }.items():
        start = time.perf_counter()
        buf.query(**kwargs)  # type: ignore[arg-type]
        timings[label] = time.perf_counter() - start
    print("\nLogBuffer.query over 100,000 records:")
    for label, seconds in timings.items():
        print(f"  {label:32s} {seconds * 1000:7.1f} ms")
    assert max(timings.values()) < 0.5


def test_sources_are_distinct_sorted_and_bounded() -> None:
    buf = LogBuffer(clock=FakeClock(), capacity=10)
    for name in ("b", "a", "b", "c"):
        buf.apply(log_event(agent=name))
    assert buf.sources() == ["a", "b", "c"]
    for i in range(MAX_SOURCES + 50):
        buf.apply(log_event(agent=f"s{i}"))
    assert len(buf.sources()) == MAX_SOURCES


def test_clear_keeps_lifetime_counters_and_seq() -> None:
    buf = filled(5)
    version = buf.version
    buf.clear()
    assert buf.query() == [] and buf.sources() == []
    assert buf.version > version
    assert buf.total == 5
    buf.apply(log_event("after"))
    assert buf.query()[0]["seq"] == 5


# -- snapshots ------------------------------------------------------------------------------------
def test_snapshot_shape_matches_internals_doc() -> None:
    clock = FakeClock(123.0)
    buf = LogBuffer(clock=clock, capacity=1000)
    for i in range(300):
        buf.apply(log_event(f"m{i}", agent="a"))
    snap = buf.snapshot()
    assert {"now", "total", "dropped", "capacity", "lines"} <= set(snap)
    assert snap["now"] == 123.0
    assert len(snap["lines"]) == 200
    assert snap["lines"][-1]["seq"] == 299 and snap["lines"][0]["seq"] == 100
    assert set(snap["lines"][0]) == {
        "seq",
        "ts",
        "level",
        "source",
        "message",
        "thread",
        "function",
        "exc",
        "trace",
    }
    assert len(buf.snapshot(limit=5)["lines"]) == 5
    assert buf.snapshot(text="m29")["lines"][-1]["message"] == "m299"
    json.dumps(snap, allow_nan=False)


@pytest.mark.parametrize("char", ["x", "é", "\U0001f600", "\n"])
def test_snapshot_stays_under_64kb_with_huge_lines(char: str) -> None:
    buf = LogBuffer(clock=FakeClock(), capacity=500)
    for _ in range(300):
        buf.apply(log_event(char * 8192, exc=char * 8192))
    snap = buf.snapshot()
    size = len(json.dumps(snap))  # ensure_ascii: the largest usual encoding
    assert size <= 64_000, size
    assert snap["lines"], "the newest line is always shown"
    assert snap["lines"][-1]["seq"] == 299
    # query() is not cut: the full text stays available.
    assert len(buf.query(limit=1)[0]["message"]) == 8192


def test_snapshot_is_cached_until_version_moves() -> None:
    buf = filled(10)
    first = buf.snapshot()
    assert buf.snapshot()["lines"] == first["lines"]
    buf.apply(log_event("new"))
    assert buf.snapshot()["lines"][-1]["message"] == "new"


def test_apply_and_query_from_many_threads() -> None:
    buf = LogBuffer(clock=FakeClock(), capacity=1000)
    stop = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            while not stop.is_set():
                lines = buf.query(limit=50)
                seqs = [line["seq"] for line in lines]
                assert seqs == sorted(seqs)
        except BaseException as exc:
            errors.append(exc)

    def writer(k: int) -> None:
        for i in range(2000):
            buf.apply(log_event(f"{k}-{i}", agent=f"w{k}"))

    r = threading.Thread(target=reader)
    r.start()
    writers = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    r.join()
    assert not errors
    assert buf.total == 16_000
    assert buf.dropped == 15_000
    seqs = [line["seq"] for line in buf.query(limit=None)]
    assert seqs == list(range(15_000, 16_000))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
log_data = st.dictionaries(
    st.sampled_from(["level", "message", "logger", "thread", "function", "exc", "other"])
    | st.text(max_size=10),
    json_values,
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(data=log_data, agent=st.none() | st.text(min_size=1, max_size=20))
def test_property_any_log_data_never_raises(data: dict[str, Any], agent: str | None) -> None:
    buf = LogBuffer(clock=FakeClock(), capacity=5)
    buf.apply(Event("log", agent, data, 1.0, "x"))
    buf.apply(Event("log", agent, data, 2.0, "y"))
    assert buf.total == 2
    (line,) = buf.query(limit=1)
    assert line["level"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
    assert isinstance(line["message"], str) and isinstance(line["source"], str)
    json.dumps(buf.snapshot(), allow_nan=False)


# -- the logging bridge ---------------------------------------------------------------------------
class Recorder:
    """A ``publish(topic, agent, data)`` that records what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None, dict[str, Any]]] = []
        self.threads: set[int] = set()
        self.lock = threading.Lock()

    def __call__(self, topic: str, agent: str | None, data: dict[str, Any]) -> None:
        with self.lock:
            self.calls.append((topic, agent, data))
            self.threads.add(threading.get_ident())


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    """A fresh, isolated logger (no propagation to root, level DEBUG), cleaned up after."""
    name = f"test_logs.{next(_ids)}"
    lg = logging.getLogger(name)
    lg.propagate = False
    lg.setLevel(logging.DEBUG)
    yield lg
    for handler in list(lg.handlers):
        lg.removeHandler(handler)


@pytest.fixture
def no_asyncio(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make the asyncio entry points a handler could use fail loudly, and record the calls."""
    called: list[str] = []
    names = (
        "create_task",
        "ensure_future",
        "get_event_loop",
        "get_running_loop",
        "run_coroutine_threadsafe",
        "run",
    )
    for name in names:

        def spy(*args: Any, _name: str = name, **kwargs: Any) -> Any:
            called.append(_name)
            raise RuntimeError(f"asyncio.{_name} called")

        monkeypatch.setattr(asyncio, name, spy)
    return called


def test_handler_builds_the_log_event(logger: logging.Logger) -> None:
    rec = Recorder()
    handler = LogHandler(rec, source="coding_agent", level=logging.DEBUG)
    logger.addHandler(handler)

    def work() -> None:
        try:
            raise KeyError("boom")
        except KeyError:
            logger.exception("job %s failed after %d tries", "job-7", 3)

    work()
    ((topic, agent, data),) = rec.calls
    assert topic == "log" and agent == "coding_agent"
    assert data["level"] == "ERROR"
    assert data["message"] == "job job-7 failed after 3 tries"
    assert data["logger"] == logger.name
    assert data["thread"] == threading.current_thread().name
    assert data["function"] == "work"
    assert "KeyError: 'boom'" in data["exc"] and data["exc"].startswith("Traceback")
    Event.create(topic, agent, data)  # the data is a valid event payload


def test_handler_level_and_default_source(logger: logging.Logger) -> None:
    rec = Recorder()
    logger.addHandler(LogHandler(rec))  # level INFO by default
    logger.debug("hidden")
    logger.warning("shown")
    ((_, agent, data),) = rec.calls
    assert agent is None and data["message"] == "shown" and data["exc"] is None
    buf = LogBuffer(clock=FakeClock())
    buf.apply(Event.create("log", agent, data))
    assert buf.query()[0]["source"] == logger.name  # the logger's name, via data.logger


def test_handler_levels_by_name_and_custom_levels(logger: logging.Logger) -> None:
    rec = Recorder()
    handler = LogHandler(rec, level="debug")
    assert handler.level == logging.DEBUG
    logger.addHandler(handler)
    logger.log(25, "a custom NOTICE-like level")
    logger.log(5, "a custom TRACE-like level")  # below the logger's DEBUG: filtered by logging
    assert [data["level"] for _, _, data in rec.calls] == ["INFO"]
    with pytest.raises(ValueError, match="unknown log level"):
        LogHandler(rec, level="loud")


def test_handler_rejects_a_bad_source_at_setup() -> None:
    with pytest.raises(InvalidEvent):
        LogHandler(Recorder(), source="x" * 500)
    with pytest.raises(TypeError):
        LogHandler("not callable")  # type: ignore[arg-type]


def test_defect6_emit_from_threads_without_any_event_loop(
    logger: logging.Logger, no_asyncio: list[str]
) -> None:
    """The plan's handler called asyncio.create_task in emit: off the loop thread it raised."""
    rec = Recorder()
    handler = LogHandler(rec)
    logger.addHandler(handler)
    barrier = threading.Barrier(8)

    def worker(k: int) -> None:
        barrier.wait()
        for i in range(250):
            logger.info("worker %d line %d", k, i)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(rec.calls) == 2000
    assert len(rec.threads) == 8
    assert handler.failed == 0 and handler.suppressed == 0
    assert no_asyncio == [], f"emit touched asyncio: {no_asyncio}"


def test_defect6_emit_inside_a_running_loop_is_synchronous(logger: logging.Logger) -> None:
    rec = Recorder()
    logger.addHandler(LogHandler(rec))

    async def main() -> int:
        logger.info("from the loop")
        seen = len(rec.calls)  # published before emit returned: no task was scheduled
        await asyncio.gather(*(asyncio.to_thread(logger.info, "from to_thread") for _ in range(4)))
        return seen

    assert asyncio.run(main()) == 1
    assert len(rec.calls) == 5


def test_defect6_a_publish_that_logs_to_codeur_widgets_does_not_recurse() -> None:
    """The bus reports handler failures on ``codeur_widgets.bus``: with the root captured, that
    record would come back into the handler while it is publishing."""
    root = logging.getLogger()
    ours = logging.getLogger("codeur_widgets.bus")
    calls = []

    def publish(topic: str, agent: str | None, data: dict[str, Any]) -> None:
        calls.append(data["message"])
        ours.error("a log subscriber failed while handling %r", data["message"])

    handler = LogHandler(publish)
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        logging.getLogger("user.code").info("hello")
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    assert calls == ["hello"]
    assert handler.suppressed == 1
    assert handler.failed == 0


def test_other_loggers_nest_at_most_max_nesting(logger: logging.Logger) -> None:
    calls = []

    def publish(topic: str, agent: str | None, data: dict[str, Any]) -> None:
        calls.append(data["message"])
        logger.info("echo of %s", data["message"])  # a user subscriber that logs, every time

    handler = LogHandler(publish)
    logger.addHandler(handler)
    logger.info("start")
    assert len(calls) == MAX_NESTING == 2
    assert calls == ["start", "echo of start"]
    assert handler.suppressed == 1
    # The guard is released afterwards: the next record is published normally.
    logger.info("again")
    assert calls[2] == "again"


def test_guard_is_per_thread(logger: logging.Logger) -> None:
    """While one thread is inside emit, a codeur_widgets record from another thread is shown.

    Two handlers: the guard is shared by all LogHandlers of a thread, and one handler would
    serialise the threads anyway (logging.Handler.handle holds the handler's lock around emit).
    """
    calls = []
    inside = threading.Event()
    release = threading.Event()

    def publish(topic: str, agent: str | None, data: dict[str, Any]) -> None:
        calls.append(data["message"])
        if data["message"] == "slow":
            inside.set()
            release.wait(5)

    slow_handler = LogHandler(publish)
    logger.addHandler(slow_handler)
    other_handler = LogHandler(publish)
    ours = logging.getLogger("codeur_widgets.test_guard")
    ours.addHandler(other_handler)
    slow = threading.Thread(target=logger.info, args=("slow",))
    slow.start()
    try:
        assert inside.wait(5)
        other = threading.Thread(target=ours.warning, args=("x",))
        other.start()
        other.join(5)
        assert calls == ["slow", "x"]  # published while "slow" is still inside emit
    finally:
        ours.removeHandler(other_handler)
        release.set()
        slow.join(5)
    assert slow_handler.suppressed == other_handler.suppressed == 0


def bad_format_record() -> logging.LogRecord:
    return logging.makeLogRecord(
        {"name": "user", "levelno": logging.INFO, "levelname": "INFO", "msg": "%d", "args": ("x",)}
    )


def test_emit_never_raises(logger: logging.Logger, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logging, "raiseExceptions", False)  # handleError stays quiet

    def broken(topic: str, agent: str | None, data: dict[str, Any]) -> None:
        raise RuntimeError("hub gone")

    handler = LogHandler(broken)
    logger.addHandler(handler)
    logger.info("one")
    # getMessage raises inside emit (handled directly: pytest's own handler would fail on it).
    handler.handle(bad_format_record())
    assert handler.failed == 2


def test_handle_error_goes_through_logging_handle_error(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[logging.LogRecord] = []
    handler = LogHandler(Recorder())
    monkeypatch.setattr(handler, "handleError", seen.append)
    record = bad_format_record()
    handler.handle(record)
    assert seen == [record] and handler.failed == 1


# -- capture_logging ------------------------------------------------------------------------------
def ours(lg: logging.Logger) -> list[logging.Handler]:
    # pytest attaches its own capture handlers to non-propagating loggers: count only ours.
    return [h for h in lg.handlers if isinstance(h, LogHandler)]


def test_capture_logging_is_idempotent_per_logger_and_owner(logger: logging.Logger) -> None:
    rec = Recorder()
    first = capture_logging(rec, logger=logger, level="INFO")
    again = capture_logging(rec, logger=logger, level="WARNING", source="agent_x")
    assert again is first
    assert ours(logger) == [first]
    assert first.level == logging.WARNING and first.source == "agent_x"

    # A different owner (another hub) gets its own handler.
    other = capture_logging(lambda *a: None, logger=logger.name, owner="hub-2")
    assert other is not first and ours(logger) == [first, other]
    # The same owner with a new publish wrapper (what a hub does) reuses its handler.
    assert capture_logging(lambda *a: None, logger=logger, owner="hub-2") is other
    logger.warning("w")
    assert len(rec.calls) == 1


def test_capture_logging_lowers_and_detach_restores_the_level() -> None:
    lg = logging.getLogger(f"test_logs.level.{next(_ids)}")
    lg.propagate = False
    assert lg.getEffectiveLevel() == logging.WARNING  # inherited from root
    rec = Recorder()
    handler = capture_logging(rec, logger=lg, level="info")
    assert lg.level == logging.INFO
    lg.info("reaches the handler")
    assert len(rec.calls) == 1
    handler.detach()
    handler.detach()  # idempotent
    assert lg.level == logging.NOTSET and handler not in lg.handlers
    with pytest.raises(ValueError, match="unknown log level"):
        capture_logging(rec, logger=lg, level="chatty")


def test_capture_logging_root_by_default() -> None:
    rec = Recorder()
    root = logging.getLogger()
    level = root.level
    handler = capture_logging(rec, level=logging.ERROR)
    try:
        assert handler in root.handlers
        logging.getLogger(f"anywhere.{next(_ids)}").error("caught")
        assert rec.calls[-1][2]["message"] == "caught"
    finally:
        handler.detach()
    assert handler not in root.handlers and root.level == level


def test_end_to_end_threads_into_a_buffer(logger: logging.Logger) -> None:
    """Handler → a thread-safe publish → LogBuffer, with 8 threads and no loop."""
    buf = LogBuffer(clock=FakeClock(), capacity=10_000)

    def publish(topic: str, agent: str | None, data: dict[str, Any]) -> None:
        buf.apply(Event.create(topic, agent, data))

    capture_logging(publish, logger=logger, level="DEBUG")

    def worker(k: int) -> None:
        for i in range(100):
            logger.info("t%d %d", k, i)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert buf.total == 800
    assert buf.sources() == [logger.name]
    assert len({line["thread"] for line in buf.query(limit=None)}) == 8
