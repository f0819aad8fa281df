"""Agents fed only through OTLP show in a real JupyterLab: cards and graph.

The notebook starts a Hub whose only source is an OTLP/HTTP receiver on a free loopback port
and displays its Dashboard (empty topology). This test process then runs an agent process
traced by the real OpenTelemetry SDK and exported with its real OTLP exporter
(``tests/otel/otlp_worker.py``: a planner agent delegating to a coder agent, LLM calls, some
failures). The planner and coder cards must appear with their tasks and the coder's failures,
and the graph must draw both agents and the planner → coder edge.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .dashboard_dom import poll, state, wait_for_panels
from .lab import hide_left_sidebar, open_notebook, run_all_cells, screenshot
from .servers import LabServer, free_port, write_notebook

if TYPE_CHECKING:
    from playwright.sync_api import Page

WORKER = Path(__file__).resolve().parents[1] / "otel" / "otlp_worker.py"
PLANNER, CODER = "otel_planner", "otel_coder"


def notebook(port: int) -> list[tuple[str, str]]:
    setup = (
        "from codeur_widgets import Dashboard, Hub\n\n"
        f'hub = Hub(sources=["otlp://127.0.0.1:{port}"], topology="empty")\n'
        "hub.start()\n"
        "assert hub.sources[0].port, hub.sources[0].health()"
    )
    return [
        ("markdown", "# Agents over OTLP only"),
        ("code", setup),
        ("code", "Dashboard(hub)"),
    ]


def test_otlp_agents_fill_cards_and_graph(lab: LabServer, tall_page: Page, require: Any) -> None:
    require(
        "the OTLP/HTTP exporter",
        importlib.util.find_spec("opentelemetry.exporter.otlp.proto.http") is not None,
        "pip install opentelemetry-exporter-otlp-proto-http",
    )
    page = tall_page
    port = free_port()
    write_notebook(lab.root / "otel.ipynb", notebook(port))
    try:
        open_notebook(page, lab, "otel.ipynb")
        hide_left_sidebar(page)
        run_all_cells(page)
        wait_for_panels(page)
        done = subprocess.run(
            [sys.executable, str(WORKER), "http", f"http://127.0.0.1:{port}/v1/traces",
             "--traces", "10", "--prefix", "otel"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]

        def shown(s: dict[str, Any]) -> bool:
            cards = {c["name"]: c for c in s["cards"]}
            graph = s["graphs"][0] if s["graphs"] else None
            return (
                {PLANNER, CODER} <= set(cards)
                and graph is not None
                and {PLANNER, CODER} <= set(graph["nodes"])
                and f"{PLANNER}->{CODER}" in graph["edges"]
                and bool(cards[CODER]["error"])
            )

        last = poll(page, lambda: state(page), shown, timeout_s=30)
        cards = {c["name"]: c for c in last["cards"]}
        assert shown(last), {"cards": last["cards"], "graphs": last["graphs"]}
        assert "tests failed in trace" in (cards[CODER]["error"] or ""), cards[CODER]
        page.locator(".cw-agent-cards").scroll_into_view_if_needed()
        screenshot(page, "lab-otel")
    finally:
        lab.shutdown_kernels()
