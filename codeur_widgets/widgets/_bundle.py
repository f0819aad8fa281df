"""Locating the built JS bundles (``codeur_widgets/static/<name>.js``).

The bundles are build output (npm + esbuild, see ``js/``), not committed. A widget reads its
bundle when it is created, so a missing build is reported as a clear :class:`FileNotFoundError`
that says how to fix it, instead of a blank output area in the browser.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, overload

__all__ = ["STATIC_DIR", "Bundle", "bundle_path", "read_bundle"]

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
"""Where the build puts the bundles (package data in wheels)."""

# path -> (mtime_ns, text): re-read only after a rebuild, so creating many widgets stays cheap.
_cache: dict[Path, tuple[int, str]] = {}


def bundle_path(name: str) -> Path:
    """The path of ``static/<name>.js``; a :class:`FileNotFoundError` says how to build it."""
    path = STATIC_DIR / f"{name}.js"
    if not path.is_file():
        raise FileNotFoundError(
            f"codeur_widgets/static/{name}.js is missing; build it with 'make js' "
            "(npm + esbuild) or reinstall the package"
        )
    return path


def read_bundle(name: str) -> str:
    """The text of ``static/<name>.js`` (cached until the file changes)."""
    path = bundle_path(name)
    mtime = path.stat().st_mtime_ns
    hit = _cache.get(path)
    if hit is None or hit[0] != mtime:
        hit = _cache[path] = (mtime, path.read_text(encoding="utf-8"))
    return hit[1]


class Bundle:
    """Descriptor for an anywidget ``_esm``: the bundle's text, read when a widget is created.

    A plain ``_esm = Path(...)`` would be resolved when the class is defined, so a missing build
    would break ``import codeur_widgets.widgets`` with a less helpful message.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> Bundle: ...

    @overload
    def __get__(self, obj: object, objtype: type | None = None) -> str: ...

    def __get__(self, obj: Any, objtype: type | None = None) -> Bundle | str:
        if obj is None:
            return self  # class access, e.g. anywidget's __init_subclass__ probing for files
        return read_bundle(self.name)

    def __repr__(self) -> str:
        return f"Bundle({self.name!r})"
