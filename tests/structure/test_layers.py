"""The layers of DESIGN section 2 hold: the pure core imports no simulator, transport, widget or
OpenTelemetry code.

Every ``import`` statement is checked, at top level, inside functions and under
``if TYPE_CHECKING:``, with relative imports resolved against the module's package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "codeur_widgets"
FORBIDDEN_IN_CORE = (
    "codeur_widgets.sim",
    "codeur_widgets.transports",
    "codeur_widgets.widgets",
    "codeur_widgets.otel",
)
JUPYTER = ("ipywidgets", "anywidget", "traitlets", "IPython", "ipykernel", "bqplot")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``, relative ones resolved."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            # `from codeur_widgets import sim` imports a subpackage by name
            found.extend((node.lineno, f"{target}.{alias.name}") for alias in node.names)
    return found


def _core_files() -> list[Path]:
    return sorted((PACKAGE / "core").rglob("*.py"))


def test_the_checker_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The oracle itself: relative, absolute, in functions and under TYPE_CHECKING."""
    fake = PACKAGE / "core" / "_layer_probe.py"
    fake.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from ..sim.simulator import Simulator\n"
        "def f():\n    from .. import widgets\n    import codeur_widgets.transports.bridge\n"
    )
    try:
        names = {m for _, m in imported_modules(fake)}
    finally:
        fake.unlink()
    assert "codeur_widgets.sim.simulator" in names
    assert "codeur_widgets.widgets" in names
    assert "codeur_widgets.transports.bridge" in names


def test_otel_is_forbidden_in_core() -> None:
    assert any("codeur_widgets.otel.processor".startswith(f) for f in FORBIDDEN_IN_CORE)


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: p.name)
def test_core_imports_no_sim_transport_widget_or_otel(path: Path) -> None:
    bad = [
        f"{path.name}:{line} imports {module}"
        for line, module in imported_modules(path)
        if module.startswith(FORBIDDEN_IN_CORE) or module.split(".")[0] in JUPYTER
    ]
    assert not bad, bad
