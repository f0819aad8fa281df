"""Every Python block of README.md and docs/*.md runs as written (docs/README.md).

One test per page: its ``python`` blocks become the cells of a notebook, run in order in one
fresh kernel (top-level ``await`` works, as in a notebook), in a temporary working directory,
after the page's hidden ``test-setup`` and before its ``test-teardown``. The test fails when any
block raises, naming the page and line of the block. New pages are picked up by the glob.
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Callable
from pathlib import Path

import pytest
from markdown_blocks import Block, Page, page_notebook, parse_page

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])

#: Per block, seconds before it is stopped and reported (a job or a replay takes a few seconds).
CELL_TIMEOUT_S = 120

#: The widgets a page can create; each must be shown (last expression, or ``display(...)``).
WIDGETS = {
    "Dashboard",
    "AgentCards",
    "AgentGraphView",
    "QueueStats",
    "SystemMetrics",
    "LogTail",
    "DashboardControls",
    "TraceView",
}


def run_page(page: Page, cwd: Path, blocks: list[Block] | None = None) -> None:
    """Run the page's notebook in a fresh kernel in ``cwd``; raise ``AssertionError`` naming the
    first block that raised (the tear-down runs in any case)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = page_notebook(page, blocks)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd)}},
    )
    failure: str | None = None
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            teardown = "test-teardown" in cell.metadata.get("tags", [])
            if failure is not None and not teardown:
                continue
            try:
                client.execute_cell(cell, index)
            except CellExecutionError as exc:
                if failure is None:
                    where = cell.metadata["markdown_source"]
                    failure = f"the block at {where} raised:\n{exc}"
    if failure is not None:
        raise AssertionError(failure)


@pytest.fixture
def kernel(require: Callable[..., None]) -> None:
    for name in ("nbclient", "ipykernel"):
        require(name, importlib.util.find_spec(name) is not None, f"pip install {name}")


@pytest.mark.parametrize("path", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_python_block_runs_as_written(path: Path, tmp_path: Path, kernel: None) -> None:
    page = parse_page(path)
    if not page.runnable:
        return  # nothing to run: a page of prose and other languages
    run_page(page, tmp_path)


def _unshown_widgets(block: Block) -> list[str]:
    """Widgets a block creates but never shows: not its last expression, not in ``display()``."""
    try:
        tree = ast.parse(block.code)
    except SyntaxError:
        return []  # reported when the block runs
    body = tree.body
    last = body[-1] if body else None
    shown: set[str] = set()
    if isinstance(last, ast.Expr) and isinstance(last.value, ast.Name):
        shown.add(last.value.id)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "display":
            shown.update(a.id for a in node.args if isinstance(a, ast.Name))
    problems = []
    for stmt in body:
        value = getattr(stmt, "value", None)
        if not (isinstance(value, ast.Call) and getattr(value.func, "id", None) in WIDGETS):
            continue
        name = value.func.id  # type: ignore[union-attr]
        if isinstance(stmt, ast.Expr) and stmt is not last:
            problems.append(f"{name}(...) is not the block's last line, so it is never shown")
        elif isinstance(stmt, ast.Assign):
            targets = {t.id for t in stmt.targets if isinstance(t, ast.Name)}
            if not targets & shown:
                problems.append(f"{name}(...) is assigned but never shown (end the block with it)")
    return problems


@pytest.mark.parametrize("path", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_widgets_are_shown_where_a_user_pastes_them(path: Path) -> None:
    """A block is one cell: a widget it creates must be its last expression or be displayed."""
    problems = [
        f"{path.name}:{block.line}: {problem}"
        for block in parse_page(path).runnable
        for problem in _unshown_widgets(block)
    ]
    assert not problems, "\n".join(problems)


# -- the convention itself ---------------------------------------------------------------------

SAMPLE = """# A page

<!-- test-setup:
```python
import pathlib
t0 = 41
```
-->

Prose.

```python
x = t0 + 1
```

```bash
make test
```

- a list item with a block:

  ```python
  y = x * 2
  ```

```json
{"not": "run"}
```

<!-- test-teardown:
```python
pathlib.Path("teardown-ran").write_text(str(y))
```
-->
"""


def test_blocks_setup_and_teardown_are_found(tmp_path: Path) -> None:
    path = tmp_path / "sample.md"
    path.write_text(SAMPLE, encoding="utf-8")
    page = parse_page(path)
    assert [(b.info, b.line) for b in page.blocks] == [
        ("python", 12),
        ("bash", 16),
        ("python", 22),
        ("json", 26),
    ]
    assert [b.code for b in page.runnable] == ["x = t0 + 1", "y = x * 2"]
    assert [b.code for b in page.setup] == ["import pathlib\nt0 = 41"]
    assert page.teardown[0].code.startswith("pathlib.Path")
    nb = page_notebook(page)
    assert [c.metadata.get("tags", []) for c in nb.cells] == [
        ["test-setup"],
        [],
        [],
        ["test-teardown"],
    ]
    assert nb.cells[1].metadata["markdown_source"] == "sample.md:12"


def test_a_page_whose_block_raises_fails_and_still_tears_down(tmp_path: Path, kernel: None) -> None:
    path = tmp_path / "broken.md"
    path.write_text(
        SAMPLE.replace(
            "y = x * 2", "y = x * 2\nawait asyncio.sleep(0)\nraise ValueError('no')"
        ).replace("import pathlib", "import asyncio, pathlib"),
        encoding="utf-8",
    )
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    with pytest.raises(AssertionError, match=r"broken\.md:22 raised"):
        run_page(parse_page(path), cwd)
    assert (cwd / "teardown-ran").read_text() == "84"  # top-level await ran; tear-down too


def test_unshown_widgets_are_reported() -> None:
    shown_last = Block("python", "hub = Hub()\nDashboard(hub)", 1)
    mid_block = Block("python", "Dashboard(hub)\nx = 1", 1)
    assigned = Block("python", "dash = Dashboard(hub)\ndash.show_live()", 1)
    displayed = Block("python", "cards = AgentCards(hub)\ndisplay(cards)\nawait go()", 1)
    assert _unshown_widgets(shown_last) == [] and _unshown_widgets(displayed) == []
    assert "never shown" in _unshown_widgets(mid_block)[0]
    assert "assigned but never shown" in _unshown_widgets(assigned)[0]


def test_a_comment_shown_inside_a_block_is_not_a_hidden_setup(tmp_path: Path) -> None:
    path = tmp_path / "howto.md"
    path.write_text(
        "````markdown\n<!-- test-setup:\n```python\nraise SystemExit\n```\n-->\n````\n",
        encoding="utf-8",
    )
    page = parse_page(path)
    assert page.setup == [] and page.runnable == []
    assert [b.info for b in page.blocks] == ["markdown"]
