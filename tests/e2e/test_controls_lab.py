"""The Dashboard's time range and admin controls, clicked through in real JupyterLab.

A demo dashboard with history runs the simulator. Through the controls a person: picks the 1 h
live window; pauses the view and sees it stand still while the kernel goes on, then resumes;
stops the simulator (after confirming); resets the counters (cancelling once, then confirming) and
sees every card at 0 done; shows a past range from history that ends before the reset and sees
the old counts again; returns to live; pauses and resumes an agent (its card and graph node say
"paused"), forgets one, marks one offline and cancels a task (each leaves a note on the card);
downloads a JSON snapshot. Every action must appear in the log tail as an ``admin`` line.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from .dashboard_dom import log_total, poll, wait_for_panels
from .lab import hide_left_sidebar, open_notebook, run_all_cells, screenshot
from .servers import LabServer, write_notebook

if TYPE_CHECKING:
    from playwright.sync_api import Page

SETUP_CELL = """
import os, tempfile
from codeur_widgets import Dashboard

history = os.path.join(tempfile.mkdtemp(), "runs.sqlite")
dash = Dashboard.demo(seed=11, jobs_per_minute=60, concurrency=3, time_scale=10, history=history)
dash
""".strip()

NOTEBOOK = [("code", SETUP_CELL)]

# Per card: its name and "N done" count; the controls' mode line, status and confirmation bar.
_CONTROLS_JS = """
() => {
  const text = (el) => (el ? el.textContent : null);
  const done = {};
  for (const card of document.querySelectorAll('.cw-agent-cards .cw-card')) {
    const m = /([\\d,]+) done/.exec(card.textContent);
    done[text(card.querySelector('.cw-card-name'))] = m ? Number(m[1].replace(/,/g, '')) : null;
  }
  const c = document.querySelector('.cw-controls');
  const bar = c && c.querySelector('.cw-confirm');
  return {
    done,
    mode: text(c && c.querySelector('[data-role=mode]')),
    paused: c && c.querySelector('[data-role=mode]').getAttribute('data-paused'),
    status: text(c && c.querySelector('[data-role=status]')),
    question: bar && !bar.hidden ? text(bar.querySelector('[data-role=question]')) : null,
    backToLive: !!(c && c.querySelector('[data-action=range-live]:not([hidden])')),
    adminLines: [...document.querySelectorAll('.cw-log-tail .cw-log-row')]
      .filter((r) => (r.querySelector('.cw-log-src') || {}).textContent === 'admin')
      .map((r) => r.querySelector('.cw-log-msg').textContent),
  };
}
"""

# The date input's value and the 24-hour time text for unix time `ts`, in the page's time zone.
_LOCAL_INPUT_JS = """
(ts) => {
  const d = new Date(ts * 1000), p = (n) => String(n).padStart(2, '0');
  return {date: `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`,
          time: `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`};
}
"""

# One card's badge, task line and admin note, and the graph node's label, for agent `name`.
_AGENT_JS = """
(name) => {
  const card = [...document.querySelectorAll('.cw-agent-cards .cw-card')]
    .find((c) => c.querySelector('.cw-card-name').textContent === name);
  const note = card && card.querySelector('.cw-card-note');
  const cy = document.querySelector('.cw-agent-graph .cw-graph-canvas')._cyreg.cy;
  return {
    badge: card ? card.querySelector('.cw-badge').textContent : null,
    paused: card ? card.getAttribute('data-paused') : null,
    task: card ? card.querySelector('.cw-card-task').textContent : null,
    note: note && !note.hidden ? note.textContent : '',
    node: cy.getElementById(name).data('label'),
  };
}
"""


def agent(page: Page, name: str) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(_AGENT_JS, name)
    return result


def set_range_end(page: Page, role: str, ts: float) -> None:
    """Type one end of the past range: its date, and its time as 24-hour HH:MM:SS."""
    parts = page.evaluate(_LOCAL_INPUT_JS, ts)
    page.locator(f".cw-controls [data-role={role}-date]").fill(parts["date"])
    page.locator(f".cw-controls [data-role={role}-time]").fill(parts["time"])


def controls(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(_CONTROLS_JS)
    return result


def click(page: Page, action: str) -> None:
    page.locator(f".cw-controls [data-action={action}]").first.click()


def wait_status(page: Page, pattern: str, timeout_s: float = 20) -> dict[str, Any]:
    last = poll(
        page,
        lambda: controls(page),
        lambda s: bool(re.search(pattern, s["status"] or "")),
        timeout_s=timeout_s,
    )
    assert re.search(pattern, last["status"] or ""), last
    return last


def confirm(page: Page, action: str, question: str) -> None:
    """Click a destructive ``action``, check the question asked, and confirm it."""
    click(page, action)
    asked = poll(page, lambda: controls(page), lambda s: s["question"] is not None, timeout_s=5)
    assert asked["question"] is not None and question in asked["question"], asked
    click(page, "confirm")


def test_time_range_and_admin_controls(lab: LabServer, tall_page: Page) -> None:
    page = tall_page
    write_notebook(lab.root / "controls.ipynb", NOTEBOOK)
    try:
        open_notebook(page, lab, "controls.ipynb")
        hide_left_sidebar(page)
        run_all_cells(page)
        wait_for_panels(page)
        page.locator(".cw-controls").wait_for(state="visible")

        # Work gets done: some agent has completed tasks.
        busy = poll(
            page,
            lambda: controls(page),
            lambda s: sum(v or 0 for v in s["done"].values()) >= 5,
            timeout_s=60,
        )
        assert sum(v or 0 for v in busy["done"].values()) >= 5, busy
        assert busy["mode"] == "live · last 5 min", busy

        # Live window: 1 h.
        page.locator(".cw-controls [data-window='3600']").click()
        wait_status(page, r"^live: last hour$")
        assert controls(page)["mode"] == "live · last 1 h"
        pressed = page.locator(".cw-controls [data-window='3600']").get_attribute("aria-pressed")
        assert pressed == "true"

        # Pause the view: the log tail stands still while the kernel goes on; resume catches up.
        click(page, "pause-view")
        wait_status(page, r"view paused")
        assert controls(page)["paused"] == "true"
        frozen = log_total(page)
        page.wait_for_timeout(2500)
        assert log_total(page) == frozen, "a paused view must not change"
        click(page, "pause-view")
        wait_status(page, r"view resumed")
        moved = poll(page, lambda: log_total(page), lambda n: n > frozen, timeout_s=15)
        assert moved > frozen

        # Stop the simulator (confirmed), then take a time mark before the reset.
        confirm(page, "simulator-toggle", "Stop the simulator?")
        wait_status(page, r"^simulator stopped$")
        page.wait_for_timeout(1500)
        before_reset: float = page.evaluate("() => Date.now() / 1000")
        page.wait_for_timeout(1500)
        counts_before = controls(page)["done"]

        # Reset counters: cancelling does nothing; confirming zeroes every card.
        click(page, "reset-counters")
        click(page, "dismiss")
        wait_status(page, r"^nothing done$")
        assert controls(page)["done"] == counts_before
        confirm(page, "reset-counters", "Reset every agent's")
        wait_status(page, r"^counters reset$")
        zeroed = poll(
            page,
            lambda: controls(page),
            lambda s: all(v == 0 for v in s["done"].values()),
            timeout_s=10,
        )
        assert all(v == 0 for v in zeroed["done"].values()), zeroed
        screenshot(page, "controls-live")

        # A past range that ends before the reset shows the counts of that time.
        shown_time = page.locator(".cw-controls [data-role=until-time]").input_value()
        assert re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d:[0-5]\d", shown_time), shown_time  # 24-hour
        set_range_end(page, "since", before_reset - 600)
        set_range_end(page, "until", before_reset)
        click(page, "range-past")
        wait_status(page, r"past range")
        past = poll(
            page,
            lambda: controls(page),
            lambda s: sum(v or 0 for v in s["done"].values()) > 0,
            timeout_s=10,
        )
        assert past["mode"].startswith("past · ") and past["backToLive"], past
        assert sum(past["done"].values()) == sum(v or 0 for v in counts_before.values()), (
            past,
            counts_before,
        )
        screenshot(page, "controls-past")

        click(page, "range-live")
        back = poll(
            page,
            lambda: controls(page),
            lambda s: s["mode"] == "live · last 5 min" and all(v == 0 for v in s["done"].values()),
            timeout_s=10,
        )
        assert back["mode"] == "live · last 5 min" and not back["backToLive"], back

        # Per agent: pause shows "paused" on the card and the graph node, and resume clears it;
        # forget, mark offline and cancel each leave a visible note on the card, although the
        # simulator's agents keep sending heartbeats (a forgotten agent comes straight back).
        click(page, "simulator-toggle")  # start it again: agents alive and working
        wait_status(page, r"^simulator started$")
        page.locator(".cw-controls [data-role=agent]").select_option("request_planner")
        click(page, "agent-pause")
        wait_status(page, r"^sent pause to request_planner$")
        paused = poll(
            page,
            lambda: agent(page, "request_planner"),
            lambda a: a["badge"] == "paused" and a["node"].endswith("(paused)"),
            timeout_s=10,
        )
        assert paused["paused"] == "true" and paused["note"] == "paused by admin", paused
        screenshot(page, "controls-agent-paused")
        click(page, "agent-resume")
        resumed = poll(
            page,
            lambda: agent(page, "request_planner"),
            # The card and the graph are two widgets, each redrawn on its own frame: wait for both.
            lambda a: a["badge"] != "paused" and not a["node"].endswith("(paused)"),
            timeout_s=10,
        )
        assert resumed["node"] == "Request planner" and "resumed" in resumed["note"], resumed
        page.locator(".cw-controls [data-role=agent]").select_option("git_operations")
        confirm(page, "forget", "Forget git_operations?")
        wait_status(page, r"^git_operations forgotten$")
        back_again = poll(
            page,
            lambda: agent(page, "git_operations"),
            lambda a: "forgotten" in a["note"],
            timeout_s=15,
        )
        assert "forgotten by admin" in back_again["note"], back_again
        page.locator(".cw-controls [data-role=agent]").select_option("rag_service")
        confirm(page, "mark_offline", "Mark rag_service offline?")
        noted = poll(
            page,
            lambda: agent(page, "rag_service"),
            lambda a: "marked offline" in a["note"],
            timeout_s=10,
        )
        assert "marked offline by admin" in noted["note"], noted
        page.locator(".cw-controls [data-role=agent]").select_option("coding_agent")
        confirm(page, "agent-cancel", "Cancel the task coding_agent")
        cancelled = poll(
            page,
            lambda: agent(page, "coding_agent"),
            lambda a: "cancelled" in a["note"],
            timeout_s=10,
        )
        assert "task cancelled by admin" in cancelled["note"], cancelled
        screenshot(page, "controls-agent-notes")

        # A snapshot download: the whole state as JSON.
        with page.expect_download() as download_info:
            click(page, "snapshot")
        path = download_info.value.path()
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert {"agents", "queue", "graph", "logs", "system", "health"} <= set(doc)
        assert doc["health"]["history"]["degraded"] is False, doc["health"]["history"]

        # The audit trail: every action is an admin line in the log tail (filtered to "admin",
        # as a person would, since the simulator's lines came in between).
        page.locator(".cw-log-tail select[aria-label=source]").select_option("admin")
        lines = poll(
            page,
            lambda: controls(page)["adminLines"],
            lambda ls: any(line.endswith("snapshot (by dashboard)") for line in ls),  # the last
            timeout_s=10,
        )
        joined = "\n".join(lines)
        for expected in (
            "view.range mode=live window=3600",
            "pause_view",
            "resume_view",
            "simulator.stop",
            "reset_counters",
            "view.range mode=past",
            "pause request_planner",
            "resume request_planner",
            "forget git_operations",
            "mark_offline rag_service",
            "cancel coding_agent",
            "snapshot",
        ):
            assert expected in joined, (expected, lines)
    finally:
        screenshot(page, "controls-final")
