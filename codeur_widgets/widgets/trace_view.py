"""TraceView: recent traces and the selected one's spans as a live waterfall."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import traitlets

from ..core.spans import content
from ..core.traces import TRACE_STATUSES, TraceEncoder
from ._base import Frame, HubWidget
from ._bundle import Bundle

if TYPE_CHECKING:
    from ..core.hub import Hub

__all__ = ["MAX_LIST", "TraceView"]

MAX_LIST = 100
"""Traces listed at most (the newest matching ones)."""
LIST_BUDGET = 24_000
"""Serialised bytes of the list in one message; the selected trace's rows get the rest."""
MESSAGE_BUDGET = 60_000
"""Serialised bytes of one message (the comm budget is 64 KiB)."""
DETAIL_BUDGET = 56_000


class TraceView(HubWidget):
    """The newest traces (status, job, duration, agents, tokens, cost, errors), filtered by
    status, agent and text; the selected trace as a waterfall of its spans, open ones growing;
    the clicked span's details, content included when it was captured.

    The list is a summary filtered in Python over every kept trace (``status``, ``agent``,
    ``text``). Only the selected trace's spans are sent (``patch``: compact rows, the whole trace
    when the selection changes, then only the spans that changed, paged to stay under 64 KiB), so
    a busy hub costs what the list and one trace cost, at most 10 messages a second. Durations
    of running traces and open spans advance in the browser. Set ``selected`` (a trace id, i.e. a
    job id) to open a trace, ``agent`` to show only an agent's traces (the dashboard links them
    to the agent cards and the log tail).

    ``TraceView(hub)``; ``TraceView()`` watches :func:`codeur_widgets.default_hub`.
    """

    _esm = Bundle("trace_view")
    _stores = ("traces",)

    traces: traitlets.List[dict[str, Any]] = traitlets.List(
        help="summaries of the newest matching traces, newest first"
    ).tag(sync=True)
    counts = traitlets.Dict(help="traces per status (all kept traces)").tag(sync=True)
    agents: traitlets.List[str] = traitlets.List(help="agents seen in traces (filter options)").tag(
        sync=True
    )
    now = traitlets.Float(0.0, help="hub time of the frame (the browser ages from it)").tag(
        sync=True
    )
    status = traitlets.Unicode("", help="only traces in this status, '' for all").tag(sync=True)
    agent = traitlets.Unicode("", help="only traces this agent took part in, '' for all").tag(
        sync=True
    )
    text = traitlets.Unicode("", help="substring of ids, names, agents, models or errors").tag(
        sync=True
    )
    selected = traitlets.Unicode("", help="id of the trace shown as a waterfall, '' for none").tag(
        sync=True
    )
    patch = traitlets.Dict(help="the selected trace's rows: all, then what changed").tag(sync=True)
    span = traitlets.Int(-1, help="index of the span whose details are shown, -1 for none").tag(
        sync=True
    )
    detail = traitlets.Dict(help="the selected span, with its content").tag(sync=True)
    height = traitlets.Int(420, help="height of the waterfall in pixels").tag(sync=True)
    limit = traitlets.Int(MAX_LIST, help=f"traces listed (1 to {MAX_LIST})").tag(sync=True)

    def __init__(self, hub: Hub | None = None, **kwargs: Any) -> None:
        self._encoder: TraceEncoder | None = None
        self._patches = 0  # numbers patches: each one is a change the browser applies
        self._detail_key: tuple[Any, ...] | None = None
        # A user action is answered at once; the frame after it is skipped (its changes go in
        # the one after), so clicks never push the view over 10 messages a second.
        self._skip_frame = False
        super().__init__(hub, **kwargs)
        if self._encoder is not None and self._encoder.more:
            self._again()  # the first state held a page of a large trace: the rest follows

    @traitlets.validate("limit")
    def _valid_limit(self, proposal: Any) -> int:
        return max(1, min(MAX_LIST, int(proposal["value"])))

    @traitlets.validate("status")
    def _valid_status(self, proposal: Any) -> str:
        value = str(proposal["value"] or "")
        return value if value in TRACE_STATUSES else ""

    # -- frames --------------------------------------------------------------------------------
    def _state(
        self, frame: Frame, traits: Mapping[str, Any], *, initial: bool = False
    ) -> dict[str, Any]:
        snap = frame["traces"]
        listed = self._list(snap, traits)
        state: dict[str, Any] = {
            "traces": listed,
            "counts": snap["counts"],
            "agents": snap["agents"],
            "now": snap["now"],
        }
        budget = MESSAGE_BUDGET - _size(listed) - 2_000
        patch = self._next_patch(self._trait(traits, "selected"), budget, reset=initial)
        if patch is not None:
            state["patch"] = patch
        detail = self._detail(self._trait(traits, "selected"), self._trait(traits, "span"))
        if detail is not None and (initial or budget - _size(patch) > _size(detail)):
            state["detail"] = detail
        elif detail is not None:
            self._detail_key = None  # no room in this message: the next frame sends it
            self._again()
        return state

    def _list(self, snap: Mapping[str, Any], traits: Mapping[str, Any]) -> list[dict[str, Any]]:
        status = self._trait(traits, "status") or None
        agent = self._trait(traits, "agent") or None
        text = self._trait(traits, "text") or None
        limit = self._trait(traits, "limit")
        if status is None and agent is None and text is None and limit >= len(snap["traces"]):
            return _fit(snap["traces"][:limit], LIST_BUDGET)  # the tick's shared snapshot
        found = self._hub.traces.query(status=status, agent=agent, text=text, limit=limit)
        return _fit(found, LIST_BUDGET)

    def _next_patch(self, selected: str, budget: int, *, reset: bool) -> dict[str, Any] | None:
        """The next change of the selected trace for the browser (numbered), or None."""
        if not selected:
            if self._encoder is None and not reset:
                return None
            self._encoder = None
            self._patches += 1
            return {"n": self._patches, "trace": None, "reset": True, "rows": {}, "strings": []}
        if reset or self._encoder is None or self._encoder.trace_id != selected:
            self._encoder = TraceEncoder(self._hub.traces, selected)
        patch = self._encoder.next(max(8_000, budget))
        if patch is None:
            return None
        if patch["more"]:
            self._again()  # the rest of a large trace goes in the next frames
        self._patches += 1
        patch["n"] = self._patches
        return patch

    def _on_frame(self, frame: Frame) -> None:
        if self._skip_frame:
            self._skip_frame = False
            self._again()
            return
        super()._on_frame(frame)

    def _answered(self) -> None:
        self._skip_frame = True

    def _again(self) -> None:
        if self._watch is not None:
            self._watch.invalidate()

    def _detail(self, selected: str, span: int) -> dict[str, Any] | None:
        """The selected span's details when they changed since last sent, else None."""
        if not selected or span < 0:
            key: tuple[Any, ...] = (selected, span, None)
            if key == self._detail_key:
                return None
            self._detail_key = key
            return {}
        store = self._hub.traces
        key = (selected, span, store.span_version(selected, span))
        if key == self._detail_key:
            return None
        self._detail_key = key
        found = store.span(selected, span)
        return {} if found is None else _fit_detail(found)

    # -- user actions --------------------------------------------------------------------------
    @traitlets.observe("status", "agent", "text", "limit")
    def _filter_changed(self, change: Any) -> None:
        # A user action: answer at once (one message) instead of waiting for the next change.
        if self.closed:
            return
        snap = self._hub.traces.snapshot()
        with self.hold_sync():
            self.traces = self._list(snap, {})
            self.counts = snap["counts"]
        self._answered()

    @traitlets.observe("selected")
    def _selected_changed(self, change: Any) -> None:
        if self.closed:
            return
        with self.hold_sync():
            self.span = -1
            patch = self._next_patch(self.selected, MESSAGE_BUDGET, reset=True)
            if patch is not None:
                self.patch = patch
            detail = self._detail(self.selected, -1)
            if detail is not None:
                self.detail = detail
        self._answered()

    @traitlets.observe("span")
    def _span_changed(self, change: Any) -> None:
        if self.closed:
            return
        detail = self._detail(self.selected, self.span)
        if detail is not None:
            self.detail = detail
            self._answered()

    def rebind(self, hub: Hub) -> None:
        """Show ``hub`` from now on (a past state rebuilt from history, or live again); the
        selected trace is looked up there."""
        self._encoder = None
        self._detail_key = None
        super().rebind(hub)

    def get_state(
        self, key: str | Iterable[str] | None = None, drop_defaults: bool = False
    ) -> dict[str, Any]:
        """The synced state. The whole of it (a new or reloaded page) restarts the selected
        trace from its first page: every page showing the widget receives it and starts over,
        and the next frames send the rest (each message under 64 KiB)."""
        state: dict[str, Any] = super().get_state(key, drop_defaults=drop_defaults)
        if key is None and getattr(self, "_hub", None) is not None:
            patch = self._next_patch(self.selected, MESSAGE_BUDGET - 8_000, reset=True)
            if patch is not None:
                state["patch"] = patch
        return state


def _size(value: Any) -> int:
    if value is None:
        return 0
    return len(json.dumps(value, ensure_ascii=False, default=str).encode())


def _fit(items: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    used = 2
    for item in items:
        used += _size(item) + 2
        if out and used > budget:
            break
        out.append(item)
    return out


def _fit_detail(detail: dict[str, Any]) -> dict[str, Any]:
    """The span's details cut to fit a message: content shortened, then left out."""
    if _size(detail) <= DETAIL_BUDGET:
        return detail
    out = dict(detail)
    messages = out.get("kind") == "llm"
    for field in ("input", "output"):
        if out.get(field) is not None:
            out[field] = content(out[field], messages=messages, budget=DETAIL_BUDGET // 4)
    if _size(out) > DETAIL_BUDGET:
        out["input"] = out["output"] = "[too large to show here: see hub.traces.span(...)]"
    return out
