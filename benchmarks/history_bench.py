"""History (SQLite) benchmark: its cost on ingest, its write rate, its size, reopen and rebuild.

``python -m benchmarks.history_bench [--quick]`` prints a table; :func:`run` returns its rows.

* publish throughput without and with history, same run, same mixed stream (best of 5);
* the history's own write rate (the worker thread alone, events recorded up front);
* database bytes per million events;
* reopening a hub on a file of 1,000,000 events (100,000 with ``--quick``), which replays the whole
  file into the stores, and :meth:`History.rebuild` of a 100,000-event range (the dashboard's
  "show this past moment" click);
* a few queries on that file.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from codeur_widgets.core.events import Event
from codeur_widgets.core.history import History
from codeur_widgets.core.hub import Hub

from .workload import mixed_stream, publish_seconds

Row = dict[str, Any]


def _best(run: Callable[[], float], repeats: int = 3) -> float:
    return min(run() for _ in range(repeats))


def _publish_rates(n: int, folder: str) -> tuple[float, float, float, float]:
    """Events/s: without history; with it (loop only; until written; writer paused)."""
    items = mixed_stream(n)
    counter = iter(range(1_000_000))

    def without() -> float:
        return publish_seconds(Hub(collect_system=False), items)

    loop_times: list[float] = []
    total_times: list[float] = []

    def with_history() -> float:
        path = os.path.join(folder, f"publish-{next(counter)}.sqlite")
        hub = Hub(collect_system=False, history=path)
        assert hub.history is not None
        published = publish_seconds(hub, items)
        t1 = time.perf_counter()
        assert hub.history.flush(timeout=600)
        flushed = time.perf_counter() - t1
        assert hub.history.written == n and hub.history.dropped == 0
        hub.history.close()
        loop_times.append(published)
        total_times.append(published + flushed)
        return published

    paused_times: list[float] = []

    def writer_paused() -> None:
        # The hot path alone: the worker does not wake until the loop is over, so what remains
        # is record() and keeping the events alive in the queue (no GIL shared with a writer).
        path = os.path.join(folder, f"paused-{next(counter)}.sqlite")
        history = History(path, flush_interval=3600.0, batch_size=10 * n, queue_size=n + 1)
        hub = Hub(collect_system=False, history=history)
        paused_times.append(publish_seconds(hub, items))
        assert history.flush(timeout=600) and history.written == n
        history.close()

    # Interleaved, so that a noisy neighbour hurts all three the same way; best of 5 because
    # the writer-paused ratio moves by ±0.07 between runs (keeping 200,000 events queued makes
    # the garbage collector's full passes part of what it measures).
    best_without = float("inf")
    for _ in range(5):
        best_without = min(best_without, without())
        with_history()
        writer_paused()
    return n / best_without, n / min(loop_times), n / min(total_times), n / min(paused_times)


def _events(n: int, start: float, step: float, seed: int = 1) -> list[Event]:
    return [
        Event.create(topic, agent, data, ts=start + i * step)
        for i, (topic, agent, data) in enumerate(mixed_stream(n, seed=seed))
    ]


def _write_rate(n: int, folder: str) -> tuple[float, int]:
    """The worker alone: ``n`` events recorded up front, then timed until committed."""
    events = _events(n, time.time() - n * 0.01, 0.01)

    def run() -> float:
        path = os.path.join(folder, f"write-{time.perf_counter_ns()}.sqlite")
        h = History(path, queue_size=n + 1)
        t0 = time.perf_counter()
        for e in events:
            h.record(e)
        assert h.flush(timeout=600)
        elapsed = time.perf_counter() - t0
        h.close()
        return elapsed

    elapsed = _best(run)
    # Size of a file holding exactly these n events, after a checkpoint (no WAL).
    path = os.path.join(folder, "size.sqlite")
    h = History(path, queue_size=n + 1)
    for e in events:
        h.record(e)
    assert h.flush(timeout=600)
    h.close()
    return n / elapsed, os.path.getsize(path)


def _big_file(n: int, path: str) -> float:
    """A file of ``n`` mixed events spread over the last ``n * 0.04`` s; returns seconds taken."""
    t0 = time.perf_counter()
    h = History(path, queue_size=200_001)
    start = time.time() - n * 0.04
    chunk = 100_000
    for first in range(0, n, chunk):
        size = min(chunk, n - first)
        for i, (topic, agent, data) in enumerate(mixed_stream(size, seed=first + 1)):
            h.record(Event.create(topic, agent, data, ts=start + (first + i) * 0.04))
        assert h.flush(timeout=600)
    assert h.written == n, h.health()
    h.close()
    return time.perf_counter() - t0


def run(quick: bool = False) -> list[Row]:
    """Measure and return the table's rows (``metric``, ``value``, ``unit``, ``note``)."""
    folder = tempfile.mkdtemp(prefix="history-bench-")
    rows: list[Row] = []
    try:
        n_publish = 50_000 if quick else 200_000
        without, loop_rate, end_rate, paused = _publish_rates(n_publish, folder)
        rows += [
            {
                "metric": "Hub.publish, no history",
                "value": without,
                "unit": "events/s",
                "note": f"mixed stream, {n_publish:,} events, best of 5",
            },
            {
                "metric": "Hub.publish, with history",
                "value": loop_rate,
                "unit": "events/s",
                "note": f"{loop_rate / without:.2f}× without (same run; writer shares the GIL)",
            },
            {
                "metric": "Hub.publish, with history, writer paused",
                "value": paused,
                "unit": "events/s",
                "note": f"{paused / without:.2f}× without: the hot path alone (record())",
                "budget": "hot path with history, vs without",
                "target": "≥ 0.7×",
                "measured": f"{paused / without:.2f}×",
                "met": paused / without >= 0.7,
                # 50,000 queued events leave out what this budget is about, the garbage
                # collector's passes over 200,000 of them (0.93x at 50,000 where 200,000 gave
                # 0.79x, same code, before the queue held plain fields).
                "not_judged": "in quick mode" if quick else "",
            },
            {
                "metric": "Hub.publish with history, until all written",
                "value": end_rate,
                "unit": "events/s",
                "note": "publish loop + flush: bounded by the writer",
            },
        ]
        n_write = 50_000 if quick else 200_000
        write_rate, size = _write_rate(n_write, folder)
        rows += [
            {
                "metric": "history write throughput",
                "value": write_rate,
                "unit": "events/s",
                "note": "worker thread alone: serialise + INSERT, WAL, batches of 2,000",
            },
            {
                "metric": "database size per 1M events",
                "value": size / n_write * 1_000_000 / 1e6,
                "unit": "MB",
                "note": f"measured on {n_write:,} mixed events (4 indexes + unique id)",
            },
        ]

        n_big = 100_000 if quick else 1_000_000
        big = os.path.join(folder, "big.sqlite")
        build = _big_file(n_big, big)
        big_size = os.path.getsize(big)
        rows.append(
            {
                "metric": f"write a {n_big:,}-event file",
                "value": build,
                "unit": "s",
                "note": f"{big_size / 1e6:,.0f} MB on disk"
                + (" (quick mode: 100k, not 1M)" if quick else ""),
            }
        )

        def reopen() -> float:
            t0 = time.perf_counter()
            hub = Hub(collect_system=False, history=big)
            elapsed = time.perf_counter() - t0
            assert hub.history is not None and hub.history.restored == n_big
            hub.history.close()
            return elapsed

        rows.append(
            {
                "metric": f"reopen + rebuild state, {n_big:,}-event file",
                "value": _best(reopen, 1 if not quick else 2),
                "unit": "s",
                "note": "Hub(history=path): every stored event replayed into the stores",
            }
        )

        h = History(big)
        span = h.time_range()
        assert span is not None
        first, last = span
        mid = first + (last - first) / 2
        # A range of 100,000 events: from the middle of the 1,000,000-event file; a quick run's
        # file holds only 100,000, so there the range is the whole file (same size, same budget).
        if quick:
            mid = first
        until = min(last, mid + 100_000 * 0.04)

        def rebuild() -> float:
            t0 = time.perf_counter()
            past = h.rebuild(since=mid, until=until)
            elapsed = time.perf_counter() - t0
            assert past.agents.names()
            return elapsed

        n_range = h.count(since=mid, until=until)
        rebuild_s = _best(rebuild)
        rows.append(
            {
                "metric": f"History.rebuild of a {n_range:,}-event range",
                "value": rebuild_s,
                "unit": "s",
                "note": "the 'show this past moment' click (new hub, not started)",
                "budget": "rebuild a past range (interactive click)",
                "target": "≤ 1 s",
                "measured": f"{rebuild_s:.2f} s ({n_range:,} events)",
                "met": rebuild_s <= 1.0,
            }
        )

        def timed(label: str, call: Callable[[], Any]) -> None:
            t0 = time.perf_counter()
            result = call()
            found = result if isinstance(result, int) else len(result)
            rows.append(
                {
                    "metric": f"query: {label}",
                    "value": (time.perf_counter() - t0) * 1000.0,
                    "unit": "ms",
                    "note": f"{n_big:,}-event file → {found:,} rows",
                }
            )

        timed("count(agent=...)", lambda: h.count(agent="coding_agent"))
        timed("query(job=..., 100)", lambda: h.query(job="job-4242", limit=100))
        timed("query(topic='agent.*', 1000)", lambda: h.query(topic="agent.*", limit=1000))
        timed(
            "query(text=..., 100, newest first)",
            lambda: h.query(text="handled job-77", limit=100, descending=True),
        )
        timed("count(time range)", lambda: h.count(since=mid, until=until))
        h.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def _fmt(value: float, unit: str) -> str:
    if unit == "events/s":
        return f"{value:,.0f}"
    if unit == "ms":
        return f"{value:,.1f}"
    return f"{value:,.2f}"


def table(rows: list[Row]) -> str:
    cells = [("metric", "value", "unit", "note")] + [
        (r["metric"], _fmt(r["value"], r["unit"]), r["unit"], r["note"]) for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    lines = ["| " + " | ".join(c[i].ljust(widths[i]) for i in range(4)) + " |" for c in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (100k-event file)")
    args = parser.parse_args(argv)
    print(f"## History (SQLite {__import__('sqlite3').sqlite_version})\n")
    rows = run(quick=args.quick)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
