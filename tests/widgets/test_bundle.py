"""A missing JS bundle is a clear error that says how to build it."""

from __future__ import annotations

from pathlib import Path

import pytest

from codeur_widgets.core.hub import Hub
from codeur_widgets.widgets import _bundle
from codeur_widgets.widgets.agent_cards import AgentCards
from codeur_widgets.widgets.dashboard import Dashboard


def test_read_bundle_reads_the_built_file() -> None:
    text = _bundle.read_bundle("agent_cards")
    assert "export" in text
    assert _bundle.read_bundle("agent_cards") is text  # cached until the file changes


def test_missing_bundle_says_how_to_build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(_bundle, "STATIC_DIR", tmp_path)
    with pytest.raises(FileNotFoundError) as err:
        _bundle.bundle_path("agent_cards")
    message = str(err.value)
    assert "codeur_widgets/static/agent_cards.js is missing" in message
    assert "make js" in message
    assert "reinstall" in message


def test_widget_creation_fails_clearly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, hub: Hub
) -> None:
    monkeypatch.setattr(_bundle, "STATIC_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"static/agent_cards\.js is missing.*make js"):
        AgentCards(hub)
    assert hub.watches == []  # nothing half-registered
    with pytest.raises(FileNotFoundError, match=r"is missing"):
        Dashboard(hub)


def test_class_definition_reads_nothing() -> None:
    # _esm is a descriptor read when a widget is created, so importing never needs the build.
    assert isinstance(AgentCards.__dict__["_esm"], _bundle.Bundle)
    assert AgentCards._esm.name == "agent_cards"


def test_dashboard_cleans_up_when_a_later_panel_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, hub: Hub
) -> None:
    # Only some bundles exist: the panels created before the failure must be detached again.
    for name in ("dashboard", "dashboard_controls", "agent_cards"):
        (tmp_path / f"{name}.js").write_text(_bundle.read_bundle(name))
    monkeypatch.setattr(_bundle, "STATIC_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"agent_graph\.js is missing"):
        Dashboard(hub)
    assert hub.watches == []


def test_rebuilt_bundle_is_picked_up(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(_bundle, "STATIC_DIR", tmp_path)
    path = tmp_path / "x.js"
    path.write_text("export default {}; // 1")
    assert _bundle.read_bundle("x").endswith("1")
    path.write_text("export default {}; // 22")
    import os

    os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)
    assert _bundle.read_bundle("x").endswith("22")
