"""LogTail: the newest log lines, filtered in Python over the whole ``logs`` buffer."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
    lines are shown, cut to stay under 64 KB. While ``follow`` is false (paused) the lines on screen
    stay as they are and only the counters move.

    ``lines`` holds the lines shown. The browser receives them through ``tail``: while following,
    a frame carries only the lines that are new since the previous one (an append: ``reset``
    false, the new ``lines``, and ``keep``, the window's length after appending); a new filter, a
    gap or a first view gets the whole window (``reset`` true). So a steady trickle of log lines
    costs a few hundred bytes a frame instead of the whole window.

    A line written inside a job's task or call carries its trace: clicking it sets
    ``open_trace`` (the dashboard then opens that trace in its :class:`TraceView`).

    ``LogTail(hub)``; ``LogTail()`` watches :func:`codeur_widgets.default_hub`.
    """

    _esm = Bundle("log_tail")
    _stores = ("logs",)

    lines: traitlets.List[dict[str, Any]] = traitlets.List(
        help="newest matching lines, oldest first (reaches the browser through `tail`)"
    )
    tail = traitlets.Dict(
        help="the browser's update of `lines`: {n, reset, lines, keep} (append or whole window)"
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
    open_trace = traitlets.Dict(
        help="set by the browser when a line's trace is clicked: {trace, n} (n: a new click)"
    ).tag(sync=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._tail_n = 0  # numbers `tail` messages: each one is a change the browser applies
        self._framing = False  # in a render tick's frame: appends allowed
        super().__init__(*args, **kwargs)

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
            query = self._query(logs, traits)
            window = query.pop("lines")
            state.update(query)
            if initial:
                state.update(lines=window, tail=self._tail(window))
            elif window != self.lines:
                appended = self._appended(self.lines, window) if self._framing else None
                if appended is None:
                    state["tail"] = self._tail(window)
                else:
                    state["tail"] = self._tail(appended, keep=len(window))
                state["lines"] = window
        return state

    def _tail(self, lines: list[dict[str, Any]], keep: int | None = None) -> dict[str, Any]:
        """The next ``tail`` message (numbered): see :func:`_tail_message`."""
        self._tail_n += 1
        return _tail_message(self._tail_n, lines, keep)

    @staticmethod
    def _appended(
        shown: list[dict[str, Any]], window: list[dict[str, Any]]
    ) -> list[dict[str, Any]] | None:
        """The lines to append to ``shown`` so that its last ``len(window)`` lines are
        ``window``, or None when ``window`` does not continue ``shown`` (a new filter, a gap,
        another hub) or nothing of ``shown`` would be kept (the whole window is new)."""
        if not shown or not window:
            return None
        last = shown[-1].get("seq")
        if not isinstance(last, int):
            return None
        i = len(window)
        while i > 0 and _seq(window[i - 1]) > last:
            i -= 1
        if i == 0 or i == len(window):
            return None
        # the kept part must be the end of what is shown, line for line
        if shown[-i:] != window[:i]:
            return None
        return window[i:]

    def _on_frame(self, frame: Frame) -> None:
        self._framing = True
        try:
            super()._on_frame(frame)
        finally:
            self._framing = False

    def get_state(
        self, key: str | Iterable[str] | None = None, drop_defaults: bool = False
    ) -> dict[str, Any]:
        """The synced state; the whole of it (a new or reloaded page) carries the whole window,
        never an append meant for a page that already had the lines before it."""
        state: dict[str, Any] = super().get_state(key, drop_defaults=drop_defaults)
        if key is None:
            state["tail"] = _tail_message(self._tail_n, list(self.lines))
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


def _tail_message(n: int, lines: list[dict[str, Any]], keep: int | None = None) -> dict[str, Any]:
    """A ``tail`` value: the whole window (``keep`` None: ``reset``), or ``lines`` to append,
    keeping the last ``keep`` lines."""
    if keep is None:
        return {"n": n, "reset": True, "lines": lines, "keep": len(lines)}
    return {"n": n, "reset": False, "lines": lines, "keep": keep}


def _seq(line: Mapping[str, Any]) -> int:
    seq = line.get("seq")
    return seq if isinstance(seq, int) else -1
