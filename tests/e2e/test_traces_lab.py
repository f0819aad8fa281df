"""Traces in a real JupyterLab: the quickstart's dashboard shows a running job's waterfall whose
open span grows in the browser and then closes; a failed job's span is red with its error text;
a hostile prompt in a captured message is shown as literal text; Light and Dark screenshots.

The notebook is the quickstart's own cells plus two: one makes the simulator's coding agent fail
(its LLM call times out), one runs an agent whose captured prompt and answer are HTML payloads.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import nbformat
import pytest

from .dashboard_dom import poll, wait_for_panels
from .lab import (
    TALL_VIEWPORT,
    hide_left_sidebar,
    new_page,
    open_notebook,
    run_all_cells,
    screenshot,
    set_theme,
)
from .servers import LabServer, write_notebook

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

QUICKSTART = Path(__file__).resolve().parents[2] / "notebooks" / "01_quickstart.ipynb"

HOSTILE_PROMPT = '<img src=x onerror="window.__pwned=1">'
HOSTILE_ANSWER = "<script>window.__pwned=2</script><b onmouseover='window.__pwned=3'>bold</b>"

EXTRA_CELLS = [
    # Two of the coding agent's next jobs fail: their first LLM call times out.
    'dash.simulator.inject_error("coding_agent", times=2)',
    f"""
evil = dash.hub.agent("prompt_injection_test", model="gpt-4o")
with evil.task("answer a hostile user", job_id="job-hostile"):
    messages = [{{"role": "user", "content": {HOSTILE_PROMPT!r}}}]
    with evil.llm_call(model="gpt-4o", messages=messages) as c:
        c.output({HOSTILE_ANSWER!r})
        c.tokens(prompt=12, completion=8)
""",
]

#: The trace view's state, read from its DOM.
_TRACES_JS = """
() => {
  const view = document.querySelector('.cw-trace-view');
  if (!view) return null;
  const text = (el) => (el ? el.textContent : null);
  return {
    items: [...view.querySelectorAll('.cw-tr-item')].map((r) => ({
      id: r.dataset.id, status: r.getAttribute('data-status'),
      selected: r.getAttribute('data-selected'), text: r.textContent})),
    rows: [...view.querySelectorAll('.cw-tr-row')].map((r) => ({
      i: Number(r.getAttribute('data-i')), status: r.getAttribute('data-status'),
      kind: r.getAttribute('data-kind'), open: r.getAttribute('data-open'),
      critical: r.getAttribute('data-critical'), name: text(r.querySelector('.cw-tr-label')),
      width: parseFloat(r.querySelector('.cw-tr-bar').style.width || '0'),
      colour: getComputedStyle(r.querySelector('.cw-tr-bar')).backgroundColor})),
    head: text(view.querySelector('.cw-tr-head')),
    detail: text(view.querySelector('.cw-tr-detail')),
    errorColour: (() => {
      const probe = document.createElement('span');
      probe.style.color = 'var(--cw-err)';
      view.append(probe);
      const c = getComputedStyle(probe).color;
      probe.remove();
      return c;
    })(),
    pwned: typeof window.__pwned === 'undefined' ? null : window.__pwned,
    injected: document.querySelectorAll('img[src="x"], b[onmouseover]').length,
  };
}
"""


T = TypeVar("T")


def traces(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(_TRACES_JS)
    return result


def click_until(page: Page, selector: str, probe: Callable[[], T], done: Callable[[T], bool]) -> T:
    """Click ``selector`` until ``done(probe())`` (for up to 30 s); returns the last probe.

    The trace list and a running trace's rows are redrawn as the jobs and spans change, and on a
    loaded machine a redraw can come between Playwright's checks that an element is stable and
    its click (the click then waits on a detached element until it times out). The element is
    looked up afresh for each click instead, and the click dispatched to it.
    """
    target = page.locator(selector)
    deadline = time.monotonic() + 30
    while True:
        target.dispatch_event("click", timeout=10_000)
        value = poll(page, probe, done, timeout_s=3)
        if done(value) or time.monotonic() >= deadline:
            return value


def click_row(page: Page, i: int, shows: Callable[[str], bool]) -> str:
    """Click span row ``i`` of the waterfall until the details pane shows what ``shows(text)``
    accepts; returns the details' text."""
    selector = f'.cw-trace-view .cw-tr-row[data-i="{i}"]'
    return click_until(page, selector, lambda: traces(page)["detail"] or "", shows)


def select_trace(page: Page, trace_id: str) -> None:
    """Click a trace in the list until it shows as selected, then wait for its waterfall (its
    head names it: the rows drawn before may still be the previously selected trace's)."""
    selected = page.locator(f'.cw-tr-item[data-id="{trace_id}"][data-selected="true"]')
    item = f'.cw-trace-view .cw-tr-item[data-id="{trace_id}"]'
    assert click_until(page, item, selected.count, bool), f"{trace_id!r} never showed selected"
    page.locator(f'.cw-trace-view .cw-tr-title[title="{trace_id}"]').wait_for(timeout=10_000)
    page.locator(".cw-trace-view .cw-tr-row").first.wait_for(timeout=10_000)


@pytest.fixture(scope="module")
def lab_page(lab: LabServer, browser: Browser) -> Iterator[Page]:
    quickstart = nbformat.read(str(QUICKSTART), as_version=4)
    cells = [
        (c.cell_type if c.cell_type == "code" else "markdown", c.source) for c in quickstart.cells
    ]
    cells += [("code", source.strip()) for source in EXTRA_CELLS]
    write_notebook(lab.root / "traces.ipynb", cells)
    with new_page(browser, TALL_VIEWPORT) as page:
        open_notebook(page, lab, "traces.ipynb")
        hide_left_sidebar(page)
        run_all_cells(page)
        try:
            wait_for_panels(page)
            page.locator(".cw-trace-view .cw-tr-item").first.wait_for(timeout=30_000)
        except Exception as exc:
            errors = getattr(page, "console_errors", [])
            raise AssertionError(f"no trace view; console errors: {errors}") from exc
        page.locator(".cw-trace-view").scroll_into_view_if_needed()
        try:
            yield page
        finally:
            lab.shutdown_kernels()


def test_a_running_jobs_open_span_grows_then_closes(lab_page: Page) -> None:
    page = lab_page
    running = poll(
        page,
        lambda: [
            i
            for i in traces(page)["items"]
            if i["status"] == "running" and i["id"].startswith("job-")
        ],
        bool,
        timeout_s=30,
    )
    assert running, traces(page)["items"][:5]
    select_trace(page, running[0]["id"])
    # An open span's bar grows while it is open (the browser animates it: no message needed).
    grew: dict[str, Any] | None = None
    deadline = time.monotonic() + 30
    while grew is None and time.monotonic() < deadline:
        rows = traces(page)["rows"]
        candidates = [r for r in rows if r["open"] == "true" and r["kind"] == "task"]
        if not candidates:
            if "running" not in (traces(page)["head"] or ""):  # that job is over: another
                now_running = [i for i in traces(page)["items"] if i["status"] == "running"]
                if now_running:
                    select_trace(page, now_running[0]["id"])
            page.wait_for_timeout(100)
            continue
        watched = candidates[-1]["i"]
        first = next(r for r in rows if r["i"] == watched)
        for _ in range(10):
            page.wait_for_timeout(100)
            now = next((r for r in traces(page)["rows"] if r["i"] == watched), None)
            if now is None or now["open"] != "true":
                break
            if now["width"] > first["width"]:
                grew = {"before": first, "after": now}
                break
    assert grew is not None, "no open span was seen growing"

    def row() -> dict[str, Any] | None:
        return next((r for r in traces(page)["rows"] if r["i"] == watched), None)

    screenshot(page, "lab-traces-running")
    closed = poll(page, lambda: row() or {}, lambda r: r.get("open") == "false", timeout_s=30)
    assert closed.get("open") == "false" and closed.get("status") in ("ok", "error", "cancelled")
    # The critical path is marked, and the kind of each span is shown.
    rows = traces(page)["rows"]
    assert any(r["critical"] == "true" for r in rows)
    assert {"task"} <= {r["kind"] for r in rows}


def test_a_failed_jobs_span_is_red_with_its_error(lab_page: Page) -> None:
    page = lab_page
    page.locator(".cw-trace-view select[aria-label='status']").select_option("failed")
    failed = poll(
        page,
        lambda: [i for i in traces(page)["items"] if i["status"] == "failed"],
        bool,
        timeout_s=60,
    )
    assert failed, traces(page)["items"][:5]
    select_trace(page, failed[0]["id"])
    red = poll(
        page,
        lambda: [r for r in traces(page)["rows"] if r["status"] == "error"],
        lambda rows: any(r["kind"] == "llm" for r in rows),
        timeout_s=10,
    )
    llm = next(r for r in red if r["kind"] == "llm")
    error_colour = traces(page)["errorColour"]
    assert all(r["colour"] == error_colour for r in red), (error_colour, red)  # drawn red
    detail = click_row(page, llm["i"], lambda t: "LLM call timed out after 60 s" in t)
    assert "TimeoutError: LLM call timed out after 60 s" in detail, detail
    assert "failed" in (traces(page)["head"] or ""), traces(page)["head"]
    screenshot(page, "lab-traces-failed")
    page.locator(".cw-trace-view select[aria-label='status']").select_option("")


def test_a_hostile_prompt_is_literal_text(lab_page: Page) -> None:
    page = lab_page
    page.locator(".cw-trace-view input[aria-label='search traces']").fill("job-hostile")
    poll(
        page,
        lambda: traces(page)["items"],
        lambda items: any(i["id"] == "job-hostile" for i in items),
        timeout_s=20,
    )
    select_trace(page, "job-hostile")
    llm = poll(
        page, lambda: [r for r in traces(page)["rows"] if r["kind"] == "llm"], bool, timeout_s=10
    )
    detail = click_row(page, llm[0]["i"], lambda t: HOSTILE_PROMPT in t)
    assert HOSTILE_PROMPT in detail and HOSTILE_ANSWER in detail, detail
    page.wait_for_timeout(1_000)  # give an injected handler time to fire
    state = traces(page)
    assert state["pwned"] is None and state["injected"] == 0, state
    screenshot(page, "lab-traces-hostile")
    page.locator(".cw-trace-view input[aria-label='search traces']").fill("")


def test_screenshots_in_light_and_dark(lab_page: Page) -> None:
    page = lab_page
    running = poll(
        page,
        lambda: [i for i in traces(page)["items"] if i["status"] == "running"],
        bool,
        timeout_s=30,
    )
    if running:
        select_trace(page, running[0]["id"])
    backgrounds = {}
    for theme in ("dark", "light"):
        set_theme(page, theme)
        page.locator(".cw-trace-view").scroll_into_view_if_needed()
        backgrounds[theme] = page.evaluate(
            "() => getComputedStyle(document.querySelector('.cw-trace-view')).backgroundColor"
        )
        screenshot(page, f"lab-traces-{theme}")
    assert backgrounds["light"] != backgrounds["dark"], backgrounds


def test_a_log_line_opens_its_trace_and_a_card_filters_the_list(lab_page: Page) -> None:
    page = lab_page
    # No filter left by an earlier test (one that failed half-way would leave its own).
    page.locator(".cw-trace-view input[aria-label='search traces']").fill("")
    page.locator(".cw-trace-view select[aria-label='status']").select_option("")
    # A log line written inside a job carries its trace: clicking it selects that trace.
    newest = page.locator(".cw-log-tail .cw-log-row[data-trace]").last
    newest.wait_for(timeout=20_000)
    # Lines keep arriving, so ``.last`` may be another line by the time it is clicked: pin the
    # line by its sequence number and click that one.
    seq = newest.get_attribute("data-seq")
    line = page.locator(f'.cw-log-tail .cw-log-row[data-seq="{seq}"]')
    trace_id = line.get_attribute("data-trace")
    assert trace_id
    line.scroll_into_view_if_needed()
    line.click()
    page.locator(
        f'.cw-trace-view .cw-tr-item[data-id="{trace_id}"][data-selected="true"]'
    ).wait_for(timeout=10_000)
    head = poll(page, lambda: traces(page)["head"] or "", lambda t: trace_id in t, timeout_s=10)
    assert trace_id in head, head
    # Selecting an agent's card lists only the traces that agent worked in.
    card = page.locator(".cw-agent-cards .cw-card", has_text="git_operations").first
    card.scroll_into_view_if_needed()
    card.click()
    agent_filter = page.locator(".cw-trace-view select[aria-label='agent']")
    poll(page, agent_filter.input_value, lambda v: v == "git_operations", timeout_s=10)
    items = poll(
        page,
        lambda: traces(page)["items"],
        lambda items: bool(items) and all("git_operations" in i["text"] for i in items),
        timeout_s=10,
    )
    assert all("git_operations" in i["text"] for i in items), [i["text"] for i in items]
    card.click()  # clicking the selected card again clears the selection and the filter
    poll(page, agent_filter.input_value, lambda v: v == "", timeout_s=10)
