"""The browser tab closed and reopened: the dashboard comes back with the *current* state.

A notebook's kernel runs a hub with a ticker agent (a log line every 0.2 s). The dashboard is
shown, the notebook saved (its output holds only the widget's model id) and the tab closed. While
no browser is connected the kernel keeps working and, on a signal from the test (a file in the
server's root), registers a new agent. A new tab on the same notebook must then show the views
rebuilt from the live kernel: the agent added while the tab was closed, log lines newer than
anything the first tab saw, and updates that keep arriving.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from .dashboard_dom import poll, state, wait_for_panels
from .lab import hide_left_sidebar, new_page, open_notebook, run_all_cells, screenshot
from .servers import LabServer, write_notebook

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

TRIGGER = "reconnect-trigger.txt"

SETUP_CELL = f"""
import asyncio, os
from codeur_widgets import Dashboard, Hub

hub = Hub(sample_interval=1.0)
hub.start()
hub.agent("alpha", role="executor")

async def ticker():
    n = 0
    added = False
    while True:
        n += 1
        hub.publish("log", "ticker", data={{"level": "INFO", "message": f"tick {{n}}"}})
        if not added and os.path.exists({TRIGGER!r}):
            hub.agent("beta_added_while_closed", role="planner")
            added = True
        await asyncio.sleep(0.2)

ticker_task = asyncio.get_running_loop().create_task(ticker())
"""

NOTEBOOK = [("code", SETUP_CELL.strip()), ("code", "Dashboard(hub)")]


def newest_tick(s: dict[str, Any]) -> int:
    ticks = [
        int(line["message"].split()[-1])
        for line in s["logs"]
        if (line["message"] or "").startswith("tick ")
    ]
    return max(ticks, default=0)


def card_names(s: dict[str, Any]) -> set[str]:
    return {card["name"] for card in s["cards"]}


def save(page: Page, lab: LabServer, name: str) -> None:
    """Save the notebook (Ctrl+S) and wait until the file holds the dashboard's output."""
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook").click()
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = (lab.root / name).read_text()
        if "application/vnd.jupyter.widget-view+json" in text:
            return
        page.wait_for_timeout(250)
    raise AssertionError("the notebook was not saved with the dashboard's output")


def test_tab_closed_and_reopened_shows_the_current_state(lab: LabServer, browser: Browser) -> None:
    """Injected: the tab showing a live dashboard is closed; while it is closed the kernel
    logs ~15 lines and registers a new agent; a new tab opens the same notebook. Must hold: the
    new tab renders every panel from the live kernel (no cell re-run), shows the agent added
    while closed and log lines newer than the first tab saw, and keeps receiving updates."""
    name = "reconnect.ipynb"
    write_notebook(lab.root / name, NOTEBOOK)
    (lab.root / TRIGGER).unlink(missing_ok=True)
    try:
        with new_page(browser) as first:
            open_notebook(first, lab, name)
            hide_left_sidebar(first)
            run_all_cells(first)
            wait_for_panels(first)
            before = poll(
                first,
                lambda: state(first),
                lambda s: "alpha" in card_names(s) and newest_tick(s) >= 3,
                timeout_s=20,
            )
            assert "alpha" in card_names(before), before["cards"]
            assert newest_tick(before) >= 3, (
                before["logs"][-3:],
                before["logCounts"],
                getattr(first, "console_errors", None),
            )
            save(first, lab, name)
            seen_tick = newest_tick(state(first))
        closed_at = time.monotonic()  # the tab (its whole browser context) is gone

        (lab.root / TRIGGER).write_text("go")
        time.sleep(3.0)  # ~15 ticks, and the new agent, with no browser connected

        with new_page(browser) as second:
            open_notebook(second, lab, name)
            hide_left_sidebar(second)
            wait_for_panels(second)  # rebuilt from the kernel's models: no cell was run
            closed_for = time.monotonic() - closed_at
            after = poll(
                second,
                lambda: state(second),
                lambda s: (
                    "beta_added_while_closed" in card_names(s) and newest_tick(s) > seen_tick + 10
                ),
                timeout_s=20,
            )
            assert "beta_added_while_closed" in card_names(after), (
                f"the agent added while the tab was closed is missing: {after['cards']}"
            )
            assert "alpha" in card_names(after)
            assert newest_tick(after) > seen_tick + 10, (
                f"stale log tail: newest tick {newest_tick(after)}, the first tab saw "
                f"{seen_tick}, closed for {closed_for:.1f} s"
            )
            # And it is live: new lines keep arriving in the reopened tab.
            shown = newest_tick(after)
            later = poll(
                second, lambda: state(second), lambda s: newest_tick(s) >= shown + 5, timeout_s=15
            )
            assert newest_tick(later) >= shown + 5, "the reopened tab stopped updating"
            prompts = second.locator(".jp-CodeCell .jp-InputArea-prompt").all_text_contents()
            assert "[1]:" in json.dumps(prompts) and "[3]" not in json.dumps(prompts), prompts
            screenshot(second, "lab-reconnect")
    finally:
        lab.shutdown_kernels()
        (lab.root / TRIGGER).unlink(missing_ok=True)
