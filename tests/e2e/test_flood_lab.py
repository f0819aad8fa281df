"""A flood of events must not flood the browser (DESIGN sections 1 and 6).

For 10 s a notebook cell publishes 50,000 events/s into a hub that a displayed Dashboard
watches, in a real JupyterLab with the server's *default* IOPub limit (1000 msgs/s, beyond which
it silently drops widget updates). Comm traffic must depend on the frame rate, not the event
rate: the server never logs "IOPub message rate exceeded", and when the flood ends the browser's
counters equal the kernel's. The comm messages that reach the browser during the flood are
counted as well: the server's own detector resets whenever the kernel reports "idle", so it alone
could miss a steady comm overload.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import pytest

from .dashboard_dom import log_total, parse_int, poll, state, wait_for_panels
from .lab import (
    CURRENT_NOTEBOOK,
    KernelTraffic,
    hide_left_sidebar,
    open_notebook,
    run_all_cells,
    screenshot,
)
from .servers import LabServer, write_notebook

if TYPE_CHECKING:
    from playwright.sync_api import Page

RATE = 50_000  # events per second
SECONDS = 10.0
TOTAL = int(RATE * SECONDS)
#: DESIGN section 6: at most 60 comm messages a second for a whole Dashboard, whatever the
#: event rate.
DASHBOARD_MSGS_PER_S = 60

# The flood: every 20 ms one publish_many() of 1,000 events (half log lines, a quarter flows
# between Codeur agents, a quarter job lifecycle events), paced against the wall clock. Awaiting
# between batches lets the hub's render tick run, as it would with agents publishing for real.
FLOOD_CELL = f"""
import asyncio, json, time

RATE, SECONDS, STEP = {RATE}, {SECONDS}, 0.02
PER_BATCH = int(RATE * STEP)
AGENTS = ["request_planner", "code_planner", "coding_agent", "rag_service", "git_operations"]


def make_batch(start):
    events = []
    for i in range(start, start + PER_BATCH):
        agent = AGENTS[i % 5]
        kind = i % 4
        if kind < 2:
            events.append({{"topic": "log", "agent": agent,
                           "data": {{"level": "INFO", "message": f"flood line {{i}}"}}}})
        elif kind == 2:
            events.append({{"topic": "agent.message", "agent": agent,
                           "data": {{"target": AGENTS[(i + 1) % 5], "kind": "flood"}}}})
        else:
            job = f"flood-{{i // 12}}"
            phase = (i // 4) % 3
            topic = ("job.enqueued", "job.started", "job.completed")[phase]
            events.append({{"topic": topic, "agent": agent, "data": {{"job_id": job}}}})
    return events


published = 0
t0 = time.perf_counter()
batches = int(SECONDS / STEP)
for b in range(batches):
    published += hub.publish_many(make_batch(b * PER_BATCH)) or PER_BATCH
    delay = t0 + (b + 1) * STEP - time.perf_counter()
    await asyncio.sleep(max(delay, 0.0))
elapsed = time.perf_counter() - t0
await asyncio.sleep(1.0)  # let the last frames go out
"""

RESULT_CELL = """
snap = hub.snapshot()
print("FLOOD_RESULT", json.dumps({
    "published": published,
    "elapsed": round(elapsed, 2),
    "rate": round(published / elapsed),
    "logs_total": snap["logs"]["total"],
    "completed": snap["queue"]["completed"],
    "accepted": snap["health"]["accepted"],
    "dropped": snap["health"]["dropped"],
}))
"""

NOTEBOOK = [
    ("code", "from codeur_widgets import Dashboard, Hub\nhub = Hub()\nhub.start()\nDashboard(hub)"),
    ("code", FLOOD_CELL.strip()),
    ("code", RESULT_CELL.strip()),
]


def _flood_result(page: Page) -> dict[str, Any]:
    text = page.locator(CURRENT_NOTEBOOK).inner_text()
    match = re.search(r"FLOOD_RESULT (\{.*\})", text)
    assert match, f"no FLOOD_RESULT in the notebook's output:\n{text[-2000:]}"
    result: dict[str, Any] = json.loads(match.group(1))
    return result


@pytest.mark.cpu_exclusive  # the kernel must really publish 50,000 events/s
def test_flood_does_not_exceed_iopub_limit_and_counters_match(lab: LabServer, page: Page) -> None:
    write_notebook(lab.root / "flood.ipynb", NOTEBOOK)
    log_offset = lab.log_size()
    traffic = KernelTraffic().watch(page)
    try:
        open_notebook(page, lab, "flood.ipynb")
        hide_left_sidebar(page)
        run_all_cells(page, timeout_ms=120_000)
        wait_for_panels(page)
        result = _flood_result(page)
        # The flood runs between the kernel's echo of cell 2's and cell 3's code.
        start, end = traffic.first("execute_input", 1), traffic.first("execute_input", 2)
        comms = traffic.of_type("comm_msg", start, end)
        busiest = traffic.busiest_second("comm_msg", start, end)
        print(
            f"flood: {result}; browser got {comms} comm messages in {end - start:.1f} s "
            f"({comms / (end - start):.1f}/s, busiest second {busiest})"
        )

        # The kernel really published the whole flood, at about the intended rate.
        assert result["published"] == TOTAL, result
        assert result["rate"] >= 0.9 * RATE, f"published too slowly to be a 50k/s flood: {result}"
        assert result["dropped"] == 0, result

        # The browser ends showing exactly the kernel's counts.
        def shown() -> dict[str, int]:
            s = state(page)
            return {"logs_total": log_total(page), "completed": parse_int(s["queue"]["completed"])}

        expected = {"logs_total": result["logs_total"], "completed": result["completed"]}
        last = poll(page, shown, lambda got: got == expected, timeout_s=15)
        assert last == expected, f"browser shows {last}, kernel has {expected}"
        # ... which is what was published: half the events are log lines, and one in twelve
        # completes a job (see FLOOD_CELL).
        assert expected == {"logs_total": TOTAL // 2, "completed": TOTAL // 12}, expected

        # Comm traffic follows the frame rate, not the event rate.
        assert comms / (end - start) <= DASHBOARD_MSGS_PER_S, (comms, end - start)
        assert busiest <= 2 * DASHBOARD_MSGS_PER_S, busiest  # bunching in transit allowed

        server_log = lab.log_since(log_offset)
        for limit in ("IOPub message rate exceeded", "IOPub data rate exceeded"):
            assert limit not in server_log, f"the Jupyter server dropped messages: {limit!r}"
        page.locator(".cw-log-tail").scroll_into_view_if_needed()
        screenshot(page, "lab-flood")
    finally:
        lab.shutdown_kernels()
