"""Section 2: comm traffic of a Dashboard at 1,000, 10,000 and 100,000 events/s.

A real :class:`Hub` runs on an asyncio loop with its own render tick and system sampler, a
:class:`Dashboard` is created with a comm spy in place of the kernel (``_comm.py``), and a
producer publishes the mixed workload with ``publish_many`` every 10 ms, paced against the wall
clock, for 10 s per rate (2 s with ``--quick``). Messages and bytes are counted per panel (a
panel's own comm and its children's, e.g. bqplot marks) and for the whole Dashboard; "busiest
second" is the most messages in any sliding one-second window.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from ._comm import CommSpy, comm_spy, model_ids
from ._report import Section, fmt_bytes, fmt_rate
from .workload import mixed_events

RATES = (1_000, 10_000, 100_000)
PER_WIDGET = 10
PER_DASHBOARD = 60
MAX_MESSAGE = 64 * 1024
STEP = 0.01
CHUNK = 5_000
"""Events per publish_many call at most: a producer that fell behind catches up in chunks, with
the loop free between them (as agents publishing concurrently would leave it)."""


def busiest(times: list[float], width: float = 1.0) -> int:
    """The most of ``times`` inside any half-open window of ``width`` seconds."""
    times = sorted(times)
    best = lo = 0
    for hi, t in enumerate(times):
        while t - times[lo] >= width:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


async def _drive(hub: Any, rate: float, seconds: float, events: Any) -> tuple[int, float]:
    """Publish ``rate`` events/s for ``seconds``; returns (events published, seconds taken)."""
    sent = 0
    t0 = time.monotonic()
    tick = 0
    while True:
        elapsed = time.monotonic() - t0
        if elapsed >= seconds:
            break
        due = int(rate * min(seconds, elapsed + STEP)) - sent
        while due > 0:
            k = min(due, CHUNK)
            hub.publish_many(list(itertools.islice(events, k)))
            sent += k
            due -= k
            if due:
                await asyncio.sleep(0)
        tick += 1
        await asyncio.sleep(max(0.0, t0 + tick * STEP - time.monotonic()))
    return sent, time.monotonic() - t0


def measure(rates: tuple[int, ...], seconds: float) -> list[dict[str, Any]]:
    """One Dashboard, the rates in turn; per rate the traffic of each panel and of the whole."""
    from codeur_widgets.core.hub import Hub
    from codeur_widgets.widgets import Dashboard

    results: list[dict[str, Any]] = []

    async def main(spy: CommSpy) -> None:
        hub = Hub()
        hub.start()
        dash = Dashboard(hub)
        panels = {
            "header": dash.header,
            "controls": dash.controls,
            "cards": dash.cards,
            "graph": dash.graph,
            "queue": dash.queue,
            "system": dash.system,
            "logs": dash.logs,
        }
        ids = {name: model_ids(w) for name, w in panels.items()}
        everything = model_ids(dash)
        events = mixed_events(seed=3)
        await asyncio.sleep(1.0)  # the first frames and system sample are out
        for rate in rates:
            start = time.monotonic()
            published, took = await _drive(hub, rate, seconds, events)
            end = time.monotonic()
            row: dict[str, Any] = {
                "rate": rate,
                "published": published,
                "achieved": published / took,
                "seconds": end - start,
                "panels": {},
            }
            for name, pid in {**ids, "dashboard": everything}.items():
                sent = spy.updates(pid, start, end)
                row["panels"][name] = {
                    "messages": len(sent),
                    "per_s": len(sent) / (end - start),
                    "busiest": busiest([m.at for m in sent]),
                    "bytes_per_s": sum(m.size for m in sent) / (end - start),
                    "max_bytes": max((m.size for m in sent), default=0),
                }
            results.append(row)
            await asyncio.sleep(0.5)  # the next rate starts from a quiet hub
        dash.close()
        await hub.aclose()

    with comm_spy() as spy:
        asyncio.run(main(spy))
    return results


def run(ctx: Any) -> Section:
    seconds = 2.0 if ctx.quick else 10.0
    section = Section("comm", f"2. Comm traffic with a Dashboard ({seconds:.0f} s per rate)")
    results = measure(RATES, seconds)
    summary = section.table(
        "events/s offered", "achieved", "dashboard msgs/s", "busiest second", "bytes/s",
        "largest message",
    )  # fmt: skip
    for r in results:
        d = r["panels"]["dashboard"]
        summary.add(
            fmt_rate(r["rate"]), fmt_rate(r["achieved"]), f"{d['per_s']:.1f}", d["busiest"],
            fmt_bytes(d["bytes_per_s"]) + "/s", fmt_bytes(d["max_bytes"]),
        )  # fmt: skip
    names = [n for n in results[0]["panels"] if n != "dashboard"]
    per = section.table(
        "panel", *(f"{fmt_rate(r['rate'])}/s: msgs/s (busiest) · bytes/s" for r in results),
        title="Per panel (a panel counts its child widgets' comms too)",
    )  # fmt: skip
    for name in names:
        cells = []
        for r in results:
            p = r["panels"][name]
            cells.append(f"{p['per_s']:.1f} ({p['busiest']}) · {fmt_bytes(p['bytes_per_s'])}/s")
        per.add(name, *cells)
    worst_widget = max(r["panels"][n]["busiest"] for r in results for n in names)
    worst_dash = max(r["panels"]["dashboard"]["busiest"] for r in results)
    biggest = max(r["panels"]["dashboard"]["max_bytes"] for r in results)
    lo, hi = results[0]["panels"]["dashboard"]["per_s"], results[-1]["panels"]["dashboard"]["per_s"]
    flat = hi <= 1.2 * lo + 2
    section.budget(
        "comm: messages/s per widget (busiest second, any rate)", f"<= {PER_WIDGET}",
        str(worst_widget), worst_widget <= PER_WIDGET,
    )  # fmt: skip
    section.budget(
        "comm: messages/s per Dashboard (busiest second, any rate)", f"<= {PER_DASHBOARD}",
        str(worst_dash), worst_dash <= PER_DASHBOARD,
    )  # fmt: skip
    section.budget("comm: largest message", "<= 64 KiB", fmt_bytes(biggest), biggest <= MAX_MESSAGE)
    section.budget(
        "comm: flat across event rates (Dashboard msgs/s, highest vs lowest rate)",
        "<= 1.2× + 2", f"{hi:.1f} vs {lo:.1f}", flat,
    )  # fmt: skip
    short = [r for r in results if r["achieved"] < 0.9 * r["rate"]]
    for r in short:
        section.notes.append(
            f"the producer reached {fmt_rate(r['achieved'])} of {fmt_rate(r['rate'])} events/s "
            "offered on this machine (hub and producer share one Python thread)"
        )
    section.data["results"] = results
    return section
