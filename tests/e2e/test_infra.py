"""The e2e machinery itself, on stock ipywidgets: if these fail, the dashboard tests cannot
tell anything. A notebook is opened in JupyterLab, run via the Run menu, and its widget shown.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from .lab import CURRENT_NOTEBOOK, click_menu, open_notebook, run_all_cells, screenshot, set_theme
from .servers import LabServer, VoilaServer, write_notebook

if TYPE_CHECKING:
    from playwright.sync_api import Page

SLIDER_CELLS = [
    ("markdown", "# e2e smoke test"),
    ("code", "import ipywidgets as w\nslider = w.IntSlider(value=7, max=10, description='seven')"),
    ("code", "slider"),
    ("code", "print('done', slider.value)"),
]


def test_lab_runs_a_notebook_and_shows_a_stock_widget(lab: LabServer, page: Page) -> None:
    write_notebook(lab.root / "smoke.ipynb", SLIDER_CELLS)
    open_notebook(page, lab, "smoke.ipynb")
    run_all_cells(page)

    slider = page.locator(f"{CURRENT_NOTEBOOK} .widget-slider")
    slider.wait_for(state="visible")
    assert page.locator(".widget-readout").first.inner_text() == "7"
    assert "done 7" in page.locator(CURRENT_NOTEBOOK).inner_text()
    assert "seven" in slider.inner_text()

    set_theme(page, "dark")
    assert page.locator("body").get_attribute("data-jp-theme-light") == "false"
    set_theme(page, "light")
    screenshot(page, "smoke-lab")
    # The server log is where the flood test looks for dropped messages: make sure it is there.
    assert "Kernel started" in lab.log_text()


def test_run_all_reports_the_cell_that_raised(lab: LabServer, page: Page) -> None:
    """A notebook that raises must fail the test with the traceback, not hang until timeout."""
    cells = [("code", "x = 1"), ("code", "raise RuntimeError('boom in cell 2')"), ("code", "x")]
    write_notebook(lab.root / "raises.ipynb", cells)
    open_notebook(page, lab, "raises.ipynb")
    with pytest.raises(AssertionError, match="boom in cell 2"):
        run_all_cells(page)


@pytest.mark.cpu_exclusive  # the kernel must outrun the server's message-rate limit
def test_server_log_shows_iopub_overflow(lab: LabServer, page: Page) -> None:
    """Control for the flood test: with the default limit, a cell that sends thousands of IOPub
    messages a second does make the server log "IOPub message rate exceeded", so the flood
    test's check of the log can fail.

    (Display messages, not widget updates: the server resets its count whenever the kernel
    reports "idle", which ipykernel 7 also does while a cell runs, for control requests, so a
    comm flood trips it only intermittently. The flood test therefore also counts the comm
    messages that reach the browser.)
    """
    flood = "from IPython.display import display\nfor i in range(10_000):\n    display(i)"
    cells = [("code", flood)]
    write_notebook(lab.root / "overflow.ipynb", cells)
    offset = lab.log_size()
    try:
        open_notebook(page, lab, "overflow.ipynb")
        # Not run_all_cells(): the browser is busy with thousands of outputs; only the server's
        # log matters here.
        click_menu(page, "Run", "Run All Cells")
        deadline = time.monotonic() + 30
        while "IOPub message rate exceeded" not in lab.log_since(offset):
            assert time.monotonic() < deadline, "the server never reported the overflow"
            page.wait_for_timeout(250)
    finally:
        lab.shutdown_kernels()


def test_voila_renders_a_stock_widget(voila: VoilaServer, page: Page) -> None:
    write_notebook(voila.root / "smoke.ipynb", SLIDER_CELLS)
    page.goto(voila.url("voila/render/smoke.ipynb"), wait_until="domcontentloaded")
    slider = page.locator(".widget-slider")
    slider.wait_for(state="visible", timeout=60_000)
    assert page.locator(".widget-readout").first.inner_text() == "7"
    screenshot(page, "smoke-voila")
