"""``python -m benchmarks``: print the comparison tables with the machine's facts and the date."""

from __future__ import annotations

import datetime
import os
import platform
import sys

from . import ingest


def machine_facts() -> str:
    return (
        f"{datetime.date.today().isoformat()} · Python {platform.python_version()} · "
        f"{platform.machine()} · {os.cpu_count()} CPUs · {platform.platform(terse=True)}"
    )


def table(rows: list[tuple[str, str, str]], header: tuple[str, str, str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    return "\n".join([line, sep, *body])


def main() -> int:
    print(f"# codeur-widgets benchmarks\n\n{machine_facts()}\n")
    print("## Ingest (events/s, best of 3, same run)\n")
    publish = ingest.hub_publish_rate()
    many = ingest.hub_publish_many_rate()
    flows = ingest.hub_flow_rate()
    plan_flows = ingest.plan_flow_rate()
    plan_mixed = ingest.plan_mixed_rate()
    rows = [
        ("mixed stream: Hub.publish", f"{publish:,.0f}", f"{publish / plan_mixed:,.0f}× plan"),
        ("mixed stream: Hub.publish_many", f"{many:,.0f}", f"{many / plan_mixed:,.0f}× plan"),
        ("mixed stream: plan (literal reading)", f"{plan_mixed:,.0f}", "1×"),
        ("flows only: Hub.publish", f"{flows:,.0f}", f"{flows / plan_flows:,.0f}× plan"),
        ("flows only: plan FlowTracker", f"{plan_flows:,.0f}", "1×"),
    ]
    print(table(rows, ("path", "events/s", "ratio")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
