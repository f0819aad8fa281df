"""The README's "Use" section, as a user pastes it: one cell per block, in real JupyterLab.

The notebook is built from the README's own blocks (the parser of tests/docs), so the test
follows the README as written. Without anyone calling ``hub.start()`` the header must read
live (displaying the dashboard starts the hub) and the coding agent's card must show the
tokens the second block reports.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import nbformat

from .dashboard_dom import own_errors, poll, state, wait_for_panels
from .lab import hide_left_sidebar, open_notebook, run_all_cells, screenshot
from .servers import LabServer

if TYPE_CHECKING:
    from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[2]


def _blocks_module() -> ModuleType:
    path = ROOT / "tests" / "docs" / "markdown_blocks.py"
    spec = importlib.util.spec_from_file_location("markdown_blocks_for_e2e", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


_CARD_JS = """
(name) => {
  const card = [...document.querySelectorAll('.cw-agent-cards .cw-card')]
    .find((c) => c.querySelector('.cw-card-name').textContent === name);
  return card ? card.textContent : null;
}
"""


def _tokens(text: str | None) -> tuple[float, float]:
    """(in, out) of a card's "tokens 812 in / 240 out" line (k and M suffixes understood)."""
    match = re.search(r"tokens ([\d.]+)([kM]?) in / ([\d.]+)([kM]?) out", text or "")
    if not match:
        return (0.0, 0.0)
    scale = {"": 1.0, "k": 1e3, "M": 1e6}
    return (
        float(match.group(1)) * scale[match.group(2)],
        float(match.group(3)) * scale[match.group(4)],
    )


def test_readme_use_section_runs_and_the_dashboard_is_live(lab: LabServer, tall_page: Page) -> None:
    blocks = _blocks_module()
    page_doc = blocks.parse_page(ROOT / "README.md")
    use = page_doc.section("Use")
    assert len(use) >= 3, "the README's Use section lost its blocks"
    nb = blocks.page_notebook(page_doc, use)
    # Only the section's own blocks (no hidden set-up/tear-down): the README as a user runs it.
    nb.cells = [c for c in nb.cells if not c.metadata.get("tags")]
    nbformat.write(nb, str(lab.root / "readme_use.ipynb"))
    page = tall_page
    try:
        open_notebook(page, lab, "readme_use.ipynb")
        hide_left_sidebar(page)
        run_all_cells(page)
        wait_for_panels(page)

        def ready(s: dict[str, Any]) -> bool:
            card = page.evaluate(_CARD_JS, "coding_agent")
            got_in, got_out = _tokens(card)
            return s["running"] == "true" and got_in >= 812 and got_out >= 240

        last = poll(page, lambda: state(page), ready, timeout_s=30)
        card = page.evaluate(_CARD_JS, "coding_agent")
        run = page.locator(".cw-dashboard-header .cw-dash-run").inner_text()
        assert ready(last), f"header: {run!r}; coding_agent card: {card!r}"
        assert run.strip() == "live", run
        screenshot(page, "readme-use")
        errors = own_errors(getattr(page, "console_errors", []))
        assert errors == [], errors
    finally:
        lab.shutdown_kernels()
