"""Static checks of the browser code: no markup injection, and names that match across layers."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
JS = ROOT / "js"
STATIC = ROOT / "codeur_widgets" / "static"

# Agent-supplied text must reach the DOM only through textContent / text nodes / safe attributes.
FORBIDDEN = {
    "innerHTML": re.compile(r"\binnerHTML\b"),
    "outerHTML": re.compile(r"\bouterHTML\b"),
    "insertAdjacentHTML": re.compile(r"\binsertAdjacentHTML\b"),
    "document.write": re.compile(r"\bdocument\s*\.\s*write(ln)?\b"),
    "eval": re.compile(r"\beval\s*\("),
    "new Function": re.compile(r"\bnew\s+Function\b"),
    "setTimeout(string)": re.compile(r"\bset(Timeout|Interval)\s*\(\s*['\"`]"),
    "createContextualFragment": re.compile(r"\bcreateContextualFragment\b"),
    "DOMParser": re.compile(r"\bDOMParser\b"),
    "srcdoc": re.compile(r"\bsrcdoc\b"),
}

WIDGETS = {
    "AgentCards": "agent_cards",
    "AgentGraphView": "agent_graph",
    "AlertsPanel": "alerts_panel",
    "QueueStats": "queue_stats",
    "LogTail": "log_tail",
    "TraceView": "trace_view",
}


def js_sources() -> list[Path]:
    files = sorted(
        p
        for p in JS.rglob("*")
        if p.suffix in {".js", ".mjs"} and "node_modules" not in p.parts and p.is_file()
    )
    assert files, "no JS sources found"
    return files


@pytest.mark.parametrize("path", js_sources(), ids=lambda p: str(p.relative_to(JS)))
def test_no_markup_injection(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    found = [name for name, pattern in FORBIDDEN.items() if pattern.search(text)]
    assert not found, f"{path.relative_to(ROOT)} uses {found}: use textContent/createTextNode"


def test_the_scan_catches_offenders() -> None:
    samples = [
        "el.innerHTML = x",
        "el.outerHTML=x",
        "el.insertAdjacentHTML('beforeend', x)",
        "document.write(x)",
        "eval(x)",
        "window.eval (x)",
        "new Function('return 1')",
        "setTimeout('alert(1)', 1)",
    ]
    for sample in samples:
        assert any(p.search(sample) for p in FORBIDDEN.values()), sample
    for fine in ["el.textContent = x", "evaluate(x)", "model.on('change', fn)", "retrieval(x)"]:
        assert not any(p.search(fine) for p in FORBIDDEN.values()), fine


@pytest.mark.parametrize(("cls", "name"), sorted(WIDGETS.items()))
def test_names_match_across_layers(cls: str, name: str) -> None:
    module = importlib.import_module(f"codeur_widgets.widgets.{name}")
    widget = getattr(module, cls)
    assert widget._esm.name == name  # the Bundle descriptor, read on the class
    assert (JS / f"{name}.js").is_file()
    import codeur_widgets

    assert getattr(codeur_widgets, cls) is widget


def test_composites_have_their_js_modules() -> None:
    from codeur_widgets.widgets.dashboard import DashboardHeader
    from codeur_widgets.widgets.system_metrics import _SystemPanel

    assert DashboardHeader._esm.name == "dashboard"
    assert _SystemPanel._esm.name == "system_metrics"
    assert (JS / "dashboard.js").is_file()
    assert (JS / "system_metrics.js").is_file()


def test_every_entry_is_built() -> None:
    entries = sorted(p.stem for p in JS.glob("*.js"))
    assert entries == sorted(
        [*WIDGETS.values(), "dashboard", "dashboard_controls", "system_metrics"]
    )
    missing = [e for e in entries if not (STATIC / f"{e}.js").is_file()]
    assert not missing, f"run 'make js': static bundles missing for {missing}"


def test_bundles_are_self_contained_esm() -> None:
    graph = (STATIC / "agent_graph.js").read_text(encoding="utf-8")
    # cytoscape is bundled, never fetched from a CDN at run time.
    assert "cytoscape" in graph
    assert not re.search(r"""\bimport\s*(\(|[^;]*?\bfrom\s*)["'](https?:)?//""", graph)
    for path in STATIC.glob("*.js"):
        text = path.read_text(encoding="utf-8")
        assert "export" in text, f"{path.name} is not an ES module"
        assert not re.search(r"""\bfrom\s*["'][^./]""", text), f"{path.name} imports a bare module"
