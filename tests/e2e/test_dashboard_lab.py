"""The quickstart notebook in a real JupyterLab: the demo dashboard renders every panel, and it
is live (statuses change, logs arrive, plots draw, counters move) in the Light and Dark themes.

The notebook is opened and run once for the module (running it costs seconds); the tests then
read the same page. Its kernel is shut down at the end, so the demo's simulator does not keep
using CPU during later tests.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .dashboard_dom import (
    CODEUR_AGENTS,
    CODEUR_NODES,
    drawn_paths,
    graph_drawn,
    layout,
    own_errors,
    parse_int,
    poll,
    state,
    wait_for_panels,
    wait_graph_drawn,
)
from .lab import (
    IMAGES_ENV,
    TALL_VIEWPORT,
    hide_left_sidebar,
    new_page,
    open_notebook,
    readme_image,
    run_all_cells,
    screenshot,
    set_theme,
)
from .servers import LabServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

QUICKSTART = Path(__file__).resolve().parents[2] / "notebooks" / "01_quickstart.ipynb"

#: How long a liveness check may watch the page before giving up, in seconds.
LIVE_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def quickstart(lab: LabServer, browser: Browser) -> Iterator[Page]:
    """The quickstart, run via the Run menu, with its dashboard rendered."""
    lab.copy_in(QUICKSTART)
    with new_page(browser, TALL_VIEWPORT) as page:
        open_notebook(page, lab, QUICKSTART.name)
        hide_left_sidebar(page)
        run_all_cells(page)
        try:
            wait_for_panels(page)
        except Exception as exc:
            errors = getattr(page, "console_errors", [])
            raise AssertionError(f"dashboard did not render; console errors: {errors}") from exc
        try:
            yield page
        finally:
            lab.shutdown_kernels()


def test_graph_shows_the_six_codeur_nodes(quickstart: Page) -> None:
    graphs = poll(
        quickstart,
        lambda: state(quickstart)["graphs"],
        lambda g: bool(g) and g[0] is not None and set(CODEUR_NODES) <= set(g[0]["nodes"]),
        timeout_s=10,
    )
    assert len(graphs) == 1, f"expected one agent graph, found {len(graphs)}"
    graph = graphs[0]
    assert graph is not None, "the graph's container holds no cytoscape instance"
    assert set(CODEUR_NODES) <= set(graph["nodes"]), graph["nodes"]
    assert graph["edges"], "the Codeur topology has edges"
    # Cytoscape draws on canvases: there must be some, with a size (the graph is on screen).
    assert graph["canvases"] >= 1
    box = quickstart.locator(".cw-agent-graph .cw-graph-canvas").bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 200, box


def test_agent_cards_show_the_five_agents_with_changing_statuses(quickstart: Page) -> None:
    seen: dict[str, set[str]] = defaultdict(set)
    tasks: dict[str, set[str]] = defaultdict(set)

    def sample() -> dict[str, set[str]]:
        for card in state(quickstart)["cards"]:
            seen[card["name"]].add(card["status"])
            tasks[card["name"]].add(card["task"])
        return seen

    def lively(s: dict[str, set[str]]) -> bool:
        # Every agent has a card, at least two agents were seen in two statuses, and someone
        # was seen working.
        changing = [name for name in CODEUR_AGENTS if len(s.get(name, ())) >= 2]
        active = any("active" in statuses for statuses in s.values())
        return set(CODEUR_AGENTS) <= set(s) and len(changing) >= 2 and active

    poll(quickstart, sample, lively, timeout_s=LIVE_TIMEOUT_S, every_s=0.2)
    assert set(CODEUR_AGENTS) <= set(seen), f"cards: {sorted(seen)}"
    assert lively(seen), f"statuses seen per agent: {dict(seen)}"
    # While active, a card names its task (with a job id); idle cards say "no task".
    all_tasks = {t for ts in tasks.values() for t in ts if t}
    assert any(t.startswith("\u25b6") for t in all_tasks), all_tasks


def test_system_plots_draw_lines(quickstart: Page) -> None:
    paths = poll(
        quickstart,
        lambda: drawn_paths(state(quickstart)["plotPaths"]),
        lambda p: len(p) >= 2,
        timeout_s=LIVE_TIMEOUT_S,
    )
    assert len(paths) >= 2, f"bqplot line paths with data: {state(quickstart)['plotPaths']}"


def test_log_lines_keep_arriving(quickstart: Page) -> None:
    first = poll(quickstart, lambda: state(quickstart)["logs"], bool, timeout_s=LIVE_TIMEOUT_S)
    assert first, "no log line shown"
    newest = max(line["seq"] for line in first)
    later = poll(
        quickstart,
        lambda: state(quickstart)["logs"],
        lambda lines: max(line["seq"] for line in lines) > newest,
        timeout_s=LIVE_TIMEOUT_S,
    )
    assert max(line["seq"] for line in later) > newest, "the log tail did not move"
    assert {line["source"] for line in later} & set(CODEUR_AGENTS), later[-5:]
    assert all(line["message"] for line in later)


def test_health_line_and_queue_count(quickstart: Page) -> None:
    def sample() -> dict[str, Any]:
        s = state(quickstart)
        return {"running": s["running"], "health": s["health"], "queue": s["queue"]}

    first = sample()
    assert first["running"] == "true", first
    assert set(first["health"]) >= {"events/s", "dropped", "rejected", "loop lag"}, first
    done_before = parse_int(first["queue"]["completed"]) + parse_int(first["queue"]["failed"])

    def counting(s: dict[str, Any]) -> bool:
        done = parse_int(s["queue"]["completed"]) + parse_int(s["queue"]["failed"])
        return float(s["health"]["events/s"]) > 0 and done > done_before

    last = poll(quickstart, sample, counting, timeout_s=LIVE_TIMEOUT_S)
    assert counting(last), f"before: {first}, after: {last}"
    assert last["health"]["dropped"] == "0", last


def test_screenshots_in_light_and_dark_theme(quickstart: Page) -> None:
    # The 1-minute window, with some seconds of samples: plots with lines in the pictures.
    quickstart.locator(".cw-system-metrics button[data-window='60']").click()
    poll(
        quickstart,
        lambda: drawn_paths(state(quickstart)["plotPaths"]),
        lambda p: len(p) >= 3,
        timeout_s=LIVE_TIMEOUT_S,
    )
    # For the README's pictures (make images), half a minute more of lines on the plots.
    quickstart.wait_for_timeout(30_000 if os.environ.get(IMAGES_ENV) else 3000)
    backgrounds = {}
    for theme in ("light", "dark"):
        set_theme(quickstart, theme)
        # The theme switch restyles the graph and cytoscape repaints it: wait until every node
        # is painted again, so the picture never shows an empty graph panel mid-redraw.
        wait_graph_drawn(quickstart)
        # The widgets take their colours from --jp-* variables: their background follows.
        backgrounds[theme] = quickstart.evaluate(
            "() => getComputedStyle(document.querySelector('.cw-agent-cards')).backgroundColor"
        )
        readme_image(quickstart, ".cw-dashboard", f"dashboard-{theme}")
        screenshot(quickstart, f"lab-{theme}")
        drawn = graph_drawn(quickstart)
        assert drawn["ok"], f"{theme}: the graph was not painted in the screenshot: {drawn}"
    set_theme(quickstart, "light")
    assert backgrounds["light"] != backgrounds["dark"], backgrounds
    assert _luminance(backgrounds["light"]) > 0.6 > 0.3 > _luminance(backgrounds["dark"]), (
        backgrounds
    )


def test_grid_is_balanced_and_the_graph_fills_its_panel(quickstart: Page) -> None:
    boxes = layout(quickstart)
    dash, graph, queue = boxes["dashboard"], boxes["graph"], boxes["queue"]
    # Graph and queue side by side, sharing the width: no empty third column.
    assert abs(graph["y"] - queue["y"]) < 2, boxes
    assert graph["width"] + queue["width"] > 0.95 * dash["width"], boxes
    # The queue fills its cell: as tall as the graph beside it, no empty block under it.
    assert queue["height"] > 0.95 * graph["height"], boxes
    drawn = wait_graph_drawn(quickstart)
    # Fitted to the panel: the drawing spans most of its width or its height, not the middle.
    assert (
        drawn["width"] > 0.75 * drawn["panelWidth"] or drawn["height"] > 0.75 * drawn["panelHeight"]
    ), drawn


def test_no_errors_of_ours_in_the_page(quickstart: Page) -> None:
    """bqplot drew empty series as path "null" and translate(x,undefined) on every render."""
    errors = own_errors(getattr(quickstart, "console_errors", []))
    assert errors == [], errors


def _luminance(css_colour: str) -> float:
    """Rough relative luminance (0 black .. 1 white) of an ``rgb(...)``/``rgba(...)`` colour."""
    parts = css_colour[css_colour.index("(") + 1 : css_colour.index(")")].split(",")
    r, g, b = (float(p) / 255.0 for p in parts[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b
