"""Hooks and late sources: how the core reaches optional packages without importing them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from codeur_widgets.core import hooks
from codeur_widgets.core.hub import Hub


def test_register_and_get_a_hook() -> None:
    calls: list[Any] = []
    hooks.register_hook("probe_hook", lambda *a, **k: calls.append((a, k)) or "done")
    assert hooks.get_hook("probe_hook")(1, x=2) == "done"
    assert calls == [((1,), {"x": 2})]


def test_unknown_hook_says_what_to_install() -> None:
    with pytest.raises(LookupError, match="pip install thing"):
        hooks.get_hook("no_such_hook_anywhere", "pip install thing")
    with pytest.raises(TypeError):
        hooks.register_hook("x", "not callable")  # type: ignore[arg-type]


def test_instrument_otel_is_declared_by_an_entry_point() -> None:
    from importlib.metadata import entry_points

    names = {ep.name: ep.value for ep in entry_points(group=hooks.ENTRY_POINT_GROUP)}
    assert names.get("instrument_otel") == "codeur_widgets.otel:instrument"


def test_hub_instrument_otel_calls_the_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []
    monkeypatch.setitem(hooks._hooks, "instrument_otel", lambda hub, **kw: seen.append(kw) or 7)
    hub = Hub(collect_system=False)
    assert hub.instrument_otel("provider", hold=3) == 7
    assert seen == [{"tracer_provider": "provider", "hold": 3}]


class _Source:
    def __init__(self) -> None:
        self.started = 0

    def start(self, hub: Hub) -> None:
        self.started += 1

    def stop(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    def health(self) -> dict[str, Any]:
        return {"source": "probe"}


def test_add_source_starts_it_when_the_hub_runs() -> None:
    async def main() -> None:
        hub = Hub(collect_system=False)
        early = hub.add_source(_Source())
        assert early.started == 0  # type: ignore[attr-defined]
        hub.start()
        assert early.started == 1  # type: ignore[attr-defined]
        late = hub.add_source(_Source())
        assert late.started == 1  # type: ignore[attr-defined]
        assert {"source": "probe"} in hub.health()["sources"]
        await hub.aclose()

    asyncio.run(main())
