"""Reading the dashboard's state out of the real DOM (shared by the Lab and Voila tests).

The selectors are the ones the widgets' JS modules create (``js/*.js``): ``.cw-dashboard-header``
with its ``.cw-dash-health`` line, ``.cw-agent-cards`` with one ``.cw-card[data-status]`` per
agent, ``.cw-agent-graph`` whose ``.cw-graph-canvas`` holds a cytoscape instance (cytoscape
registers it on its container as ``_cyreg.cy``), ``.cw-queue-stats`` tiles, ``.cw-log-tail`` rows
``.cw-log-row[data-seq]``, and bqplot figures whose line marks are ``path.line`` elements.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from playwright.sync_api import Page

T = TypeVar("T")

#: The Codeur topology's nodes, and the agents among them (``user`` is external: no card).
CODEUR_AGENTS = ("request_planner", "code_planner", "coding_agent", "rag_service", "git_operations")
CODEUR_NODES = ("user", *CODEUR_AGENTS)

#: Time for a freshly displayed dashboard to render all its panels, in milliseconds.
RENDER_TIMEOUT_MS = 60_000

PANELS = (
    ".cw-dashboard-header",
    ".cw-agent-cards",
    ".cw-agent-graph",
    ".cw-queue-stats",
    ".cw-system-metrics",
    ".cw-log-tail",
    ".cw-trace-view",
)

_STATE_JS = """
() => {
  const text = (el) => (el ? el.textContent : null);
  const graphs = [...document.querySelectorAll('.cw-agent-graph .cw-graph-canvas')].map((c) => {
    const cy = c._cyreg && c._cyreg.cy;
    return cy
      ? {nodes: cy.nodes().map((n) => n.id()), labels: cy.nodes().map((n) => n.data('label')),
         edges: cy.edges().map((e) => e.id()), canvases: c.querySelectorAll('canvas').length}
      : null;
  });
  const cards = [...document.querySelectorAll('.cw-agent-cards .cw-card')].map((c) => ({
    name: text(c.querySelector('.cw-card-name')),
    status: c.getAttribute('data-status'),
    task: text(c.querySelector('.cw-card-task')),
    error: text(c.querySelector('.cw-card-err')),
  }));
  const health = {};
  const header = document.querySelector('.cw-dashboard-header');
  for (const cell of header ? header.querySelectorAll('.cw-dash-health > span') : []) {
    health[text(cell.firstChild)] = text(cell.lastChild);
  }
  const run = header && header.querySelector('.cw-dash-run');
  const logTail = document.querySelector('.cw-log-tail');
  const logs = logTail
    ? [...logTail.querySelectorAll('.cw-log-row')].map((r) => ({
        seq: Number(r.getAttribute('data-seq')),
        level: text(r.querySelector('.cw-log-lvl')),
        source: text(r.querySelector('.cw-log-src')),
        message: text(r.querySelector('.cw-log-msg')),
      }))
    : [];
  const logCounts = logTail ? text(logTail.querySelector('.cw-toolbar .cw-num')) : null;
  const queue = {};
  for (const tile of document.querySelectorAll('.cw-queue-stats .cw-q-tile')) {
    queue[tile.getAttribute('data-kind')] = text(tile.querySelector('.cw-q-value'));
  }
  const plotPaths = [...document.querySelectorAll('.bqplot path.line')].map(
    (p) => p.getAttribute('d') || '');
  return {graphs, cards, health, running: run ? run.getAttribute('data-running') : null,
          logs, logCounts, queue, plotPaths};
}
"""


# Has cytoscape *painted* the graph? For each node, the pixel at its centre on cytoscape's
# canvases (what the screen shows, not a fresh rendering): transparent on all of them means not
# drawn (yet), as during the redraw after a theme switch. Also the drawing's extent.
_GRAPH_DRAWN_JS = """
() => {
  const c = document.querySelector('.cw-agent-graph .cw-graph-canvas');
  const cy = c && c._cyreg && c._cyreg.cy;
  if (!cy || cy.nodes().empty()) return {ok: false, missing: ['(no nodes)']};
  const layers = [...c.querySelectorAll('canvas')].map((canvas) => ({
    id: canvas.getAttribute('data-id'), width: canvas.width, height: canvas.height,
    cssWidth: canvas.clientWidth, ctx: canvas.width > 0 ? canvas.getContext('2d') : null,
  }));
  const missing = [];
  cy.nodes().forEach((n) => {
    const p = n.renderedPosition();
    const painted = layers.some((l) => {
      if (!l.ctx || !l.cssWidth) return false;
      const ratio = l.width / l.cssWidth;
      return l.ctx.getImageData(Math.round(p.x * ratio), Math.round(p.y * ratio), 1, 1).data[3] > 0;
    });
    if (!painted) missing.push(n.id());
  });
  const bb = cy.nodes().renderedBoundingBox();
  return {ok: missing.length === 0, missing, width: bb.w, height: bb.h,
          panelWidth: c.clientWidth, panelHeight: c.clientHeight,
          layers: layers.map(({id, width, height, cssWidth}) => ({id, width, height, cssWidth}))};
}
"""


def graph_drawn(page: Page) -> dict[str, Any]:
    """``{ok, missing, width, height, panelWidth, panelHeight}``: whether every node of the
    agent graph is painted on screen, and the drawing's extent against its panel's."""
    result: dict[str, Any] = page.evaluate(_GRAPH_DRAWN_JS)
    return result


def wait_graph_drawn(page: Page, timeout_s: float = 15.0) -> dict[str, Any]:
    """Wait until every node of the graph is painted (e.g. after a theme switch's redraw)."""
    drawn = poll(page, lambda: graph_drawn(page), lambda d: bool(d["ok"]), timeout_s=timeout_s)
    errors = getattr(page, "console_errors", [])
    assert drawn["ok"], f"the graph's nodes are not painted: {drawn}; console errors: {errors}"
    return drawn


# The bounding boxes of the dashboard's panels (page coordinates), to check the grid's balance.
_LAYOUT_JS = """
() => {
  const box = (sel) => {
    const el = document.querySelector(sel);
    if (!el) return null;
    const r = el.getBoundingClientRect();
    return {x: r.x, y: r.y, width: r.width, height: r.height};
  };
  return {dashboard: box('.cw-dashboard'), graph: box('.cw-agent-graph'),
          queue: box('.cw-queue-stats'), cards: box('.cw-agent-cards')};
}
"""


def layout(page: Page) -> dict[str, Any]:
    """Boxes (``x, y, width, height``) of the dashboard and its graph, queue and cards panels."""
    result: dict[str, Any] = page.evaluate(_LAYOUT_JS)
    return result


#: Console and page errors that are not ours (each checked for issue 14):
FOREIGN_PAGE_ERRORS = (
    # Notebook 7 itself, while it starts: also with every third-party extension disabled and
    # before any widget exists.
    "Cannot read properties of undefined (reading 'schema')",
    # Voila fetches fonts and MathJax from a CDN: the test machines are offline.
    "Failed to load resource: net::ERR_NAME_NOT_RESOLVED",
    # Voila loads Notebook 7's lab extension (installed beside it), whose shared modules Voila
    # does not provide (module federation #RUNTIME-012, "@jupyterlab/docregistry").
    "#RUNTIME-012",
)


def own_errors(errors: list[str]) -> list[str]:
    """The console and page errors of a page that could be ours (``FOREIGN_PAGE_ERRORS`` out)."""
    return [e for e in errors if not any(f in e for f in FOREIGN_PAGE_ERRORS)]


def state(page: Page) -> dict[str, Any]:
    """A plain-data picture of every dashboard panel on the page (see ``_STATE_JS``)."""
    result: dict[str, Any] = page.evaluate(_STATE_JS)
    return result


def wait_for_panels(page: Page, timeout_ms: int = RENDER_TIMEOUT_MS) -> None:
    """Wait until each of the dashboard's panels is visible."""
    for selector in PANELS:
        page.locator(selector).first.wait_for(state="visible", timeout=timeout_ms)


def parse_int(text: str | None) -> int:
    """``"12,345"`` or ``"12 345"`` → 12345 (the JS formats counts with separators)."""
    digits = re.sub(r"[^\d]", "", text or "")
    if not digits:
        raise ValueError(f"no number in {text!r}")
    return int(digits)


def log_total(page: Page) -> int:
    """The LogTail's "N total" counter, as shown."""
    counts = state(page)["logCounts"] or ""
    match = re.search(r"([\d,.\s\u202f\u00a0]+)\s+total", counts)
    if not match:
        raise AssertionError(f"no total in the log tail's counter {counts!r}")
    return parse_int(match.group(1))


def drawn_paths(paths: list[str]) -> list[str]:
    """The path ``d`` strings that draw at least a segment (a move and a line)."""
    return [d for d in paths if re.search(r"[Mm][^A-Za-z]*[\d.]+.*[LlHhVvCc]", d)]


def poll(
    page: Page,
    probe: Callable[[], T],
    done: Callable[[T], bool],
    *,
    timeout_s: float,
    every_s: float = 0.25,
) -> T:
    """Call ``probe`` until ``done(result)`` or ``timeout_s``; returns the last result.

    Waiting goes through ``page.wait_for_timeout`` so Playwright keeps processing page events.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if done(value) or time.monotonic() >= deadline:
            return value
        page.wait_for_timeout(every_s * 1000)
