"""Admin actions on a hub, each one an ``admin.command`` event (the audit trail).

The dashboard's controls call :class:`Admin`; so can a script. Every action is published as an
``admin.command`` event before it takes effect, so it shows in the log tail (source ``admin``), is
stored in history, and a rebuilt past state replays it: forgetting an agent, marking it offline or
resetting counters are folded into the agent registry *from the event*, not by a side door.

Commands aimed at an agent (``pause``, ``resume``, ``cancel``, ``restart``) reach the agent's
code through :meth:`AgentHandle.on_command`; the simulator's agents obey them.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .events import Event

if TYPE_CHECKING:
    from .hub import Hub

__all__ = [
    "AGENT_COMMANDS",
    "REGISTRY_COMMANDS",
    "SAMPLE_INTERVALS",
    "SIMULATOR_SPEEDS",
    "Admin",
    "AdminError",
    "SimulatorControl",
]

AGENT_COMMANDS = ("pause", "resume", "cancel", "restart")
"""Commands delivered to an agent through its handle's ``on_command`` handlers."""

REGISTRY_COMMANDS = ("mark_offline", "forget", "reset_counters")
"""Commands the agent registry folds in itself (so history replays them)."""

SAMPLE_INTERVALS = (0.5, 1.0, 2.0, 5.0, 10.0)
"""System sampling intervals (seconds) the dashboard offers; any value in [0.1, 60] is valid."""

SIMULATOR_SPEEDS = (1.0, 2.0, 5.0, 10.0, 30.0)
"""Simulator time scales the dashboard offers; any value in (0, 1000] is valid."""


@runtime_checkable
class SimulatorControl(Protocol):
    """What the admin controls need of a simulator (``codeur_widgets.Simulator`` implements it).

    The core depends on this protocol, not on the simulator, so that ``core`` never imports
    ``sim``; any driver of fake or real agents with these members can be attached.
    """

    time_scale: float

    @property
    def running(self) -> bool: ...

    def start(self, jobs_per_minute: float = 30.0, concurrency: int = 2) -> Any: ...

    def stop(self) -> Any: ...


class AdminError(ValueError):
    """An admin action that cannot be carried out; the message says why."""


class Admin:
    """Carry out admin actions on ``hub`` (and an attached simulator), auditing each one.

    Args:
        hub: the hub to act on.
        simulator: a :class:`SimulatorControl` (e.g. :class:`~codeur_widgets.Simulator`) that
            the controls may start, stop and speed up.
        origin: who acts, recorded in every event (``"dashboard"``, a user name, a script).
    """

    def __init__(
        self, hub: Hub, simulator: SimulatorControl | None = None, *, origin: str = "dashboard"
    ) -> None:
        self.hub = hub
        self.simulator = simulator
        self.origin = origin

    # -- the audit trail -----------------------------------------------------------------------
    def record(self, command: str, agent: str | None = None, **args: Any) -> Event:
        """Publish ``admin.command`` for ``command`` (on ``agent``) with ``args``; returns it."""
        data = {"command": command, "args": args, "origin": self.origin}
        return self.hub.publish("admin.command", agent, data=data)

    # -- per agent -----------------------------------------------------------------------------
    def send(self, agent: str, command: str, **args: Any) -> Event:
        """Send ``command`` (one of :data:`AGENT_COMMANDS`) to ``agent``'s handle."""
        if command not in AGENT_COMMANDS:
            raise AdminError(f"unknown agent command {command!r}; expected one of {AGENT_COMMANDS}")
        self._known(agent)
        return self.record(command, agent, **args)

    def mark_offline(self, agent: str) -> Event:
        """Show ``agent`` as offline until its next sign of life."""
        self._known(agent)
        return self.record("mark_offline", agent)

    def forget(self, agent: str) -> Event:
        """Remove ``agent``'s card and counters (it comes back with its next event)."""
        self._known(agent)
        return self.record("forget", agent)

    def reset_counters(self) -> Event:
        """Zero every agent's task, token, cost and error counters."""
        return self.record("reset_counters")

    def _known(self, agent: str) -> None:
        if not isinstance(agent, str) or agent not in self.hub.agents:
            known = ", ".join(self.hub.agents.names()) or "none"
            raise AdminError(f"unknown agent {agent!r}; known agents: {known}")

    # -- the hub -------------------------------------------------------------------------------
    def set_sample_interval(self, seconds: float) -> Event:
        """Sample CPU, memory and GPUs every ``seconds`` (0.1 to 60) from the next sample on."""
        value = _number("sample interval", seconds)
        if not 0.1 <= value <= 60.0:
            raise AdminError(f"sample interval must be between 0.1 and 60 seconds, got {value}")
        event = self.record("sample_interval", seconds=value)
        self.hub.sample_interval = value
        self.hub.system.interval = value
        return event

    # -- the simulator -------------------------------------------------------------------------
    def start_simulator(self, jobs_per_minute: float = 30.0, concurrency: int = 2) -> Event:
        """Start the attached simulator's background jobs (needs the running loop)."""
        sim = self._simulator()
        event = self.record(
            "simulator.start", jobs_per_minute=jobs_per_minute, concurrency=concurrency
        )
        sim.start(jobs_per_minute=jobs_per_minute, concurrency=concurrency)
        return event

    def stop_simulator(self) -> Event:
        """Stop the attached simulator (jobs in flight are cancelled)."""
        sim = self._simulator()
        event = self.record("simulator.stop")
        sim.stop()
        return event

    def set_simulator_speed(self, time_scale: float) -> Event:
        """Run the attached simulator ``time_scale`` times faster than real time (0 to 1000)."""
        sim = self._simulator()
        value = _number("simulator speed", time_scale)
        if not 0.0 < value <= 1000.0:
            raise AdminError(f"simulator speed must be > 0 and <= 1000, got {value}")
        event = self.record("simulator.speed", time_scale=value)
        sim.time_scale = value
        return event

    def _simulator(self) -> SimulatorControl:
        if self.simulator is None:
            raise AdminError("no simulator is attached to this dashboard")
        return self.simulator

    # -- reading -------------------------------------------------------------------------------
    def snapshot_json(self) -> str:
        """Everything the dashboard shows, as one JSON document (for a download)."""
        self.record("snapshot")
        return json.dumps(self.hub.snapshot(), indent=1, sort_keys=True, default=str)


def _number(what: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise AdminError(f"{what} must be a finite number, got {value!r}")
    return float(value)
