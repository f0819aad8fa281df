"""The quickstart in Notebook 7 (the README promises it): the dashboard renders every panel and
keeps moving (cards change status, the header is live, logs arrive), with no error of ours on
the page."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .dashboard_dom import (
    CODEUR_AGENTS,
    CODEUR_NODES,
    own_errors,
    poll,
    state,
    wait_for_panels,
    wait_graph_drawn,
)
from .lab import open_notebook7, run_all_cells, screenshot
from .servers import NotebookServer

if TYPE_CHECKING:
    from playwright.sync_api import Page

QUICKSTART = Path(__file__).resolve().parents[2] / "notebooks" / "01_quickstart.ipynb"


def test_quickstart_renders_and_updates_in_notebook7(
    notebook7: NotebookServer, tall_page: Page
) -> None:
    page = tall_page
    notebook7.copy_in(QUICKSTART)
    try:
        open_notebook7(page, notebook7, QUICKSTART.name)
        run_all_cells(page)
        try:
            wait_for_panels(page)
        except Exception as exc:
            errors = getattr(page, "console_errors", [])
            raise AssertionError(f"no dashboard; console errors: {errors}") from exc
        seen: dict[str, set[str]] = defaultdict(set)

        def sample() -> dict[str, Any]:
            s = state(page)
            for card in s["cards"]:
                seen[card["name"]].add(card["status"])
            return s

        def lively(s: dict[str, Any]) -> bool:
            graph = s["graphs"][0] if s["graphs"] else None
            return (
                s["running"] == "true"
                and graph is not None
                and set(CODEUR_NODES) <= set(graph["nodes"])
                and set(CODEUR_AGENTS) <= set(seen)
                and any("active" in v for v in seen.values())
                and sum(len(v) >= 2 for v in seen.values()) >= 2
                and bool(s["logs"])
            )

        last = poll(page, sample, lively, timeout_s=45, every_s=0.2)
        assert lively(last), f"statuses seen: {dict(seen)}; health: {last['health']}"
        wait_graph_drawn(page)
        screenshot(page, "notebook7-quickstart")
        errors = own_errors(getattr(page, "console_errors", []))
        assert errors == [], errors
    finally:
        notebook7.shutdown_kernels()
