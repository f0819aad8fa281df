"""The built-in simulator of Codeur jobs."""

from .simulator import DEFAULT_AGENTS, Simulator

__all__ = ["DEFAULT_AGENTS", "Simulator"]
