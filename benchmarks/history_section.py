"""Section 10: history, from ``benchmarks/history_bench.py`` when it is there.

That module (written separately) exposes ``run(quick: bool = False) -> list[dict]``: one dict
per row of its table. A row may carry ``budget`` (its name), ``target``, ``measured``, ``met``
(bool) and ``not_judged`` (why it is shown unjudged, e.g. "in quick mode") to join the budget
table; every other key is a column.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._report import Section

_BUDGET_KEYS = ("budget", "target", "measured", "met", "not_judged")


def run(ctx: Any) -> Section:
    section = Section("history", "10. History")
    try:
        module = importlib.import_module("benchmarks.history_bench")
    except ModuleNotFoundError as exc:
        if exc.name != "benchmarks.history_bench":
            raise
        section.notes.append("benchmarks/history_bench.py is missing: no history numbers")
        return section
    rows: list[dict[str, Any]] = list(module.run(quick=ctx.quick))
    if not rows:
        section.notes.append("history_bench.run() returned no rows")
        return section
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in _BUDGET_KEYS and key not in columns:
                columns.append(key)
    t = section.table(*columns)
    for row in rows:
        t.add(*(_cell(row.get(c, "")) for c in columns))
        if "met" in row:
            met = row["met"]
            section.budget(
                f"history: {row.get('budget') or row.get(columns[0], '?')}",
                str(row.get("target", "")), _cell(row.get("measured", "")),
                None if met is None else bool(met),
                not_judged=str(row.get("not_judged") or ""),
            )  # fmt: skip
    section.data["rows"] = rows
    return section


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
