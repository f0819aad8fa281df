"""Tables, budgets and machine facts shared by the benchmark sections."""

from __future__ import annotations

import datetime
import gc
import os
import platform
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

QUICK = "in quick mode"
"""``not_judged`` reason of a budget that a ``--quick`` run's short durations cannot measure."""


@dataclass
class Budget:
    """One promise checked by a run: ``met`` is None when it could not be measured here.

    ``not_judged`` (e.g. :data:`QUICK`) says why a value that was measured is shown but not
    judged: the run was too short to measure what the budget promises (a 60 s soak is not the
    600 s one). Such a row never fails the run, whatever ``met`` would have been.
    """

    name: str
    target: str
    measured: str
    met: bool | None
    note: str = ""
    not_judged: str = ""

    @property
    def verdict(self) -> str:
        if self.not_judged:
            return f"not judged {self.not_judged}"
        return {True: "met", False: "NOT MET", None: "not measured"}[self.met]

    @property
    def broken(self) -> bool:
        """True when this budget was judged and not met (what makes the run exit 1)."""
        return self.met is False and not self.not_judged


@dataclass
class Table:
    header: tuple[str, ...]
    rows: list[tuple[str, ...]] = field(default_factory=list)
    title: str = ""

    def add(self, *cells: Any) -> None:
        self.rows.append(tuple(str(c) for c in cells))


@dataclass
class Section:
    """What one section measured: its tables, its budgets, free-form notes and raw numbers."""

    key: str
    title: str
    tables: list[Table] = field(default_factory=list)
    budgets: list[Budget] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def table(self, *header: str, title: str = "") -> Table:
        t = Table(tuple(header), title=title)
        self.tables.append(t)
        return t

    def budget(
        self,
        name: str,
        target: str,
        measured: str,
        met: bool | None,
        note: str = "",
        *,
        not_judged: str = "",
    ) -> None:
        """Add a budget row; ``not_judged`` (e.g. :data:`QUICK`) shows it without judging it."""
        self.budgets.append(Budget(name, target, measured, met, note, not_judged))


def markdown(table: Table) -> str:
    """A GitHub-flavoured markdown table, columns padded for reading in a terminal."""
    rows = [table.header, *table.rows]
    n = len(table.header)
    widths = [max(len(r[i]) if i < len(r) else 0 for r in rows) for i in range(n)]

    def line(cells: tuple[str, ...]) -> str:
        padded = [(cells[i] if i < len(cells) else "").ljust(widths[i]) for i in range(n)]
        return "| " + " | ".join(padded) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    out = [line(table.header), sep, *(line(r) for r in table.rows)]
    if table.title:
        out.insert(0, f"{table.title}\n")
    return "\n".join(out)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _chromium_version(path: str = "/usr/bin/chromium") -> str:
    exe = path if os.access(path, os.X_OK) else shutil.which("chromium")
    if not exe:
        return "not installed"
    try:
        out = subprocess.run(
            [exe, "--version"], capture_output=True, text=True, timeout=20, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    match = re.search(r"Chromium [\d.]+", out)
    return match.group(0) if match else out.strip().splitlines()[0] if out.strip() else "unknown"


def machine_facts() -> dict[str, str]:
    import psutil

    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cores": f"{psutil.cpu_count(logical=False) or '?'} physical / {os.cpu_count()} logical",
        "ram": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": platform.platform(terse=False),
        "chromium": _chromium_version(),
        "load average (1/5/15 min) at start": load,
    }


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


def fmt_bytes(n: float) -> str:
    if n >= 2**20:
        return f"{n / 2**20:.1f} MiB"
    if n >= 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n:.0f} B"


def percentile(values: list[float], p: float) -> float:
    """The ``p``-th percentile (0-100) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100.0 * len(ordered) + 0.5) - 1))
    return ordered[k]


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ``ys`` over ``xs`` (0 with fewer than two points)."""
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var


def wait_for_quiet(limit: float = 30.0, below: float = 15.0) -> tuple[float, float]:
    """Before a measurement that the machine's other work would distort: collect this process's
    garbage, then wait (at most ``limit`` s) until the CPU, all cores together, is below
    ``below`` % (the sections before leave servers and browsers shutting down). Returns
    (seconds waited, CPU % at the start)."""
    import psutil

    gc.collect()
    t0 = time.monotonic()
    first = busy = psutil.cpu_percent(interval=0.5)
    while busy > below and time.monotonic() - t0 < limit:
        busy = psutil.cpu_percent(interval=0.5)
    return time.monotonic() - t0, first


def start_together(procs: list[subprocess.Popen[str]], what: str) -> None:
    """Wait until each worker process printed ``ready`` (started, its work built), then tell
    them all ``go`` at once: a rate measured from the first message then measures the pipeline,
    not the processes' start."""
    for p in procs:
        assert p.stdout is not None
        line = p.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"{what} did not start: {line!r}")
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
