"""``python -m benchmarks``: every section's table, the budgets, the machine's facts and the date.

Exit status 1 when a budget is broken (a budget that could not be measured here, e.g. a GPU row
on a machine without a GPU, does not fail the run; nor does one that ``--quick``'s short durations
cannot measure, shown as "not judged in quick mode"; a section that crashed does).

Options: ``--only ingest,comm`` (see ``SECTIONS``), ``--quick`` (short durations, said in the
output), ``--soak-seconds N`` (default 600), ``--json PATH`` (save everything measured).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any

from ._report import Budget, Section, Table, machine_facts, markdown

#: key → (module, title): run in this order.
SECTIONS: dict[str, tuple[str, str]] = {
    "ingest": ("benchmarks.ingest", "1. Ingest"),
    "comm": ("benchmarks.comm", "2. Comm traffic"),
    "latency": ("benchmarks.latency", "3. Latency in the browser"),
    "memory": ("benchmarks.memory", "4. Memory"),
    "idle": ("benchmarks.idle", "5. Idle cost"),
    "agent": ("benchmarks.agent_cost", "6. Agent-side cost"),
    "views": ("benchmarks.views", "7. Scale of the views"),
    "collectors": ("benchmarks.collectors", "8. Collectors vs what users run today"),
    "redis": ("benchmarks.redis_section", "9. Redis Streams"),
    "history": ("benchmarks.history_section", "10. History"),
    "otel": ("benchmarks.otel_section", "12. OpenTelemetry"),
    "traces": ("benchmarks.traces", "11. Traces (spans)"),
    "alerts": ("benchmarks.alerts", "13. Alerts"),
}


@dataclass
class Context:
    """What every section gets: the run's options and the shared browser (started lazily)."""

    quick: bool = False
    soak_seconds: float = 600.0
    _browser: Any = field(default=None, repr=False)

    @property
    def browser(self) -> Any:
        """A :class:`benchmarks._browser.BrowserSession` (JupyterLab + Chromium), on first use."""
        if self._browser is None:
            from ._browser import BrowserSession

            self._browser = BrowserSession().start()
        return self._browser

    def close(self) -> None:
        if self._browser is not None:
            self._browser.stop()
            self._browser = None


def _run_section(key: str, ctx: Context) -> Section:
    module_name, title = SECTIONS[key]
    t0 = time.monotonic()
    try:
        module = importlib.import_module(module_name)
        section: Section = module.run(ctx)
    except Exception as exc:  # one broken section must not hide the others' results
        section = Section(key, title)
        section.notes.append(f"section failed: {type(exc).__name__}: {exc}")
        section.notes.append(traceback.format_exc())
        section.budget(f"{key}: section ran", "runs", "crashed", False)
    section.seconds = time.monotonic() - t0
    return section


def _print_section(section: Section) -> None:
    print(f"## {section.title}\n", flush=True)
    for table in section.tables:
        print(markdown(table) + "\n")
    for note in section.notes:
        print(note if note.startswith("Traceback") else f"- {note}")
    if section.notes:
        print()
    print(f"({section.seconds:.0f} s)\n", flush=True)


def budget_table(sections: list[Section]) -> Table:
    t = Table(("budget", "target", "measured", "verdict"))
    for s in sections:
        for b in s.budgets:
            t.add(b.name, b.target, b.measured, b.verdict + (f" ({b.note})" if b.note else ""))
    return t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--only", default="", help=f"comma-separated sections: {','.join(SECTIONS)}"
    )
    parser.add_argument("--quick", action="store_true", help="short durations (development)")
    parser.add_argument("--soak-seconds", type=float, default=None, help="memory soak (600)")
    parser.add_argument("--json", default="", help="save the results as JSON to this path")
    args = parser.parse_args(argv)
    keys = [k.strip() for k in args.only.split(",") if k.strip()] or list(SECTIONS)
    unknown = [k for k in keys if k not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {unknown}; choose from {list(SECTIONS)}")
    soak = args.soak_seconds if args.soak_seconds is not None else (60.0 if args.quick else 600.0)
    ctx = Context(quick=args.quick, soak_seconds=soak)

    facts = machine_facts()
    mode = "QUICK run (short durations: numbers are indicative only)" if args.quick else "full run"
    print(f"# codeur-widgets benchmarks — {mode}\n")
    for k, v in facts.items():
        print(f"- {k}: {v}")
    print()
    sections: list[Section] = []
    try:
        for key in keys:
            section = _run_section(key, ctx)
            sections.append(section)
            _print_section(section)
    finally:
        ctx.close()

    print("## Budgets\n")
    print(markdown(budget_table(sections)) + "\n")
    broken = [b for s in sections for b in s.budgets if b.broken]
    import os

    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    print(f"load average at the end: {load}")
    unjudged = sum(1 for s in sections for b in s.budgets if b.not_judged)
    print(f"{len(broken)} budget(s) not met" if broken else "all measured budgets met")
    if unjudged:
        print(f"{unjudged} budget(s) measured but not judged (the run was too short for them)")
    if args.json:
        payload = {
            "quick": args.quick,
            "soak_seconds": soak,
            "facts": facts,
            "sections": [asdict(s) for s in sections],
        }
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=1, default=str)
    return 1 if broken else 0


__all__ = ["SECTIONS", "Budget", "Context", "main"]

if __name__ == "__main__":
    sys.exit(main())
