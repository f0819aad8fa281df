"""The quickstart dashboard as a standalone Voila app: same panels, same live state."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .dashboard_dom import (
    CODEUR_AGENTS,
    CODEUR_NODES,
    RENDER_TIMEOUT_MS,
    drawn_paths,
    layout,
    own_errors,
    poll,
    state,
    wait_for_panels,
    wait_graph_drawn,
)
from .lab import IMAGES_ENV, readme_image, screenshot
from .servers import VoilaServer

if TYPE_CHECKING:
    from playwright.sync_api import Page

QUICKSTART = Path(__file__).resolve().parents[2] / "notebooks" / "01_quickstart.ipynb"


def test_quickstart_dashboard_in_voila(voila: VoilaServer, tall_page: Page) -> None:
    page = tall_page
    voila.copy_in(QUICKSTART)
    page.goto(voila.url(f"voila/render/{QUICKSTART.name}"), wait_until="domcontentloaded")
    try:
        wait_for_panels(page, timeout_ms=RENDER_TIMEOUT_MS)
    except Exception as exc:
        errors = getattr(page, "console_errors", [])
        log = voila.log_text()[-3000:]
        raise AssertionError(f"no dashboard; console: {errors}; voila log:\n{log}") from exc

    statuses: set[str] = set()

    def sample() -> dict[str, Any]:
        s = state(page)
        statuses.update(card["status"] for card in s["cards"])
        return s

    def ready(s: dict[str, Any]) -> bool:
        graph = s["graphs"][0] if s["graphs"] else None
        return (
            graph is not None
            and set(CODEUR_NODES) <= set(graph["nodes"])
            and set(CODEUR_AGENTS) <= {card["name"] for card in s["cards"]}
            and {"active", "idle"} <= statuses  # seen working, and seen done
            and bool(s["logs"])
            and len(drawn_paths(s["plotPaths"])) >= 2
        )

    last = poll(page, sample, ready, timeout_s=30)
    picture = {k: last[k] for k in ("graphs", "cards", "health", "queue", "plotPaths")}
    assert ready(last), f"statuses seen: {statuses}; page: {picture}"
    assert last["running"] == "true"
    # Voila shows markdown and outputs only: no code, no Lab chrome.
    assert page.locator(".jp-CodeCell .jp-InputArea:visible, .cm-editor:visible").count() == 0
    assert page.locator("#jp-MainMenu").count() == 0
    # A dashboard page: the notebook's prose and its look at the raw health dict are for
    # notebook readers (cells tagged notebook-only, left out by voila.json).
    text = page.locator("body").inner_text()
    for prose in ("in this notebook", "dash.close()", "Next steps", "events/s, ", "'running'"):
        assert prose not in text, f"Voila shows notebook prose: {prose!r}"
    # At 1440 px the graph and the queue share the width (no empty third column).
    boxes = layout(page)
    dash, graph, queue = boxes["dashboard"], boxes["graph"], boxes["queue"]
    assert abs(graph["y"] - queue["y"]) < 2 and queue["height"] > 0.95 * graph["height"], boxes
    assert graph["width"] + queue["width"] > 0.95 * dash["width"], boxes
    wait_graph_drawn(page)
    if os.environ.get(IMAGES_ENV):  # make images: the 1-minute plots, with half a minute of lines
        page.locator(".cw-system-metrics button[data-window='60']").click()
        page.wait_for_timeout(30_000)
        wait_graph_drawn(page)
    readme_image(page, ".cw-dashboard", "dashboard-voila")
    screenshot(page, "voila-dashboard")
    errors = own_errors(getattr(page, "console_errors", []))
    assert errors == [], "\n---\n".join(errors)
