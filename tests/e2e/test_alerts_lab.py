"""Alerts in real JupyterLab: a rule added from the page fires during a simulator run, shows in
the header and the Alerts panel, is acknowledged, and resolves.

A demo dashboard runs the simulator. Through the panel's form a person first submits a bad
threshold (answered in the panel, nothing added), then adds "coder spend": the coding agent's
cost over 10 s above $0.02, critical, whose action stops the simulator. The rule fires (a row in
the panel, "1 firing" in red in the header, the simulator stopped and the stop audited in the
log tail), is acknowledged (the header's count turns muted), and, the simulator stopped, resolves
once its 10 s window has slid past the spending (a row under "Recently resolved").
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .dashboard_dom import poll, wait_for_panels
from .lab import SCREENSHOTS, hide_left_sidebar, open_notebook, run_all_cells, screenshot
from .servers import LabServer, write_notebook

if TYPE_CHECKING:
    from playwright.sync_api import Page

SETUP_CELL = """
from codeur_widgets import Dashboard

dash = Dashboard.demo(seed=7, jobs_per_minute=60, concurrency=3, time_scale=10)
dash
""".strip()

NOTEBOOK = [("code", SETUP_CELL)]
ALERT = "coder spend@agent:coding_agent"

_ALERTS_JS = """
() => {
  const text = (el) => (el ? el.textContent : null);
  const panel = document.querySelector('.cw-alerts');
  const badge = document.querySelector('.cw-dashboard-header [data-role=alerts]');
  const rows = (role) => panel
    ? [...panel.querySelectorAll(`[data-role=${role}] tbody tr`)].map((r) => ({
        id: r.getAttribute('data-alert') || r.getAttribute('data-rule'),
        acked: r.getAttribute('data-acked'),
        level: r.getAttribute('data-level'),
        cells: [...r.querySelectorAll('td')].map((td) => td.textContent),
      }))
    : [];
  const resolvedBox = panel && panel.querySelector('[data-role=resolved]');
  return {
    status: text(panel && panel.querySelector('[data-role=status]')),
    statusLevel: panel && panel.querySelector('[data-role=status]').getAttribute('data-level'),
    panelBadge: text(panel && panel.querySelector('[data-role=badge]')),
    header: text(badge && badge.lastChild),
    headerLevel: badge && badge.getAttribute('data-level'),
    firing: rows('firing'),
    resolved: resolvedBox && resolvedBox.closest('[hidden]') ? [] : rows('resolved'),
    rules: rows('rules'),
    simulator: text(document.querySelector('.cw-controls [data-action=simulator-toggle]')),
    alertLines: [...document.querySelectorAll('.cw-log-tail .cw-log-row')]
      .filter((r) => ['alerts', 'admin'].includes(text(r.querySelector('.cw-log-src'))))
      .map((r) => text(r.querySelector('.cw-log-msg'))),
  };
}
"""


def alerts(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(_ALERTS_JS)
    return result


def fill_form(page: Page, **fields: str) -> None:
    form = page.locator(".cw-alerts [data-role=add-rule]")
    for name, value in fields.items():
        field = form.locator(f"[data-field={name}]")
        if field.evaluate("(el) => el.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    form.locator("[data-action=add-rule]").click()


def wait_status(page: Page, pattern: str, timeout_s: float = 20) -> dict[str, Any]:
    last = poll(
        page,
        lambda: alerts(page),
        lambda s: bool(re.search(pattern, s["status"] or "")),
        timeout_s=timeout_s,
    )
    assert re.search(pattern, last["status"] or ""), last
    return last


def test_a_rule_added_from_the_page_fires_is_acknowledged_and_resolves(
    lab: LabServer, tall_page: Page
) -> None:
    page = tall_page
    write_notebook(lab.root / "alerts.ipynb", NOTEBOOK)
    panel = page.locator(".cw-alerts")
    try:
        open_notebook(page, lab, "alerts.ipynb")
        hide_left_sidebar(page)
        run_all_cells(page)
        wait_for_panels(page)
        panel.wait_for(state="visible")
        start = alerts(page)
        assert start["header"] == "none" and start["firing"] == [], start
        defaults = len(start["rules"])
        assert defaults == 6, start["rules"]

        # Bad input is answered in the panel and adds nothing.
        fill_form(
            page,
            name="coder spend",
            metric="cost_usd",
            scope="agent:coding_agent",
            threshold="lots",
            window="10",
            severity="critical",
            action="stop_simulator",
        )
        bad = wait_status(page, r"threshold must be a number, got 'lots'")
        assert bad["statusLevel"] == "err" and len(bad["rules"]) == defaults, bad

        fill_form(page, threshold="0.02")
        wait_status(page, r"^rule 'coder spend' added: cost_usd > 0\.02 over 10 s")

        # It fires during the run: a row in the panel, a red count in the header.
        fired = poll(
            page,
            lambda: alerts(page),
            lambda s: any(r["id"] == ALERT for r in s["firing"]),
            timeout_s=60,
        )
        [row] = [r for r in fired["firing"] if r["id"] == ALERT]
        assert row["level"] == "err" and row["acked"] == "false", row
        assert row["cells"][1:3] == ["coder spend", "agent:coding_agent"], row
        assert row["cells"][5] == "> $0.02 over 10 s", row
        assert re.fullmatch(r"\$\d+\.\d+", row["cells"][3]), row  # the value that crossed
        header = poll(page, lambda: alerts(page), lambda s: s["header"] == "1 firing", timeout_s=10)
        assert header["headerLevel"] == "err", header
        screenshot(page, "alerts-firing")
        panel.screenshot(path=str(SCREENSHOTS / "alerts-panel-firing.png"))

        # Its action stopped the simulator, audited like a click.
        stopped = poll(
            page,
            lambda: alerts(page),
            lambda s: (
                s["simulator"] == "Start"
                and any("simulator.stop (by alerts)" in line for line in s["alertLines"])
            ),
            timeout_s=15,
        )
        assert stopped["simulator"] == "Start", stopped
        assert any(line.startswith("alert.fired: coder spend") for line in stopped["alertLines"])

        # Acknowledge: the row says so and the header's colour goes.
        panel.locator(f"tr[data-alert='{ALERT}'] [data-action=ack]").click()
        wait_status(page, rf"^acknowledged {re.escape(ALERT)}$")
        acked = poll(
            page,
            lambda: alerts(page),
            lambda s: (
                s["headerLevel"] == "muted"
                and any(r["id"] == ALERT and r["acked"] == "true" for r in s["firing"])
            ),
            timeout_s=10,
        )
        assert acked["header"] == "1 firing (1 acknowledged)", acked
        assert acked["panelBadge"] == "1 firing (1 acknowledged)", acked
        panel.screenshot(path=str(SCREENSHOTS / "alerts-panel-acknowledged.png"))

        # No more spending: once the 10 s window has slid past it, the alert resolves.
        done = poll(
            page,
            lambda: alerts(page),
            lambda s: (
                not s["firing"]
                and s["header"] == "none"  # the header refreshes once a second
                and any(r["id"] == ALERT for r in s["resolved"])
            ),
            timeout_s=45,
        )
        assert done["firing"] == [] and done["header"] == "none", done
        [resolved] = [r for r in done["resolved"] if r["id"] == ALERT]
        assert resolved["cells"][-1] == "cleared", resolved
        assert any(
            line.startswith(f"alert.resolved: {ALERT} resolved after")
            for line in done["alertLines"]
        ), done["alertLines"]
        panel.screenshot(path=str(SCREENSHOTS / "alerts-panel-resolved.png"))
        errors = getattr(page, "console_errors", [])
        assert not [e for e in errors if "alerts" in e.lower()], errors
    finally:
        screenshot(page, "alerts-final")
