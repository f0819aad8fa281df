"""Driving JupyterLab (and Voila) pages with Playwright's sync API, the way a person would.

Everything here waits with an explicit timeout, so a broken page fails a test instead of
hanging it.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .servers import JupyterProcess

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, WebSocket

#: Debian's Chromium; CODEUR_E2E_CHROMIUM points elsewhere (another distribution's path).
CHROMIUM = os.environ.get("CODEUR_E2E_CHROMIUM", "/usr/bin/chromium")
#: Its flags for tests and benchmarks: headless, sandbox-free (root in CI), no network chatter.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: Where screenshots go (gitignored), for a person to look at after a run.
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"

#: ``make images`` sets this to ``docs/images``: the screenshot tests then also write the
#: README's pictures there (``readme_image``).
IMAGES_ENV = "CODEUR_IMAGES"
#: The most a README picture may weigh.
IMAGE_MAX_BYTES = 300_000

#: Default Playwright timeout for one action or wait, in milliseconds.
ACTION_TIMEOUT_MS = 30_000
#: Time allowed for "Run All Cells" to finish (kernel start included), in milliseconds.
RUN_ALL_TIMEOUT_MS = 90_000

#: A laptop-sized window.
VIEWPORT = {"width": 1440, "height": 1000}
#: Tall enough for the whole dashboard (and the notebook's intro) in one screenshot.
TALL_VIEWPORT = {"width": 1440, "height": 2000}

#: The notebook in the active tab (inactive dock tabs are hidden with ``lm-mod-hidden``).
CURRENT_NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook"

THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}

_KERNEL_READY_JS = """
() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  const indicator = panel?.querySelector('.jp-Notebook-ExecutionIndicator');
  if (!indicator || indicator.getAttribute('data-status') !== 'idle') return false;
  return [...document.querySelectorAll('.jp-StatusBar-TextItem')].some((el) => {
    const t = el.textContent.trim();
    return t.endsWith('| Idle') && !t.startsWith('No Kernel');
  });
}
"""

# Run All has finished (or stopped at an error) once the kernel is idle, no cell is queued or
# running ("[*]:") and the first code cell has an execution count. Returns the index of the
# first code cell with source that did not run (-1 when all ran) as ``{notRun}``, or null while
# still running.
_RUN_ALL_DONE_JS = """
() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  const indicator = panel?.querySelector('.jp-Notebook-ExecutionIndicator');
  if (!indicator || indicator.getAttribute('data-status') !== 'idle') return null;
  const cells = [...panel.querySelectorAll('.jp-Notebook .jp-CodeCell')];
  const prompts = cells.map((c) => c.querySelector('.jp-InputArea-prompt')?.textContent ?? '');
  if (cells.length === 0 || prompts.some((p) => p.includes('*'))) return null;
  if (!/\\[\\d+\\]/.test(prompts[0])) return null;
  const notRun = cells.findIndex((cell, i) => {
    const source = cell.querySelector('.jp-InputArea-editor')?.textContent.trim() ?? '';
    return source !== '' && !/\\[\\d+\\]/.test(prompts[i]);
  });
  return {notRun};  // an object: wait_for_function waits for a truthy value
}
"""


@contextmanager
def new_page(browser: Browser, viewport: dict[str, int] | None = None) -> Iterator[Page]:
    """A page in a fresh browser context (no cookies or storage shared), closed on exit.

    Console errors and uncaught page errors are collected in ``page.console_errors`` so a test
    can show them when a widget fails to render.
    """
    context = browser.new_context(viewport=viewport or VIEWPORT)  # type: ignore[arg-type]
    try:
        page = context.new_page()
        page.set_default_timeout(ACTION_TIMEOUT_MS)
        errors: list[str] = []
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
        page.console_errors = errors  # type: ignore[attr-defined]
        yield page
    finally:
        context.close()


def screenshot(page: Page, name: str) -> Path:
    """Save a full-window screenshot as ``artifacts/screenshots/<name>.png``; returns the path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def readme_image(page: Page, selector: str, name: str) -> Path | None:
    """When ``CODEUR_IMAGES`` names a folder (``make images``), save the element ``selector``
    as ``<folder>/<name>.png``, a palette PNG of at most ``IMAGE_MAX_BYTES``; else do nothing.

    The element is scrolled to the top of its scrolling container first, so a tall dashboard in
    a tall window is captured whole.
    """
    folder = os.environ.get(IMAGES_ENV)
    if not folder:
        return None
    from io import BytesIO

    from PIL import Image

    target = Path(folder).resolve() / f"{name}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    element = page.locator(selector).first
    element.evaluate("(el) => el.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)
    raw = Image.open(BytesIO(element.screenshot(animations="disabled"))).convert("RGB")
    for colours in (256, 128, 64):
        # A UI picture has few colours: a palette PNG is a fraction of the size, and looks the same.
        small = raw.quantize(
            colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
        buffer = BytesIO()
        small.save(buffer, format="PNG", optimize=True)
        if buffer.tell() <= IMAGE_MAX_BYTES:
            break
    target.write_bytes(buffer.getvalue())
    assert target.stat().st_size <= IMAGE_MAX_BYTES, (target, target.stat().st_size)
    return target


def open_notebook(page: Page, server: JupyterProcess, name: str) -> None:
    """Open ``name`` (relative to the server root) in JupyterLab and wait for its kernel."""
    page.set_default_timeout(ACTION_TIMEOUT_MS)
    # ``reset``: start from an empty workspace, not the layout a previous test left behind (its
    # notebooks would be restored next to this one).
    page.goto(server.url(f"lab/tree/{name}?reset"), wait_until="domcontentloaded")
    page.locator(CURRENT_NOTEBOOK).wait_for(state="visible", timeout=RUN_ALL_TIMEOUT_MS)
    # Opening the notebook starts its kernel. The execution indicator alone is not enough: it
    # reads "idle" before the session exists ("No Kernel | Initializing"), and a Run All then
    # does nothing. Wait for the status bar's "<kernel name> | Idle" as well.
    page.wait_for_function(_KERNEL_READY_JS, timeout=RUN_ALL_TIMEOUT_MS, polling=200)


# Notebook 7 has no status bar: its kernel is ready once the toolbar names the kernel (not "No
# Kernel") and the execution indicator is idle.
_NOTEBOOK7_READY_JS = """
() => {
  const indicator = document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator');
  if (!indicator || indicator.getAttribute('data-status') !== 'idle') return false;
  return [...document.querySelectorAll('.jp-KernelName, .jp-Toolbar-kernelName')].some((el) => {
    const t = el.textContent.trim();
    return t !== '' && !t.startsWith('No Kernel');
  });
}
"""


def open_notebook7(page: Page, server: JupyterProcess, name: str) -> None:
    """Open ``name`` in Notebook 7 (``/notebooks/<name>``) and wait for its kernel."""
    page.set_default_timeout(ACTION_TIMEOUT_MS)
    page.goto(server.url(f"notebooks/{name}"), wait_until="domcontentloaded")
    page.locator(CURRENT_NOTEBOOK).wait_for(state="visible", timeout=RUN_ALL_TIMEOUT_MS)
    # The toolbar may name the kernel from the notebook's metadata before the session exists:
    # the server's own list of sessions says when the kernel is really there and idle.
    deadline = time.monotonic() + RUN_ALL_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        sessions = server.api("GET", "sessions")
        if any(
            str(s.get("path", "")).endswith(name)
            and (s.get("kernel") or {}).get("execution_state") == "idle"
            for s in sessions
        ):
            break
        page.wait_for_timeout(250)
    page.wait_for_function(_NOTEBOOK7_READY_JS, timeout=RUN_ALL_TIMEOUT_MS, polling=200)


def click_menu(page: Page, *path: str) -> None:
    """Click through Lab's main menu, e.g. ``click_menu(page, "Run", "Run All Cells")``.

    Intermediate items open submenus by hover, as with a mouse.
    """
    menubar = page.locator("#jp-MainMenu")
    menubar.locator(".lm-MenuBar-item", has_text=re.compile(rf"^{re.escape(path[0])}$")).click()
    for i, label in enumerate(path[1:], start=1):
        item = page.locator(".lm-Menu:visible .lm-Menu-item").filter(
            has=page.locator(".lm-Menu-itemLabel", has_text=re.compile(rf"^{re.escape(label)}$"))
        )
        if i < len(path) - 1:
            item.first.hover()
        else:
            item.first.click()


def hide_left_sidebar(page: Page) -> None:
    """Collapse the file browser ("View" → "Appearance" → "Show Left Sidebar") for screenshots."""
    if page.locator("#jp-left-stack").is_visible():
        click_menu(page, "View", "Appearance", "Show Left Sidebar")
        page.locator("#jp-left-stack").wait_for(state="hidden", timeout=ACTION_TIMEOUT_MS)


def run_all_cells(page: Page, timeout_ms: int = RUN_ALL_TIMEOUT_MS) -> None:
    """Run every cell via "Run" → "Run All Cells" and wait until all have run.

    Raises ``AssertionError`` with the failing cell's output when a cell raised (Lab then stops
    and leaves the cells after it unexecuted).
    """
    click_menu(page, "Run", "Run All Cells")
    handle = page.wait_for_function(_RUN_ALL_DONE_JS, timeout=timeout_ms, polling=200)
    first_not_run = int(handle.json_value()["notRun"])
    if first_not_run >= 0:
        cells = page.locator(f"{CURRENT_NOTEBOOK} .jp-CodeCell")
        failed = cells.nth(max(first_not_run - 1, 0)).locator(".jp-OutputArea").inner_text()
        raise AssertionError(
            f"Run All stopped before code cell {first_not_run}; the cell before it output:\n"
            f"{failed[-3000:]}"
        )


def set_theme(page: Page, theme: str) -> None:
    """Switch Lab's theme via "Settings" → "Theme" (``theme``: "light" or "dark")."""
    from playwright.sync_api import expect

    label = THEMES[theme]
    click_menu(page, "Settings", "Theme", label)
    expect(page.locator("body")).to_have_attribute(
        "data-jp-theme-name", label, timeout=ACTION_TIMEOUT_MS
    )
    # Theme CSS loads asynchronously after the attribute flips; let the page repaint.
    page.wait_for_timeout(500)


@dataclass
class KernelFrame:
    """One Jupyter message the browser received from a kernel websocket."""

    at: float  # time.monotonic() when Playwright saw it
    channel: str
    msg_type: str


@dataclass
class KernelTraffic:
    """Records every kernel message a page receives over its websockets (``watch(page)``), so a
    test can count the comm messages that really reached the browser."""

    frames: list[KernelFrame] = field(default_factory=list)

    def watch(self, page: Page) -> KernelTraffic:
        def on_socket(ws: WebSocket) -> None:
            if "/api/kernels/" in ws.url:
                ws.on("framereceived", self._record)

        page.on("websocket", on_socket)
        return self

    def _record(self, payload: str | bytes) -> None:
        parsed = parse_ws_message(payload)
        if parsed is not None:
            self.frames.append(KernelFrame(time.monotonic(), *parsed))

    def of_type(self, msg_type: str, start: float = 0.0, end: float = float("inf")) -> int:
        """How many ``msg_type`` messages arrived between ``start`` and ``end``."""
        return sum(1 for f in self.frames if f.msg_type == msg_type and start <= f.at <= end)

    def first(self, msg_type: str, nth: int = 0) -> float:
        """Arrival time of the ``nth`` (0-based) ``msg_type`` message."""
        times = [f.at for f in self.frames if f.msg_type == msg_type]
        return times[nth]

    def busiest_second(self, msg_type: str, start: float, end: float) -> int:
        """The most ``msg_type`` messages that arrived within any one second of the interval."""
        times = sorted(f.at for f in self.frames if f.msg_type == msg_type and start <= f.at <= end)
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while t - times[lo] > 1.0:
                lo += 1
            best = max(best, hi - lo + 1)
        return best


def parse_ws_message(payload: str | bytes) -> tuple[str, str] | None:
    """``(channel, msg_type)`` of a kernel websocket message, in either wire format: JSON text
    (the legacy protocol) or ``v1.kernel.websocket.jupyter.org`` binary frames (a count of
    offsets, the little-endian uint64 offsets, then channel, header, ... at those offsets)."""
    try:
        if isinstance(payload, str):
            msg = json.loads(payload)
            return str(msg.get("channel", "")), str(msg["header"]["msg_type"])
        count = int.from_bytes(payload[:8], "little")
        words = [payload[8 * (i + 1) : 8 * (i + 2)] for i in range(count)]
        offsets = [int.from_bytes(word, "little") for word in words]
        channel = payload[offsets[0] : offsets[1]].decode()
        header = json.loads(payload[offsets[1] : offsets[2]])
        return channel, str(header["msg_type"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None
