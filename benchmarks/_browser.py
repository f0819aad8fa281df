"""Real JupyterLab + Debian's Chromium for the browser sections (latency, soak, idle, graph fps).

The servers and page helpers are the end-to-end tests' own (``tests/e2e/servers.py`` and
``lab.py``), imported, not copied. One JupyterLab server (default rate limits, token, free port,
temporary folders) serves the whole run; each browser section opens Chromium through Playwright's
sync API and closes it at its end, because while the sync API is active it leaves an asyncio loop
marked as running in this thread, which the asyncio sections after it must not see.

A benchmark notebook waits for a ``go`` file in the server's root before it starts its timed part,
so the page's probes (a MutationObserver, a requestAnimationFrame counter) are in place first.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # ``tests`` is a namespace package at the repository root
    sys.path.insert(0, str(REPO))

from tests.e2e.lab import (  # noqa: E402
    _RUN_ALL_DONE_JS,
    CHROMIUM,
    CURRENT_NOTEBOOK,
    RUN_ALL_TIMEOUT_MS,
    VIEWPORT,
    KernelTraffic,
    click_menu,
    new_page,
    open_notebook,
)
from tests.e2e.lab import CHROMIUM_ARGS as E2E_CHROMIUM_ARGS  # noqa: E402
from tests.e2e.servers import LabServer, write_notebook  # noqa: E402

if TYPE_CHECKING:
    from playwright.sync_api import Page

__all__ = ["PRELUDE", "WAIT_FOR_GO", "BrowserSession", "KernelTraffic", "available"]

# window.gc(), so the soak reads Chromium's JS heap after a collection, not garbage
CHROMIUM_ARGS = [*E2E_CHROMIUM_ARGS, "--js-flags=--expose-gc"]

#: First cell of every benchmark notebook: the repository on sys.path (for ``benchmarks``), the
#: kernel's pid printed for the harness to watch from outside.
PRELUDE = f"""
import asyncio, json, os, pathlib, sys, time
sys.path.insert(0, {str(REPO)!r})
print("KERNEL_PID", os.getpid())
"""

#: Cell code that waits (up to 120 s) for the harness's go signal.
WAIT_FOR_GO = """
_go = pathlib.Path("go")
_deadline = time.monotonic() + 120
while not _go.exists() and time.monotonic() < _deadline:
    await asyncio.sleep(0.05)
"""


def available() -> str | None:
    """Why the browser sections cannot run here, or None when they can."""
    import importlib.util

    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} not found"
    for mod in ("playwright", "jupyterlab"):
        if importlib.util.find_spec(mod) is None:
            return f"{mod} is not installed"
    return None


class BrowserSession:
    """One JupyterLab server for the run; Chromium pages on demand (``page()``)."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="codeur-bench-")
        self.lab = LabServer(Path(self._tmp.name))

    def start(self) -> BrowserSession:
        self.lab.start()
        return self

    def stop(self) -> None:
        self.lab.stop()
        self._tmp.cleanup()

    @contextmanager
    def page(self, viewport: dict[str, int] | None = None) -> Iterator[Page]:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000
            )
            try:
                with new_page(browser, viewport or VIEWPORT) as pg:
                    yield pg
            finally:
                browser.close()

    def notebook(self, name: str, cells: list[str]) -> str:
        """Write a notebook of code cells (after :data:`PRELUDE`) into the root; its name."""
        go = self.lab.root / "go"
        if go.exists():
            go.unlink()
        sources = [PRELUDE, *cells]
        write_notebook(
            self.lab.root / name, [("code", textwrap.dedent(s).strip()) for s in sources]
        )
        return name

    def go(self) -> None:
        (self.lab.root / "go").write_text("go")

    def start_notebook(self, page: Page, name: str) -> None:
        """Open ``name`` and click Run All (returns at once; see :meth:`wait_done`)."""
        open_notebook(page, self.lab, name)
        click_menu(page, "Run", "Run All Cells")

    def wait_done(self, page: Page, timeout_s: float = RUN_ALL_TIMEOUT_MS / 1000) -> None:
        """Wait for Run All to finish; raise with the page's output when a cell did not run."""
        handle = page.wait_for_function(_RUN_ALL_DONE_JS, timeout=timeout_s * 1000, polling=250)
        if int(handle.json_value()["notRun"]) >= 0:
            raise RuntimeError(f"a benchmark cell failed:\n{self.output(page)[-3000:]}")

    def output(self, page: Page) -> str:
        return str(page.locator(CURRENT_NOTEBOOK).inner_text())

    def wait_output(
        self,
        page: Page,
        pattern: str,
        timeout_s: float = 90.0,
        each_poll: Callable[[], None] | None = None,
    ) -> re.Match[str]:
        """Wait for ``pattern`` (a regex) in the notebook's text; its match.

        ``each_poll``, if given, runs before every look at the output: work that must use the
        page meanwhile goes there, since the page belongs to this thread (Playwright's sync API).
        """
        deadline = time.monotonic() + timeout_s
        while True:
            if each_poll is not None:
                each_poll()
            text = self.output(page)
            match = re.search(pattern, text)
            if match:
                return match
            if time.monotonic() > deadline:
                raise TimeoutError(f"{pattern!r} not in the notebook's output:\n{text[-3000:]}")
            page.wait_for_timeout(250)

    def kernel_pid(self, page: Page) -> int:
        return int(self.wait_output(page, r"KERNEL_PID (\d+)").group(1))

    def shutdown_kernels(self) -> None:
        try:
            self.lab.shutdown_kernels()
        except Exception:  # the server may be gone already; stop() kills what is left
            pass
        time.sleep(1.0)
