"""AlertsPanel and the header's alert count, without a browser: requests as the page sends them,
what the panel shows, the audit trail, and bad input answered with nothing changed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from codeur_widgets.core.alerts import Rule
from codeur_widgets.core.clock import FakeClock
from codeur_widgets.core.hub import Hub
from codeur_widgets.widgets.alerts_panel import AlertsPanel
from codeur_widgets.widgets.dashboard import Dashboard, DashboardHeader

from .conftest import CommSpy

FORM = {
    "name": "coder budget",
    "metric": "cost_usd",
    "scope": "agent:coding_agent",
    "op": "above",
    "threshold": "1",
    "window": "60",
    "for": "",
    "severity": "critical",
    "action": "pause",
}


def from_page(widget: AlertsPanel, **request: Any) -> dict[str, Any]:
    msg = {"content": {"data": {"method": "custom", "content": request}}, "buffers": []}
    widget._handle_msg(msg)
    return dict(widget.status)


def test_a_rule_added_from_the_form_fires_and_is_acknowledged(
    hub: Hub, clock: FakeClock, spy: CommSpy
) -> None:
    panel = AlertsPanel(hub)
    header = DashboardHeader(hub)
    assert {m["name"] for m in panel.options["metrics"]} >= {"cost_usd", "errors", "dropped"}
    assert header.alerts == {"firing": 0, "unacked": 0, "severity": None}
    coder = hub.agent("coding_agent")
    got: list[str] = []
    coder.on_command(lambda command, args: got.append(command))

    status = from_page(panel, action="add_rule", rule=FORM)
    assert status == {
        "text": "rule 'coder budget' added: cost_usd > 1 over 1 min (agent:coding_agent)",
        "level": "ok",
    }
    assert "coder budget" in [r["name"] for r in panel.data["rules"]]
    coder.tokens(prompt=10, completion=10, cost_usd=2.0)
    hub.alerts.evaluate()
    hub.render_now(1.0)
    [alert] = panel.data["firing"]
    assert (alert["rule"], alert["scope"], alert["value"], alert["threshold"]) == (
        "coder budget", "agent:coding_agent", 2.0, 1.0,
    )  # fmt: skip
    assert got == ["pause"]
    assert header.alerts == {"firing": 1, "unacked": 1, "severity": "critical"}

    status = from_page(panel, action="ack", id=alert["id"])
    assert status == {"text": "acknowledged coder budget@agent:coding_agent", "level": "ok"}
    assert panel.data["firing"][0]["acked"] is True
    hub.render_now(3.0)
    assert header.alerts == {"firing": 1, "unacked": 0, "severity": None}
    audit = [r["message"] for r in hub.logs.query(source="admin")]
    assert audit[0] == (
        "admin.command: alerts.add rule=coder budget "
        "condition=cost_usd > 1 over 1 min (by dashboard)"
    )
    panel.close()
    header.close()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"threshold": "lots"}, "threshold must be a number, got 'lots'"),
        ({"threshold": ""}, "threshold is required"),
        ({"metric": "vibes"}, "unknown metric 'vibes'"),
        ({"window": "-60"}, "window must be > 0 seconds"),
        ({"scope": "agent"}, "scope 'agent' is not understood"),
        ({"scope": "hub"}, "action 'pause' needs an agent"),
        ({"name": ""}, "name must be a non-empty string"),
        ({"action": "format_disk"}, "unknown action 'format_disk'"),
    ],
)
def test_bad_input_is_answered_and_changes_nothing(
    hub: Hub, spy: CommSpy, change: dict[str, Any], reason: str
) -> None:
    panel = AlertsPanel(hub)
    before = [r["name"] for r in panel.data["rules"]]
    status = from_page(panel, action="add_rule", rule={**FORM, **change})
    assert status["level"] == "err" and reason in status["text"], status
    assert [r["name"] for r in panel.data["rules"]] == before
    assert hub.logs.query(source="admin") == []
    panel.close()


def test_other_requests_and_malformed_ones(hub: Hub, spy: CommSpy) -> None:
    panel = AlertsPanel(hub)
    assert from_page(panel, action="ack", id="nope@hub")["text"] == "no firing alert 'nope@hub'"
    assert from_page(panel, action="explode")["text"] == "unknown action 'explode'"
    msg = {"content": {"data": {"method": "custom", "content": ["x"]}}, "buffers": []}
    panel._handle_msg(msg)
    assert panel.status["level"] == "err"
    assert from_page(panel, action="remove_rule", name="loop lag")["level"] == "ok"
    assert "loop lag" not in [r["name"] for r in panel.data["rules"]]
    hub.alerts.add(Rule("flaky", metric=lambda: 1 / 0, above=1))
    for _ in range(3):
        hub.alerts.evaluate()
    hub.render_now(1.0)
    flaky = next(r for r in panel.data["rules"] if r["name"] == "flaky")
    assert flaky["state"] == "broken" and "ZeroDivisionError" in flaky["broken"]
    assert from_page(panel, action="enable_rule", name="flaky")["level"] == "ok"
    panel.close()


def test_the_dashboard_has_the_panel_and_a_past_range_is_read_only(
    tmp_path: Any, spy: CommSpy
) -> None:
    clock = FakeClock(1_732_500_000.0)
    hub = Hub(clock=clock, collect_system=False, history=str(tmp_path / "h.sqlite"))
    dash = Dashboard(hub)
    assert dash.alerts in dash.panels and dash.alerts in dash.views
    hub.alerts.add(Rule("r", metric=lambda: 2, above=1))
    hub.alerts.evaluate()
    clock.advance(5)
    dash.show_range(clock() - 60, clock())
    assert dash.alerts.live is False
    assert [a["id"] for a in dash.alerts.data["firing"]] == ["r@hub"]  # what was firing then
    status = from_page(dash.alerts, action="remove_rule", name="r")
    assert status["level"] == "err" and "past range" in status["text"]
    assert "r" in hub.alerts
    dash.show_live()
    assert dash.alerts.live is True
    dash.close()
    assert hub.history is not None
    hub.history.close()


def test_the_snapshot_stays_small_with_many_rules_and_alerts(hub: Hub, spy: CommSpy) -> None:
    for i in range(150):
        keys = {f"k{j}": 2 for j in range(5)}
        hub.alerts.add(Rule(f"rule {i:03d}", metric=lambda keys=keys: keys, above=1))
    for _ in range(3):  # functions that answer after a tick's short wait count on the next
        hub.alerts.evaluate()
    panel = AlertsPanel(hub)
    size = len(json.dumps(panel.data))
    assert len(hub.alerts.active()) == 750
    listed, omitted = len(panel.data["firing"]), panel.data["omitted"]
    assert listed > 20 and listed + omitted["firing"] == 750
    assert len(panel.data["rules"]) + omitted["rules"] == 156  # with the six defaults
    assert panel.data["rules"][0]["state"] == "firing"  # rules that need attention first
    assert size < 64_000, size
    panel.close()
