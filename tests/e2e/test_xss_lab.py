"""Text from agents is shown as text, never parsed as markup (DESIGN section 6).

An agent whose name, task, error and log line are HTML/JS payloads is displayed in a real
JupyterLab. Every payload must appear literally in the DOM, no element it describes may exist,
and none of its scripts may run (each would set ``window.__pwned``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .dashboard_dom import poll, state, wait_for_panels
from .lab import hide_left_sidebar, open_notebook, run_all_cells, screenshot
from .servers import LabServer, write_notebook

if TYPE_CHECKING:
    from playwright.sync_api import Page

EVIL_NAME = '<img src=x onerror="window.__pwned=1">'
EVIL_LOG = "<script>window.__pwned=2</script>"
EVIL_TASK = '<img src=y onerror="window.__pwned=3">'
EVIL_ERROR = "<svg onload=\"window.__pwned=4\"></svg><b onmouseover='window.__pwned=5'>x</b>"

SETUP_CELL = f"""
from codeur_widgets import Dashboard, Hub

hub = Hub()
hub.start()
EVIL_NAME = {EVIL_NAME!r}
agent = hub.agent(EVIL_NAME, model="<b>model</b>", role="<i>role</i>")
hub.publish("agent.error", EVIL_NAME, data={{"error_type": "Boom", "error": {EVIL_ERROR!r}}})
hub.publish("agent.task.started", EVIL_NAME, data={{"task": {EVIL_TASK!r}, "job_id": "j-1"}})
hub.publish("log", EVIL_NAME, data={{"level": "ERROR", "message": {EVIL_LOG!r}}})
agent.send("coding_agent", "payload")
"""

NOTEBOOK = [("code", SETUP_CELL.strip()), ("code", "Dashboard(hub)")]

# Elements the payloads describe, anywhere in the page (the notebook's editors hold the same
# strings as text, which is fine).
_INJECTED_JS = """
() => ({
  pwned: typeof window.__pwned === 'undefined' ? null : window.__pwned,
  imgs: document.querySelectorAll('img[src="x"], img[src="y"]').length,
  svgs: [...document.querySelectorAll('svg[onload], b[onmouseover]')].length,
  scripts: [...document.scripts].filter((s) => s.textContent.includes('__pwned')).length,
  errorText: [...document.querySelectorAll('.cw-card-err')].map((e) => e.textContent),
  options: [...document.querySelectorAll('.cw select option')].map((o) => o.textContent),
})
"""


def test_agent_supplied_markup_is_shown_as_text(lab: LabServer, page: Page) -> None:
    write_notebook(lab.root / "xss.ipynb", NOTEBOOK)
    try:
        open_notebook(page, lab, "xss.ipynb")
        hide_left_sidebar(page)
        run_all_cells(page)
        wait_for_panels(page)

        def shown(s: dict[str, Any]) -> bool:
            names = {card["name"] for card in s["cards"]}
            messages = {line["message"] for line in s["logs"]}
            return EVIL_NAME in names and EVIL_LOG in messages

        last = poll(page, lambda: state(page), shown, timeout_s=20)
        assert shown(last), {k: last[k] for k in ("cards", "logs")}

        card = next(c for c in last["cards"] if c["name"] == EVIL_NAME)
        assert EVIL_TASK in (card["task"] or ""), card
        log = next(line for line in last["logs"] if line["message"] == EVIL_LOG)
        assert log["source"] == EVIL_NAME, log
        graph = last["graphs"][0]
        assert graph is not None and EVIL_NAME in graph["nodes"], graph

        # Give any injected handler time to fire (onerror runs as soon as an image fails).
        page.wait_for_timeout(1500)
        injected = page.evaluate(_INJECTED_JS)
        assert injected["pwned"] is None, f"a payload ran: window.__pwned = {injected['pwned']}"
        assert injected["imgs"] == 0 and injected["svgs"] == 0 and injected["scripts"] == 0, (
            injected
        )
        assert any(EVIL_ERROR in text for text in injected["errorText"]), injected["errorText"]
        assert EVIL_NAME in injected["options"] or "<i>role</i>" in injected["options"], injected
        page.locator(".cw-agent-cards").scroll_into_view_if_needed()
        screenshot(page, "lab-xss")
    finally:
        lab.shutdown_kernels()
