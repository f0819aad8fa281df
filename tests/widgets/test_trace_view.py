"""TraceView without a browser: what it sends (sizes, rates, only what changed), filters, details,
and its links with the other panels of a Dashboard."""

from __future__ import annotations

import collections
import json
import random
from typing import Any

from codeur_widgets.core.clock import FakeClock
from codeur_widgets.core.hub import Hub
from codeur_widgets.widgets import Dashboard, TraceView

from .conftest import CommSpy, Message, from_browser

LIMIT_BYTES = 64 * 1024


class Browser:
    """What the browser rebuilds from the ``patch`` messages (lib/traces.js's applyPatch)."""

    def __init__(self) -> None:
        self.trace: str | None = None
        self.strings: list[str] = []
        self.rows: dict[int, dict[str, Any]] = {}
        self.patches = 0

    def apply(self, patch: dict[str, Any]) -> None:
        if not patch:
            return
        self.patches += 1
        if patch.get("reset") or patch.get("trace") != self.trace:
            self.strings, self.rows = [], {}
        self.trace = patch.get("trace")
        self.strings += patch.get("strings") or []
        cols = patch.get("rows") or {}
        for j, parent in enumerate(cols.get("p") or []):
            i = cols["i"][j] if "i" in cols else cols["i0"] + j
            name, kind, agent, status = (
                self.strings[cols[key][j]] if cols[key][j] >= 0 else None
                for key in ("n", "k", "a", "st")
            )
            self.rows[i] = {
                "p": parent,
                "name": name,
                "kind": kind,
                "agent": agent,
                "status": status,
                "d": cols["d"][j],
            }

    def feed(self, messages: list[Message]) -> None:
        for m in messages:
            if "patch" in m.state:
                self.apply(m.state["patch"])


def expected(hub: Hub, trace: str) -> dict[int, dict[str, Any]]:
    spans = hub.traces.spans(trace)
    index = {s["span_id"]: s["i"] for s in spans}
    return {
        s["i"]: {
            "p": index.get(s["parent_id"], -1),
            "name": s["name"],
            "kind": s["kind"],
            "agent": s["agent"],
            "status": s["status"],
            "d": None if s["end"] is None else round((s["end"] - s["start"]) * 1000),
        }
        for s in spans
    }


def nested_job(hub: Hub, clock: FakeClock, job: str, spans: int, open_every: int = 0) -> None:
    """A job whose coder task holds ``spans`` calls (every ``open_every``-th left open)."""
    hub.publish("job.enqueued", job_id=job, kind="k")
    ids = {"trace_id": job, "span_id": "root"}
    hub.publish("agent.task.started", "coder", **ids, task=f"work {job}", task_id="root")
    for i in range(spans):
        sid = {"trace_id": job, "span_id": f"s{i}"}
        kind = "tool" if i % 2 else "llm"
        hub.publish(
            "span.started", "coder", **sid, name=f"call {i % 30}", kind=kind, parent_id="root"
        )
        clock.advance(0.01)
        if not (open_every and i % open_every == 0):
            hub.publish("span.ended", "coder", **sid, status="ok")
    hub.publish("agent.task.completed", "coder", **ids, task_id="root")


def test_a_selected_trace_reaches_the_browser_whole_then_only_changes(
    hub: Hub, clock: FakeClock, spy: CommSpy
) -> None:
    nested_job(hub, clock, "job-1", 20, open_every=7)
    view = TraceView(hub)
    browser = Browser()
    mark = spy.mark()
    from_browser(view, selected="job-1")
    browser.feed(spy.updates(view, since=mark))
    assert browser.rows == expected(hub, "job-1")
    assert sum(1 for r in browser.rows.values() if r["d"] is None) == 3  # open spans stay open

    hub.render_now(now=100.0)
    mark = spy.mark()
    hub.render_now(now=101.0)
    assert spy.updates(view, since=mark) == []  # nothing changed: nothing sent

    a = hub.agent("coder")
    with a.task("late", job_id="job-1"):
        clock.advance(0.5)
    mark = spy.mark()
    hub.render_now(now=102.0)
    sent = spy.updates(view, since=mark)
    assert len(sent) == 1
    patch = sent[0].state["patch"]
    assert len(patch["rows"]["p"]) == 1 and patch["reset"] is False  # only the new span
    browser.feed(sent)
    assert browser.rows == expected(hub, "job-1")
    view.close()


def test_two_thousand_spans_fit_in_messages_under_64_kib(
    hub: Hub, clock: FakeClock, spy: CommSpy
) -> None:
    nested_job(hub, clock, "big", 1_999, open_every=40)
    assert hub.traces.get("big")["spans"] == 2_000  # type: ignore[index]
    view = TraceView(hub)
    browser = Browser()
    mark = spy.mark()
    view.selected = "big"
    for k in range(5):  # the rest of a paged trace follows on the next ticks
        hub.render_now(now=200.0 + k)
    sent = spy.updates(view, since=mark)
    browser.feed(sent)
    assert browser.rows == expected(hub, "big")
    assert max(m.size for m in sent) <= LIMIT_BYTES, [m.size for m in sent]
    assert browser.patches <= 3
    view.close()


def test_within_budget_while_many_traces_run(hub: Hub, clock: FakeClock, spy: CommSpy) -> None:
    a = hub.agent("coder", model="gpt-4o")
    view = TraceView(hub)
    mark = spy.mark()
    rng = random.Random(3)
    open_calls: list[Any] = []
    for tick in range(500):  # 5 virtual seconds at 100 ticks/s, ~40 span events per tick
        clock.advance(0.01)
        spy.now = tick * 0.01
        for _ in range(20):
            job = f"job-{rng.randrange(60)}"
            call = a.llm_call(model="gpt-4o", job_id=job, messages="x" * 500)
            call.__enter__()
            open_calls.append(call)
            if len(open_calls) > 30:
                done = open_calls.pop(rng.randrange(len(open_calls)))
                done.tokens(prompt=100, completion=10)
                done.__exit__(None, None, None)
        if tick == 50:
            from_browser(view, selected="job-7")
        if tick == 250:
            from_browser(view, status="running")
        hub.render_now(now=spy.now)
    sent = spy.updates(view, since=mark)
    per_second = collections.Counter(int(m.at) for m in sent)
    assert max(per_second.values()) <= 10, per_second
    assert max(m.size for m in sent) <= LIMIT_BYTES
    assert len(sent) >= 30  # it kept up with the changes
    view.close()


def test_filters_details_and_content(hub: Hub, clock: FakeClock, spy: CommSpy) -> None:
    a, b = hub.agent("planner", model="gpt-4o"), hub.agent("coder", model="mystery-model")
    hostile = '<img src=x onerror="window.__pwned=1">'
    with a.task("plan", job_id="j1"), a.llm_call(model="gpt-4o", messages=hostile) as c:
        c.output("the plan")
        c.tokens(prompt=10, completion=5)
    try:
        with b.task("code", job_id="j2"), b.llm_call(model="mystery-model") as c2:
            c2.tokens(prompt=10, completion=5)
            raise TimeoutError("LLM call timed out after 60 s")
    except TimeoutError:
        pass
    view = TraceView(hub)
    assert [t["id"] for t in view.traces] == ["j2", "j1"]
    from_browser(view, status="failed")
    assert [t["id"] for t in view.traces] == ["j2"]
    assert view.traces[0]["error"] == "TimeoutError: LLM call timed out after 60 s"
    assert view.traces[0]["cost_unknown"] == 1
    from_browser(view, status="", agent="planner")
    assert [t["id"] for t in view.traces] == ["j1"]
    from_browser(view, agent="", text="MYSTERY")
    assert [t["id"] for t in view.traces] == ["j2"]

    from_browser(view, selected="j1")
    from_browser(view, span=1)
    assert view.detail["kind"] == "llm" and view.detail["input"] == hostile
    assert view.detail["output"] == "the plan" and view.detail["cost_usd"] > 0
    from_browser(view, selected="j2")
    assert view.span == -1 and view.detail == {}
    from_browser(view, span=1)
    assert view.detail["error_type"] == "TimeoutError" and view.detail["cost_unknown"] is True
    assert max(m.size for m in spy.updates(view)) <= LIMIT_BYTES
    view.close()


def test_a_huge_captured_prompt_is_cut_to_fit_one_message(hub: Hub, spy: CommSpy) -> None:
    a = hub.agent("a")
    messages = [{"role": "user", "content": f"{i} " + "y" * 9_000} for i in range(40)]
    with a.llm_call(model="m", messages=messages, job_id="j") as c:
        c.output("z" * 50_000)
    view = TraceView(hub, selected="j")
    from_browser(view, span=0)
    assert view.detail["input"] and json.dumps(view.detail).__len__() <= 60_000
    assert max(m.size for m in spy.updates(view)) <= LIMIT_BYTES
    view.close()


def test_a_new_page_gets_the_whole_trace(hub: Hub, clock: FakeClock) -> None:
    nested_job(hub, clock, "job-1", 10)
    view = TraceView(hub, selected="job-1")
    a = hub.agent("coder")
    with a.task("more", job_id="job-1"):
        pass
    hub.render_now(now=1.0)
    assert len(view.patch["rows"]["p"]) < 11  # the live patch is a change
    browser = Browser()
    browser.apply(view.get_state()["patch"])  # a reloaded page: the whole trace
    assert browser.rows == expected(hub, "job-1")
    view.close()


def test_dashboard_links_agents_logs_and_traces(hub: Hub, clock: FakeClock) -> None:
    a = hub.agent("coding_agent")
    with a.task("work", job_id="job-5") as t:
        t.log("inside the job")
    with hub.agent("other").task("x", job_id="job-6"):
        pass
    dash = Dashboard(hub)
    assert dash.traces in dash.panels and dash.traces in dash.views
    from_browser(dash.cards, selected="coding_agent")
    assert dash.traces.agent == "coding_agent"
    assert [t["id"] for t in dash.traces.traces] == ["job-5"]
    line = next(x for x in dash.logs.lines if x["message"] == "inside the job")
    assert line["trace"] == "job-5"
    from_browser(dash.logs, open_trace={"trace": "job-5", "n": 1})
    assert dash.traces.selected == "job-5" and dash.traces.patch["trace"] == "job-5"
    from_browser(dash.traces, selected="job-6")
    from_browser(dash.logs, open_trace={"trace": "job-5", "n": 2})  # the same line again
    assert dash.traces.selected == "job-5"
    dash.close()


def test_rebind_shows_the_past_trace(tmp_path: Any, spy: CommSpy) -> None:
    clock = FakeClock(1_700_000_000.0)
    hub = Hub(clock=clock, collect_system=False, history=str(tmp_path / "h.sqlite"))
    a = hub.agent("a")
    with a.task("t", job_id="j"):
        clock.advance(1)
        with a.llm_call(model="m"):
            clock.advance(1)
            mid = clock()
            clock.advance(1)
    assert hub.history is not None and hub.history.flush(timeout=10)
    view = TraceView(hub, selected="j")
    browser = Browser()
    mark = spy.mark()
    view.rebind(hub.history.rebuild(until=mid))
    browser.feed(spy.updates(view, since=mark))
    assert [r["status"] for r in browser.rows.values()] == ["running", "running"]
    view.close()
    hub.history.close()


def test_a_large_selected_trace_opens_in_pages(hub: Hub, clock: FakeClock, spy: CommSpy) -> None:
    nested_job(hub, clock, "big", 1_999)
    mark = spy.mark()
    view = TraceView(hub, selected="big")  # its first state holds the first page only
    opened = [
        m for m in spy.messages[mark:] if m.msg_type == "comm_open" and m.comm_id == view.model_id
    ]
    assert opened
    state = {k: v for k, v in opened[0].data["state"].items() if k not in ("_esm", "_css")}
    assert len(json.dumps(state).encode()) <= LIMIT_BYTES  # the bundle aside (sent once)
    browser = Browser()
    browser.apply(opened[0].data["state"]["patch"])
    assert 0 < len(browser.rows) < 2_000
    mark = spy.mark()
    for k in range(3):
        hub.render_now(now=10.0 + k)
    browser.feed(spy.updates(view, since=mark))
    assert browser.rows == expected(hub, "big")
    assert max(m.size for m in spy.updates(view)) <= LIMIT_BYTES
    view.close()
