"""Which panel holds the page's memory: Chromium's JS heap, panel by panel, under the soak's load.

``python -m benchmarks.heapdiff --panels graph,cards --minutes 4`` opens JupyterLab in Chromium
(the benchmarks' own server and browser helpers), and for each panel a notebook that starts a Hub,
displays only that panel (``none``: nothing; ``models``: a Dashboard created but not displayed, so
its models get every update and no view draws them; ``dashboard``: everything) and publishes the
soak's 5,000 mixed events/s. After ``--warmup`` seconds it reads the JS heap every ``--every``
seconds through the DevTools protocol, each time after ``HeapProfiler.collectGarbage``, and fits a
line (MiB/min). With ``--snapshots`` it also takes a heap snapshot at the start and at the end of
the measured window and prints what is new in the second (node ids are stable within a page, so
"new" = allocated in between and still alive): count and size per constructor; the new objects
grouped by the object from before that holds them (the cache or list that grows, e.g.
cytoscape's ``propCache`` in issue 17); and for the largest groups the retainer path of a few
such objects up to a GC root. Snapshots are ~80 MB each; the diff takes ~20 s.

A development tool, not a section of ``make bench``; run it under the browser lock:
``flock /tmp/codeur-browser.lock .venv/bin/python -m benchmarks.heapdiff ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from ._report import slope

#: panel -> (the setup cell's last line, a selector that is on the page once it is drawn)
PANELS: dict[str, tuple[str, str | None]] = {
    "none": ("None", None),
    "models": ("_dash = Dashboard(hub)\nNone", None),
    "dashboard": ("Dashboard(hub)", ".cw-log-tail"),
    "header": ("DashboardHeader(hub)", ".cw-dashboard-header"),
    "controls": ("DashboardControls(hub)", ".cw-controls"),
    "cards": ("AgentCards(hub)", ".cw-agent-cards"),
    "graph": ("AgentGraphView(hub)", ".cw-agent-graph canvas"),
    "queue": ("QueueStats(hub)", ".cw-queue-stats"),
    "alerts": ("AlertsPanel(hub)", ".cw-alerts"),
    "system": ("SystemMetrics(hub)", ".cw-system-metrics"),
    "logs": ("LogTail(hub)", ".cw-log-tail"),
    "traces": ("TraceView(hub)", ".cw-trace-view"),
}

# The setup cell prints PANEL_READY after its imports and the hub: a failing cell (say an import
# that moved) stops the run instead of measuring an empty page.
SETUP = """
from codeur_widgets import Dashboard, Hub
from codeur_widgets.widgets import (AgentCards, AgentGraphView, DashboardHeader, LogTail,
    QueueStats, SystemMetrics, TraceView)
from codeur_widgets.widgets.alerts_panel import AlertsPanel
from codeur_widgets.widgets.dashboard_controls import DashboardControls
hub = Hub()
hub.start()
print("PANEL", "READY")
{panel}
"""


def _setup(panel: str) -> str:
    return SETUP.format(panel=PANELS[panel][0])


def _run_cell(seconds: float, rate: int) -> str:
    from ._browser import WAIT_FOR_GO
    from .memory import SOAK_RUN

    return SOAK_RUN.format(wait=WAIT_FOR_GO, rate=rate, seconds=seconds)


# ---------------------------------------------------------------------------------------------
# Heap snapshots


class Snapshot:
    """A parsed ``.heapsnapshot``: per node its type, name, id and self size; edges for the
    retainer paths."""

    def __init__(self, path: Path) -> None:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
        meta = raw["snapshot"]["meta"]
        nf = meta["node_fields"]
        ef = meta["edge_fields"]
        self.node_types: list[str] = meta["node_types"][0]
        self.edge_types: list[str] = meta["edge_types"][0]
        self.strings: list[str] = raw["strings"]
        nodes: list[int] = raw["nodes"]
        edges: list[int] = raw["edges"]
        n = len(nf)
        i_type, i_name, i_id = nf.index("type"), nf.index("name"), nf.index("id")
        i_size, i_ec = nf.index("self_size"), nf.index("edge_count")
        self.count = len(nodes) // n
        self.type = nodes[i_type::n]
        self.name = nodes[i_name::n]
        self.id = nodes[i_id::n]
        self.size = nodes[i_size::n]
        edge_count = nodes[i_ec::n]
        m = len(ef)
        e_type, e_name, e_to = ef.index("type"), ef.index("name_or_index"), ef.index("to_node")
        # Edges as (from node index, type, name, to node index).
        self.first_edge = [0] * (self.count + 1)
        acc = 0
        for k in range(self.count):
            self.first_edge[k] = acc
            acc += edge_count[k]
        self.first_edge[self.count] = acc
        self.e_type = edges[e_type::m]
        self.e_name = edges[e_name::m]
        self.e_to = [t // n for t in edges[e_to::m]]
        del raw, nodes, edges

    def key(self, k: int) -> str:
        """The group a node counts in, as DevTools' summary groups them (constructor name for
        objects; the node type in parentheses for the rest, closures with their function name)."""
        t = self.node_types[self.type[k]]
        name = self.strings[self.name[k]]
        if t in ("object", "native"):
            return name
        if t == "closure":
            return f"(closure) {name[:60]}"
        if t in ("string", "concatenated string", "sliced string"):
            return "(string)"
        if t == "array":
            return f"(array) {name[:60]}"
        return f"({t}) {name[:40]}"

    def edge_label(self, e: int) -> str:
        t = self.edge_types[self.e_type[e]]
        v = self.e_name[e]
        if t in ("element", "hidden"):
            return f"[{v}]"
        return str(self.strings[v]) if v < len(self.strings) else str(v)

    def retainers(self) -> tuple[list[list[int]], list[int]]:
        """Per node the edges that point at it (edge indices), and each node's distance from the
        root over edges that are not weak."""
        into: list[list[int]] = [[] for _ in range(self.count)]
        owner = [0] * len(self.e_to)
        weak = self.edge_types.index("weak") if "weak" in self.edge_types else -1
        for k in range(self.count):
            for e in range(self.first_edge[k], self.first_edge[k + 1]):
                owner[e] = k
                if self.e_type[e] != weak:
                    into[self.e_to[e]].append(e)
        self.owner = owner
        dist = [-1] * self.count
        dist[0] = 0
        frontier = [0]
        while frontier:
            nxt = []
            for k in frontier:
                for e in range(self.first_edge[k], self.first_edge[k + 1]):
                    if self.e_type[e] == weak:
                        continue
                    t = self.e_to[e]
                    if dist[t] < 0:
                        dist[t] = dist[k] + 1
                        nxt.append(t)
            frontier = nxt
        return into, dist

    def path(self, k: int, into: list[list[int]], dist: list[int], depth: int = 14) -> list[str]:
        """A shortest retainer chain from node ``k`` towards the root, as DevTools shows it."""
        out = []
        seen = {k}
        for _ in range(depth):
            best = None
            for e in into[k]:
                o = self.owner[e]
                if o in seen or dist[o] < 0:
                    continue
                if best is None or dist[o] < dist[self.owner[best]]:
                    best = e
            if best is None:
                break
            o = self.owner[best]
            out.append(f"{self.edge_label(best)} in {self.key(o)} @{self.id[o]}")
            seen.add(o)
            k = o
            if dist[k] == 0:
                break
        return out


def take_snapshot(cdp: Any, path: Path) -> None:
    chunks: list[str] = []

    def on_chunk(params: dict[str, Any]) -> None:
        chunks.append(params["chunk"])

    cdp.on("HeapProfiler.addHeapSnapshotChunk", on_chunk)
    cdp.send("HeapProfiler.collectGarbage")
    cdp.send("HeapProfiler.takeHeapSnapshot", {"reportProgress": False})
    cdp.remove_listener("HeapProfiler.addHeapSnapshotChunk", on_chunk)
    path.write_text("".join(chunks), encoding="utf-8")


NATIVE = ("blink::", "(code)", "(object shape)", "(synthetic)")
"""Groups left out of the holders' list: the renderer's own (layout, paint) and V8's code."""


def holders(
    b: Snapshot, a_ids: set[int], into: list[list[int]], dist: list[int]
) -> list[tuple[str, tuple[int, int, int]]]:
    """New objects grouped by the first object on their shortest retainer path that was already
    in snapshot A, and the edge they hang from: "Array @123 .[i]" holding 75,000 new strings
    names the cache that grows. ``(holder, (count, bytes, holder node))``, most bytes first."""
    found: dict[str, list[int]] = {}
    for k in range(b.count):
        if b.id[k] in a_ids or b.key(k).startswith(NATIVE):
            continue
        cur, edge, steps = k, -1, 0
        while b.id[cur] not in a_ids and steps < 50:
            best = -1
            for e in into[cur]:
                o = b.owner[e]
                if dist[o] >= 0 and (best < 0 or dist[o] < dist[b.owner[best]]):
                    best = e
            if best < 0:
                break
            edge, cur, steps = best, b.owner[best], steps + 1
        if edge < 0 or b.id[cur] not in a_ids:
            continue
        label = re.sub(r"^\[\d+\]$", "[i]", b.edge_label(edge))[:40]
        key = f"{b.key(cur)[:80]} @{b.id[cur]} .{label}"
        entry = found.setdefault(key, [0, 0, cur])
        entry[0] += 1
        entry[1] += b.size[k]
    ranked = sorted(found.items(), key=lambda kv: -kv[1][1])
    return [(h, (c, z, n)) for h, (c, z, n) in ranked]


def diff(a_path: Path, b_path: Path, top: int = 25, paths: int = 3) -> str:
    """What is new in snapshot ``b`` (ids absent from ``a``), per group, with retainer paths;
    and the per-group count change between the two."""
    a = Snapshot(a_path)
    a_ids = set(a.id)
    a_groups = Counter(a.key(k) for k in range(a.count))
    a_total = sum(a.size)
    del a
    b = Snapshot(b_path)
    b_groups = Counter(b.key(k) for k in range(b.count))
    new_count: Counter[str] = Counter()
    new_size: Counter[str] = Counter()
    samples: dict[str, list[int]] = defaultdict(list)
    for k in range(b.count):
        if b.id[k] in a_ids:
            continue
        g = b.key(k)
        new_count[g] += 1
        new_size[g] += b.size[k]
        if len(samples[g]) < 50:
            samples[g].append(k)
    lines = [
        f"snapshot A: {len(a_ids):,} nodes, {a_total / 2**20:.2f} MiB; "
        f"B: {b.count:,} nodes, {sum(b.size) / 2**20:.2f} MiB; "
        f"new in B and alive: {sum(new_count.values()):,} nodes, "
        f"{sum(new_size.values()) / 2**20:.2f} MiB",
        "",
        "new in B, by group (count, self size), largest first:",
    ]
    for g, size in new_size.most_common(top):
        lines.append(f"  {new_count[g]:>8,}  {size / 1024:>9.1f} KiB  {g}")
    lines += ["", "count change A → B, by group (largest growth):"]
    growth = Counter({g: b_groups[g] - a_groups.get(g, 0) for g in b_groups})
    for g, d in growth.most_common(top):
        if d <= 0:
            break
        lines.append(f"  {d:>+8,}  ({a_groups.get(g, 0):,} → {b_groups[g]:,})  {g}")
    into, dist = b.retainers()
    lines += ["", "new JS objects by the object from before that holds them (most bytes first):"]
    for holder, (count, size, k) in holders(b, a_ids, into, dist)[:top]:
        lines.append(f"  {count:>8,}  {size / 1024:>9.1f} KiB  {holder}")
        lines.append(
            "      path: " + " ← ".join(x.split(" @")[0][:70] for x in b.path(k, into, dist, 8))
        )
    lines += ["", "retainer paths of new objects (groups with the most new bytes):"]
    for g, _ in [x for x in new_size.most_common() if not x[0].startswith(NATIVE)][:8]:
        shown = 0
        for k in samples[g]:
            chain = b.path(k, into, dist)
            if not chain:
                continue
            lines.append(f"  {g} @{b.id[k]} ({b.size[k]} B):")
            lines.extend(f"      ← {step}" for step in chain)
            shown += 1
            if shown >= paths:
                break
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The measurement


def measure(
    session: Any,
    panel: str,
    minutes: float,
    warmup: float,
    every: float,
    rate: int,
    snapshots: Path | None,
) -> dict[str, Any]:
    seconds = warmup + minutes * 60 + 30
    name = session.notebook(f"heap_{panel}.ipynb", [_setup(panel), _run_cell(seconds, rate)])
    heaps: list[tuple[float, float]] = []
    consoles: Counter[str] = Counter()
    try:
        with session.page() as page:
            page.on("console", lambda msg: consoles.update([msg.type]))
            cdp = page.context.new_cdp_session(page)
            cdp.send("HeapProfiler.enable")
            session.start_notebook(page, name)
            session.wait_output(page, r"PANEL READY")
            selector = PANELS[panel][1]
            if selector:
                page.locator(selector).first.wait_for(timeout=90_000)
            page.wait_for_timeout(8000)  # the panel has drawn its first frames
            session.go()
            t0 = time.monotonic()
            page.wait_for_timeout(warmup * 1000)
            if snapshots:
                take_snapshot(cdp, snapshots / f"{panel}-a.heapsnapshot")
            start = time.monotonic()
            while time.monotonic() - start < minutes * 60:
                cdp.send("HeapProfiler.collectGarbage")
                used = cdp.send("Runtime.getHeapUsage")["usedSize"]
                heaps.append((time.monotonic() - t0, used / 2**20))
                page.wait_for_timeout(every * 1000)
            cdp.send("HeapProfiler.collectGarbage")
            used = cdp.send("Runtime.getHeapUsage")["usedSize"]
            heaps.append((time.monotonic() - t0, used / 2**20))
            if snapshots:
                take_snapshot(cdp, snapshots / f"{panel}-b.heapsnapshot")
            dom = cdp.send("Memory.getDOMCounters")
    finally:
        session.shutdown_kernels()
    fit = slope([t / 60 for t, _ in heaps], [h for _, h in heaps])
    return {
        "panel": panel,
        "heaps": heaps,
        "slope": fit,
        "first": heaps[0][1],
        "last": heaps[-1][1],
        "dom": dom,
        "console": dict(consoles),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.heapdiff", description=__doc__)
    p.add_argument("--panels", default="dashboard", help=f"comma-separated: {', '.join(PANELS)}")
    p.add_argument("--minutes", type=float, default=4.0, help="measured window per panel")
    p.add_argument("--warmup", type=float, default=60.0, help="seconds of load before measuring")
    p.add_argument("--every", type=float, default=20.0, help="seconds between heap reads")
    p.add_argument("--rate", type=int, default=5_000, help="events/s published")
    p.add_argument("--snapshots", metavar="DIR", help="take heap snapshots and diff them here")
    args = p.parse_args(argv)
    panels = [x.strip() for x in args.panels.split(",") if x.strip()]
    unknown = [x for x in panels if x not in PANELS]
    if unknown:
        p.error(f"unknown panels: {unknown}")
    folder = Path(args.snapshots) if args.snapshots else None
    if folder:
        folder.mkdir(parents=True, exist_ok=True)
    from ._browser import BrowserSession

    print(f"load average at the start: {os.getloadavg()}", flush=True)
    session = BrowserSession().start()
    results = []
    try:
        for panel in panels:
            r = measure(session, panel, args.minutes, args.warmup, args.every, args.rate, folder)
            results.append(r)
            print(
                f"{panel:>10}: {r['first']:.2f} → {r['last']:.2f} MiB, slope "
                f"{r['slope']:+.3f} MiB/min; DOM {r['dom']}; console {r['console']}; "
                f"load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
            print("   heaps:", " ".join(f"{t:.0f}s={h:.2f}" for t, h in r["heaps"]), flush=True)
            if folder:
                a, b = (folder / f"{panel}-{x}.heapsnapshot" for x in "ab")
                report = diff(a, b)
                (folder / f"{panel}-diff.txt").write_text(report, encoding="utf-8")
                print(report, flush=True)
    finally:
        session.stop()
    print(f"load average at the end: {os.getloadavg()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
