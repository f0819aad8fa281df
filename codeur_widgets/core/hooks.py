"""Named hooks that optional packages plug into the core without the core importing them.

``Hub.instrument_otel()`` is the first user: the core cannot import ``codeur_widgets.otel`` (that
would tie the pure core to the OpenTelemetry SDK), so the method asks this registry for the
``instrument_otel`` hook, which ``pyproject.toml`` declares in the ``codeur_widgets.hooks``
entry-point group::

    [project.entry-points."codeur_widgets.hooks"]
    instrument_otel = "codeur_widgets.otel:instrument"

Entry points are read once, on the first name not registered by a call, and the hook's module is
imported only when the hook is first asked for. :func:`register_hook` overrides (tests, users).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

__all__ = ["ENTRY_POINT_GROUP", "get_hook", "register_hook"]

ENTRY_POINT_GROUP = "codeur_widgets.hooks"

_hooks: dict[str, Callable[..., Any]] = {}
_entry_points: dict[str, Any] | None = None
_lock = threading.Lock()


def register_hook(name: str, hook: Callable[..., Any]) -> None:
    """Make :func:`get_hook` return ``hook`` for ``name`` (replaces an earlier one)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a hook name must be a non-empty string, got {name!r}")
    if not callable(hook):
        raise TypeError(f"a hook must be callable, got {type(hook).__name__}")
    with _lock:
        _hooks[name] = hook


def get_hook(name: str, install_hint: str = "") -> Callable[..., Any]:
    """The hook registered for ``name`` by a call or an entry point.

    Raises :class:`LookupError` when none is declared; an :class:`ImportError` from loading the
    hook's module (a missing optional dependency) propagates, with ``install_hint`` appended.
    """
    global _entry_points
    with _lock:
        hook = _hooks.get(name)
        if hook is not None:
            return hook
        if _entry_points is None:
            _entry_points = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
        ep = _entry_points.get(name)
    if ep is None:
        raise LookupError(
            f"no {name!r} hook is installed (entry-point group {ENTRY_POINT_GROUP!r})"
            + (f": {install_hint}" if install_hint else "")
        )
    try:
        loaded: Callable[..., Any] = ep.load()
    except ImportError as exc:
        raise ImportError(f"{exc}" + (f" ({install_hint})" if install_hint else "")) from exc
    with _lock:
        _hooks.setdefault(name, loaded)
        return _hooks[name]
