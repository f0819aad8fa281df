"""LogTail: the newest log lines, filtered in Python over the whole ``logs`` buffer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import traitlets

from ._base import Frame, HubWidget
from ._bundle import Bundle

__all__ = ["MAX_LINES", "LogTail"]

MAX_LINES = 200
"""Lines sent to the browser at most (the DOM stays small whatever the buffer holds)."""


class LogTail(HubWidget):
    """The newest matching log lines with level colours, a filter and pause/resume.

    The filter traits (``level``: minimum level or ``""``; ``source``: exact source or ``""``;
    ``text``: substring, or a regular expression when ``regex``) are edited in the browser and
    applied here by ``hub.logs`` over the whole buffer; only the newest ``limit`` (≤ 200) matching
    lines are sent, cut to stay under 64 KB. While ``follow`` is false (paused) the lines on screen
    stay as they are and only the counters move.

    ``LogTail(hub)``; ``LogTail()`` watches :func:`codeur_widgets.default_hub`.
    """

    _esm = Bundle("log_tail")
    _stores = ("logs",)

    lines: traitlets.List[dict[str, Any]] = traitlets.List(
        help="newest matching lines, oldest first"
    ).tag(sync=True)
    total = traitlets.Int(0, help="lines ever received").tag(sync=True)
    dropped = traitlets.Int(0, help="lines rotated out of the buffer").tag(sync=True)
    capacity = traitlets.Int(0, help="lines the buffer keeps").tag(sync=True)
    error = traitlets.Unicode("", help="why the filter is invalid, '' if it is valid").tag(
        sync=True
    )

    level = traitlets.Unicode("", help="minimum level (DEBUG … CRITICAL) or '' for all").tag(
        sync=True
    )
    source = traitlets.Unicode("", help="only lines from this source, '' for all").tag(sync=True)
    text = traitlets.Unicode("", help="substring (case-insensitive) or regex to search").tag(
        sync=True
    )
    regex = traitlets.Bool(False, help="treat `text` as a regular expression").tag(sync=True)
    follow = traitlets.Bool(True, help="keep showing new lines (false: paused)").tag(sync=True)
    limit = traitlets.Int(MAX_LINES, help=f"lines to show (1 to {MAX_LINES})").tag(sync=True)
    height = traitlets.Int(320, help="height of the line area in pixels").tag(sync=True)

    @traitlets.validate("limit")
    def _valid_limit(self, proposal: Any) -> int:
        return max(1, min(MAX_LINES, int(proposal["value"])))

    def _state(
        self, frame: Frame, traits: Mapping[str, Any], *, initial: bool = False
    ) -> dict[str, Any]:
        logs = frame["logs"]
        state: dict[str, Any] = {
            "total": logs["total"],
            "dropped": logs["dropped"],
            "capacity": logs["capacity"],
        }
        if initial or self._trait(traits, "follow"):
            state.update(self._query(logs, traits))
        return state

    def _query(self, logs: Mapping[str, Any], traits: Mapping[str, Any]) -> dict[str, Any]:
        """Lines for the current filter: the shared snapshot when unfiltered, else a query."""
        level = self._trait(traits, "level") or None
        source = self._trait(traits, "source") or None
        text = self._trait(traits, "text") or None
        regex = bool(self._trait(traits, "regex"))
        limit = self._trait(traits, "limit")
        if "limit" in traits:
            limit = max(1, min(MAX_LINES, int(limit)))
        if level is None and source is None and text is None and limit == MAX_LINES:
            return {"lines": logs["lines"], "error": ""}  # the tick's snapshot is this very view
        try:
            snap = self._hub.logs.snapshot(
                limit, level=level, source=source, text=text, regex=regex
            )
        except ValueError as exc:  # a bad regex or level typed by the user: say so, keep going
            return {"lines": [], "error": str(exc)}
        return {"lines": snap["lines"], "error": ""}

    @traitlets.observe("level", "source", "text", "regex", "limit", "follow")
    def _filter_changed(self, change: Any) -> None:
        # A user action: answer at once (one message) instead of waiting for the next change.
        if self.closed or (change["name"] == "follow" and not change["new"]):
            return
        logs = self._hub.logs.snapshot()
        with self.hold_sync():
            for name, value in self._state({"logs": logs}, {}).items():
                setattr(self, name, value)
