"""The tutorial notebooks are committed clean (no outputs) and match their source script.

The notebooks themselves are run by ``pytest --nbval-lax notebooks`` (``make test``); this only
checks what is committed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def _builder() -> ModuleType:
    path = NOTEBOOKS / "build_notebooks.py"
    spec = importlib.util.spec_from_file_location("build_notebooks", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BUILDER = _builder()


@pytest.mark.parametrize("name", sorted(BUILDER.NOTEBOOKS))
def test_notebook_is_committed_without_outputs(name: str) -> None:
    nb = nbformat.read(str(NOTEBOOKS / name), as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name} cell {i} has outputs"
            assert cell.execution_count is None, f"{name} cell {i} has an execution count"
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("name", sorted(BUILDER.NOTEBOOKS))
def test_notebook_matches_build_script(name: str) -> None:
    on_disk = nbformat.read(str(NOTEBOOKS / name), as_version=4)
    built = BUILDER.build(BUILDER.NOTEBOOKS[name])
    assert [c.source for c in on_disk.cells] == [c.source for c in built.cells], (
        f"notebooks/{name} differs from notebooks/build_notebooks.py: edit the script and run "
        "'.venv/bin/python notebooks/build_notebooks.py'"
    )


def test_every_notebook_is_built_by_the_script() -> None:
    on_disk = {p.name for p in NOTEBOOKS.glob("*.ipynb")}
    assert on_disk == set(BUILDER.NOTEBOOKS)
