"""History on bad files and failing disks: clear errors at open, a live hub when writes fail later.

Everything here uses real SQLite files and real SQLite failures (a lock held by another
connection, a page limit that makes SQLite report "database or disk is full"), no mocks.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from codeur_widgets.core.clock import FakeClock
from codeur_widgets.core.events import Event
from codeur_widgets.core.history import History, HistoryError
from codeur_widgets.core.hub import Hub

T0 = 1_700_000_000.0


def make_file(path: Path, n: int = 3) -> None:
    h = History(path, retention_seconds=None)
    for i in range(n):
        h.record(Event.create("log", "a", {"message": str(i)}, ts=T0 + i))
    h.close()


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# -- bad files at open ---------------------------------------------------------------------------
def test_missing_directory(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "runs.sqlite"
    with pytest.raises(HistoryError) as info:
        Hub(collect_system=False, history=path)
    assert info.value.path == str(path)
    assert "does not exist" in info.value.reason and str(tmp_path / "nope") in str(info.value)
    assert not (tmp_path / "nope").exists()  # nothing created on the way


def test_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    path.write_bytes(os.urandom(8192))
    with pytest.raises(HistoryError, match="not a valid SQLite database") as info:
        History(path)
    assert info.value.path == str(path)


def test_corrupt_history_header(tmp_path: Path) -> None:
    # A real history file whose header was overwritten (a torn copy, a disk error).
    path = tmp_path / "runs.sqlite"
    make_file(path)
    with open(path, "r+b") as f:
        f.write(b"garbage" * 10)
    with pytest.raises(HistoryError, match="not a valid SQLite database"):
        History(path)


def test_another_kind_of_sqlite_database(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(HistoryError, match=r"not a codeur-widgets history file \(tables: users\)"):
        History(path)


def test_a_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="is a directory"):
        History(tmp_path)


@pytest.mark.parametrize("existing", [True, False])
def test_locked_by_another_connection(tmp_path: Path, existing: bool) -> None:
    path = tmp_path / "runs.sqlite"
    if existing:
        make_file(path)  # a WAL-mode history: the lock stops writers, not readers
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        t0 = time.monotonic()
        with pytest.raises(HistoryError, match="locked by another connection") as info:
            History(path, busy_timeout=0.2)
        assert time.monotonic() - t0 < 3.0  # the busy timeout bounds the wait
        assert info.value.path == str(path)
    finally:
        other.execute("ROLLBACK")
        other.close()
    History(path).close()  # fine once the lock is gone


def test_read_only_uri(tmp_path: Path) -> None:
    # SQLite's own read-only open: the same SQLITE_READONLY a write-protected file gives.
    path = tmp_path / "runs.sqlite"
    make_file(path)
    uri = f"file:{path}?mode=ro"
    with pytest.raises(HistoryError, match="read-only") as info:
        History(uri)
    assert info.value.path == uri


def test_read_only_file_permissions(tmp_path: Path) -> None:
    """A file the process may not write. Root ignores mode bits, so as root the open runs in a
    forked child that has dropped to the ``nobody`` user (a real permission check, no mock)."""
    folder = tmp_path / "shared"
    folder.mkdir()
    path = folder / "runs.sqlite"
    make_file(path)
    path.chmod(0o444)
    folder.chmod(0o555)
    if os.geteuid() != 0:
        with pytest.raises(HistoryError) as info:
            History(path, busy_timeout=0.1)
        assert "read-only" in info.value.reason or "not writable" in info.value.reason
        return
    # Let `nobody` reach the file: the pytest temp root is private to root.
    for parent in [tmp_path, *tmp_path.parents]:
        if parent == Path("/"):
            break
        os.chmod(parent, os.stat(parent).st_mode | 0o005)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 3
        try:
            os.close(read)
            os.setgid(65534)
            os.setuid(65534)
            try:
                History(path, busy_timeout=0.1).close()
                message = "opened"
            except HistoryError as exc:
                message = exc.reason
                code = 0
            os.write(write, message.encode()[:4000])
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        reason = f.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0, reason
    assert "read-only" in reason or "not writable" in reason, reason
    folder.chmod(0o755)


# -- failures while running ----------------------------------------------------------------------
def test_a_lock_mid_run_degrades_then_everything_is_written(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    history = History(path, retention_seconds=None, busy_timeout=0.05, flush_interval=0.02)
    hub = Hub(clock=FakeClock(T0), collect_system=False, history=history)
    for i in range(100):
        hub.publish("job.enqueued", job_id=f"job-{i}")
    assert history.flush(5.0)

    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock for a while
    try:
        for i in range(100, 300):
            hub.publish("job.enqueued", job_id=f"job-{i}")
        assert wait_for(lambda: hub.health()["history"]["degraded"])
        health = hub.health()["history"]
        assert "locked" in health["error"]
        assert health["pending"] == 200 and health["dropped"] == 0
        assert history.flush(timeout=0.2) is False  # bounded, never hangs
        # The hub is live meanwhile: it accepts and applies events.
        hub.publish("job.started", job_id="job-0")
        assert hub.queue.snapshot()["processing"] == 1
        t0 = time.monotonic()
        hub.stop()  # its bounded flush gives up; nothing is lost, it stays queued
        assert time.monotonic() - t0 < 7.0
    finally:
        other.execute("COMMIT")
        other.close()

    assert history.flush(timeout=10.0)
    health = history.health()
    assert health["degraded"] is False and health["error"] is None
    assert health["failures"] >= 1 and "locked" in health["last_error"]
    assert history.count(topic="job.enqueued") == 300
    assert history.count() == 301
    history.close()


def test_disk_full_mid_run_then_recovered(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    history = History(path, retention_seconds=None, flush_interval=0.02)
    hub = Hub(clock=FakeClock(T0), collect_system=False, history=history)
    hub.publish("log", "a", message="before")
    assert history.flush(5.0)
    # SQLite's page limit: every write past it fails with SQLITE_FULL, as on a full disk.
    conn = history._conn
    with history._write_lock:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
    text = "y" * 2000
    for i in range(200):
        hub.publish("log", "a", message=f"{i} {text}")
    assert wait_for(lambda: hub.health()["history"]["degraded"])
    assert "disk full" in hub.health()["history"]["error"]
    hub.publish("agent.registered", "still-live")
    assert "still-live" in hub.agents
    with history._write_lock:
        conn.execute("PRAGMA max_page_count = 1073741823")  # space again
    assert history.flush(timeout=10.0)
    assert history.health()["degraded"] is False
    assert history.count(topic="log") == 201
    assert history.count(agent="still-live") == 1
    history.close()


def test_a_full_queue_drops_new_events_counts_them_and_keeps_the_old(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    history = History(
        path,
        retention_seconds=None,
        busy_timeout=0.05,
        flush_interval=0.02,
        queue_size=50,
        batch_size=10,
    )
    hub = Hub(clock=FakeClock(T0), collect_system=False, history=history)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        events = [hub.publish("job.enqueued", job_id=f"job-{i}") for i in range(100)]
        # 50 queued + the batch the worker took before it failed; the rest dropped and counted.
        assert wait_for(lambda: history.health()["failures"] >= 1)
        health = hub.health()["history"]
        assert health["degraded"] is True
        kept = health["pending"]
        assert 50 <= kept <= 60
        assert health["dropped"] == 100 - kept
        assert hub.queue.snapshot()["queued"] == 100  # the live stores saw everything
    finally:
        other.execute("COMMIT")
        other.close()
    assert history.flush(timeout=10.0)
    # The oldest (accepted first) were kept; what the queue could not hold was the newest.
    assert [r["id"] for r in history.query(limit=None)] == [e.id for e in events[:kept]]
    assert history.health()["degraded"] is False
    history.close()
