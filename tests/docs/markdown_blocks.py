"""The code blocks of a Markdown page, as the cells of a notebook that runs them.

The convention every page of ``README.md`` and ``docs/*.md`` follows (docs/README.md):

* every fenced block whose info string starts with ``python`` is run, in page order, in one fresh
  kernel per page (so top-level ``await`` works, as in a notebook cell); each block is one cell,
  written as a user pastes it: the widget to show is its last expression (or in ``display()``);
* blocks in any other language (``bash``, ``yaml``, ``text``, ``json``, none…) are not run;
* a page may hide a set-up in an HTML comment, run before its first block (placeholders such as
  ``t0``/``t1``, a throwaway server), and a tear-down, run after the last block even when one
  failed::

      <!-- test-setup:
      ```python
      import time
      t0 = time.time() - 60
      ```
      -->
      <!-- test-teardown:
      ```python
      hub.stop()
      ```
      -->

The kernel's working directory is a fresh temporary folder, removed afterwards: files a page
writes (``runs.sqlite``…) never land in the repository.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

__all__ = ["Block", "Page", "page_notebook", "parse_page", "run_language"]

_HIDDEN_START = re.compile(r"^\s*<!--\s*test-(?P<kind>setup|teardown)\s*:?")
# Any indent before a fence: blocks inside list items count too.
_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")


def run_language(info: str) -> bool:
    """Whether a block with this info string runs: its first word is ``python``."""
    words = info.strip().split()
    return bool(words) and words[0].lower() == "python"


@dataclass
class Block:
    """One fenced code block: its info string, its code and the line its fence opens on."""

    info: str
    code: str
    line: int

    @property
    def runs(self) -> bool:
        return run_language(self.info)


@dataclass
class Page:
    """A Markdown page's blocks, and its hidden set-up and tear-down code."""

    path: Path
    blocks: list[Block] = field(default_factory=list)
    setup: list[Block] = field(default_factory=list)
    teardown: list[Block] = field(default_factory=list)

    @property
    def runnable(self) -> list[Block]:
        return [b for b in self.blocks if b.runs]

    def section(self, heading: str) -> list[Block]:
        """The runnable blocks under the heading ``heading`` (up to the next heading of the same
        or a higher level), e.g. ``page.section("Use")``."""
        lines = self.path.read_text(encoding="utf-8").splitlines()
        start = end = None
        level = 0
        for i, text in enumerate(lines, start=1):
            m = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", text)
            if not m or _inside_block(self.blocks, i):
                continue
            if start is None and m.group(2) == heading:
                start, level = i, len(m.group(1))
            elif start is not None and len(m.group(1)) <= level:
                end = i
                break
        if start is None:
            raise KeyError(f"{self.path.name} has no heading {heading!r}")
        return [b for b in self.runnable if b.line > start and (end is None or b.line < end)]


def _inside_block(blocks: list[Block], line: int) -> bool:
    return any(b.line <= line <= b.line + b.code.count("\n") + 1 for b in blocks)


def _fenced(lines: list[str], first_line: int) -> list[Block]:
    """The fenced blocks of ``lines`` (numbered from ``first_line``)."""
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE_OPEN.match(lines[i])
        if not m:
            i += 1
            continue
        fence, indent, info = m.group("fence"), m.group("indent"), m.group("info")
        body: list[str] = []
        j = i + 1
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        while j < len(lines) and not closing.match(lines[j]):
            text = lines[j]
            body.append(text[len(indent) :] if text.startswith(indent) else text.lstrip())
            j += 1
        blocks.append(Block(info.strip(), "\n".join(body), first_line + i))
        i = j + 1
    return blocks


def parse_page(path: Path) -> Page:
    """Read ``path`` and return its fenced blocks and hidden set-up / tear-down code.

    One pass over the lines: a hidden comment is recognised only outside fenced blocks (so a
    page may show the convention itself in a ````` ````markdown ````` block), and fences inside
    a hidden comment are not visible blocks.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    page = Page(path)
    visible: list[str] = []  # the page with hidden comments blanked (line numbers kept)
    i = 0
    fence: str | None = None
    while i < len(lines):
        text = lines[i]
        if fence is None:
            hidden = _HIDDEN_START.match(text)
            if hidden:
                j = i
                while "-->" not in lines[j] and j + 1 < len(lines):
                    j += 1
                inner = [lines[i][hidden.end() :], *lines[i + 1 : j + 1]]
                inner[-1] = inner[-1].split("-->", 1)[0]
                found = [b for b in _fenced(inner, i + 1) if b.runs]
                if not found:
                    raise ValueError(
                        f"{path.name}:{i + 1}: a test-{hidden.group('kind')} comment holds no "
                        "```python block"
                    )
                (page.setup if hidden.group("kind") == "setup" else page.teardown).extend(found)
                visible.extend([""] * (j - i + 1))
                i = j + 1
                continue
            m = _FENCE_OPEN.match(text)
            if m:
                fence = m.group("fence")
        elif re.match(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}\s*$", text):
            fence = None
        visible.append(text)
        i += 1
    page.blocks = _fenced(visible, 1)
    return page


def page_notebook(page: Page, blocks: list[Block] | None = None) -> nbformat.NotebookNode:
    """A notebook of the page's set-up, its runnable blocks (or ``blocks``) and its tear-down.

    Each cell's metadata names its origin (``"markdown_source": "README.md:42"``) and its role
    (``"tags"``: ``test-setup``, ``test-teardown``), so a failure can be traced to the page.
    """
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    chosen = page.runnable if blocks is None else blocks
    for role, group in (("test-setup", page.setup), ("", chosen), ("test-teardown", page.teardown)):
        for block in group:
            cell = nbformat.v4.new_code_cell(block.code)
            cell.metadata["markdown_source"] = f"{page.path.name}:{block.line}"
            if role:
                cell.metadata["tags"] = [role]
            nb.cells.append(cell)
    return nb
