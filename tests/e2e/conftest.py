"""Fixtures for real-browser tests: one JupyterLab server and one Chromium for this folder, a
Voila or Notebook 7 server per module that needs one (starting each costs seconds), a fresh
browser context and page per test.

Missing real components (Debian's Chromium, JupyterLab, Voila) skip these tests on a developer
machine and fail them under ``CI=true`` (``require``, in tests/conftest.py).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .lab import CHROMIUM, CHROMIUM_ARGS, TALL_VIEWPORT, new_page
from .servers import LabServer, NotebookServer, VoilaServer

if TYPE_CHECKING:
    # Imported lazily at run time, so a missing Playwright is reported by ``require``.
    from playwright.sync_api import Browser, Page

Require = Callable[..., None]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test in this folder ``e2e`` (``-m "not e2e"`` deselects them)."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


def _has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


@pytest.fixture(scope="package")
def lab(require: Require, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """A running JupyterLab server (default rate limits); copy notebooks into ``lab.root``."""
    require("JupyterLab", _has_module("jupyterlab"), "pip install jupyterlab")
    server = LabServer(tmp_path_factory.mktemp("lab"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def notebook7(
    require: Require, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NotebookServer]:
    """A running Notebook 7 server (``jupyter notebook``, default rate limits), one per module."""
    require("Notebook 7", _has_module("notebook"), "pip install notebook")
    server = NotebookServer(tmp_path_factory.mktemp("notebook7"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def voila(require: Require, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoilaServer]:
    """A running Voila server rendering notebooks copied into ``voila.root``.

    One per test module: stopping it also stops the kernels its pages started (a demo's
    simulator would otherwise keep using CPU during later tests).
    """
    require("Voila", _has_module("voila"), "pip install voila")
    server = VoilaServer(tmp_path_factory.mktemp("voila"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="package")
def browser(require: Require) -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright (never ``playwright install``).

    Package-scoped, not session-scoped: while Playwright's sync API is active it leaves an
    asyncio loop marked as running in this thread, so tests that run after this folder (and
    call ``asyncio.run``) must not see it.
    """
    require(
        "Chromium",
        os.access(CHROMIUM, os.X_OK),
        f"{CHROMIUM} not found (apt-get install chromium)",
    )
    require("Playwright", _has_module("playwright"), "pip install playwright")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A new page in a fresh browser context (see ``lab.new_page``)."""
    with new_page(browser) as pg:
        yield pg


@pytest.fixture
def tall_page(browser: Browser) -> Iterator[Page]:
    """Like ``page``, in a window tall enough to screenshot a whole dashboard."""
    with new_page(browser, TALL_VIEWPORT) as pg:
        yield pg
