"""AlertsPanel: firing and recently resolved alerts, acknowledge, and a form to add a rule.

Thin: the ``alerts`` store's snapshot is the ``data`` trait. The page sends requests
(``{action: "ack", id}``, ``{action: "add_rule", rule: {...}}``, ``{action: "remove_rule",
name}``, ``{action: "enable_rule", name}``); they are checked and carried out here through
``hub.alerts`` (rules built by :func:`~codeur_widgets.core.alerts.rule_from_dict`), each recorded
as an ``admin.command`` or ``alert.acknowledged`` event, and the outcome, or what was wrong,
comes back in ``status``. Bad input changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import traitlets

from ..core.admin import Admin
from ..core.alerts import METRICS, SEVERITIES, AlertError, RuleError, rule_from_dict
from ._base import Frame, HubWidget
from ._bundle import Bundle

if TYPE_CHECKING:
    from ..core.hub import Hub

__all__ = ["FORM_ACTIONS", "AlertsPanel"]

FORM_ACTIONS = ("show", "log", "pause", "cancel", "stop_simulator")
"""What the form offers to do when its rule fires."""


class AlertsPanel(HubWidget):
    """Firing alerts (severity, rule, scope, the value that crossed and the current one, the
    threshold, since when, acknowledge), recently resolved ones, the rules with their state
    (broken ones with the reason), and a form that adds a threshold rule.

    ``AlertsPanel(hub)``; ``AlertsPanel()`` watches :func:`codeur_widgets.default_hub`. In a
    :class:`~codeur_widgets.Dashboard` showing a past range, the panel shows the alerts of that
    time and refuses changes.
    """

    _esm = Bundle("alerts_panel")
    _stores = ("alerts",)
    _max_hz = 2.0

    data = traitlets.Dict(help="the hub's `alerts` snapshot").tag(sync=True)
    options = traitlets.Dict(help="metrics, severities and actions the form offers").tag(sync=True)
    status = traitlets.Dict(help="{text, level}: the outcome of the last request").tag(sync=True)
    live = traitlets.Bool(True, help="false while showing a past range").tag(sync=True)

    def __init__(self, hub: Hub | None = None, **kwargs: Any) -> None:
        super().__init__(hub, **kwargs)
        self._home = self._hub
        self.on_msg(self._on_request)

    def _state(
        self, frame: Frame, traits: Mapping[str, Any], *, initial: bool = False
    ) -> dict[str, Any]:
        state: dict[str, Any] = {"data": frame["alerts"]}
        if initial:
            state["options"] = {
                "metrics": [m.to_dict() for m in METRICS.values()],
                "severities": list(SEVERITIES),
                "actions": list(FORM_ACTIONS),
            }
        return state

    def rebind(self, hub: Hub) -> None:
        """Show ``hub`` (a past state, or live again); changes are refused while not live."""
        super().rebind(hub)
        self.live = hub is self._home

    # -- requests from the page ----------------------------------------------------------------
    def _on_request(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict) or not isinstance(content.get("action"), str):
            self._say("ignored a malformed request from the page", "err")
            return
        try:
            text = self.request(
                content["action"], **{k: v for k, v in content.items() if k != "action"}
            )
        except (RuleError, AlertError) as exc:
            self._say(str(exc), "err")
        except Exception as exc:  # the page's boundary: say what went wrong, keep working
            self._say(f"{type(exc).__name__}: {exc}", "err")
        else:
            self._say(text, "ok")
        self._on_frame({"alerts": self._hub.stores["alerts"].snapshot()})

    def request(self, action: str, **args: Any) -> str:
        """Carry out one request from the page; returns what happened, raises what was wrong.

        Actions: ``ack`` (``id``), ``add_rule`` (``rule``: the form's fields, see
        :func:`~codeur_widgets.core.alerts.rule_from_dict`), ``remove_rule`` and
        ``enable_rule`` (``name``).
        """
        if self._hub is not self._home:
            raise AlertError("this panel shows a past range: go back to live to change alerts")
        alerts = self._hub.alerts
        if action == "ack":
            alert_id = args.get("id")
            alerts.acknowledge(alert_id, by="dashboard")  # type: ignore[arg-type]
            return f"acknowledged {alert_id}"
        if action == "add_rule":
            rule = rule_from_dict(args.get("rule"))  # type: ignore[arg-type]
            alerts.add(rule)
            Admin(self._hub).record("alerts.add", rule=rule.name, condition=rule.condition())
            return f"rule {rule.name!r} added: {rule.condition()} ({rule.scope})"
        if action == "remove_rule":
            name = args.get("name")
            alerts.remove(name)  # type: ignore[arg-type]
            Admin(self._hub).record("alerts.remove", rule=name)
            return f"rule {name!r} removed"
        if action == "enable_rule":
            name = args.get("name")
            alerts.enable(name)  # type: ignore[arg-type]
            Admin(self._hub).record("alerts.enable", rule=name)
            return f"rule {name!r} enabled"
        raise AlertError(f"unknown action {action!r}")

    def _say(self, text: str, level: str) -> None:
        self.status = {"text": text, "level": level}
