"""TraceStore: span trees per trace, in any event order, bounded, with exact totals."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codeur_widgets.core.clock import FakeClock
from codeur_widgets.core.events import Event
from codeur_widgets.core.prices import Prices
from codeur_widgets.core.traces import TraceEncoder, TraceStore

T0 = 1_700_000_000.0


def ev(
    topic: str,
    agent: str | None = "a",
    trace: str | None = "t",
    span: str | None = None,
    ts: float = T0,
    **data: Any,
) -> Event:
    return Event(topic, agent, data, ts, f"e{random.random()}", trace, span)


def start(span: str, parent: str | None = None, ts: float = T0, trace: str = "t", **data: Any):
    if parent is not None:
        data["parent_id"] = parent
    return ev(
        "span.started",
        trace=trace,
        span=span,
        ts=ts,
        name=data.pop("name", span),
        kind=data.pop("kind", "llm"),
        **data,
    )


def end(span: str, ts: float, trace: str = "t", **data: Any) -> Event:
    data.setdefault("status", "ok")
    return ev("span.ended", trace=trace, span=span, ts=ts, **data)


def by_id(store: TraceStore, trace: str = "t") -> dict[str, dict[str, Any]]:
    return {s["span_id"]: s for s in store.spans(trace)}


# -- nesting and order --------------------------------------------------------------------------
def test_nested_spans_form_a_tree_and_the_trace_sums_them() -> None:
    store = TraceStore(clock=FakeClock(T0), prices=Prices({"m": (1.0, 2.0)}))
    store.apply(start("root", kind="task", ts=T0))
    store.apply(start("llm", "root", ts=T0 + 1, model="m"))
    assert store.get("t")["status"] == "running" and store.get("t")["open"] == 2  # type: ignore[index]
    store.apply(end("llm", T0 + 2, prompt_tokens=1000, completion_tokens=500))
    store.apply(end("root", T0 + 3))
    spans = by_id(store)
    assert spans["llm"]["parent_id"] == "root" and spans["root"]["parent_id"] is None
    assert spans["llm"]["duration"] == 1.0 and spans["llm"]["cost_usd"] == pytest.approx(0.002)
    summary = store.get("t")
    assert summary is not None
    assert (summary["status"], summary["open"], summary["spans"]) == ("ok", 0, 2)
    assert (summary["prompt_tokens"], summary["completion_tokens"]) == (1000, 500)
    assert summary["cost_usd"] == pytest.approx(0.002) and summary["cost_unknown"] == 0
    assert (summary["start"], summary["end"]) == (T0, T0 + 3)


def test_child_ending_after_its_parent_and_parent_arriving_late() -> None:
    store = TraceStore()
    store.apply(start("child", "root", ts=T0 + 1))  # the parent's start is not here yet
    store.apply(start("root", ts=T0))
    store.apply(end("root", T0 + 2))
    assert store.get("t")["status"] == "running"  # type: ignore[index]
    store.apply(end("child", T0 + 5))
    spans = by_id(store)
    assert spans["child"]["parent_id"] == "root" and spans["child"]["end"] == T0 + 5
    assert store.get("t")["status"] == "ok"  # type: ignore[index]
    assert store.get("t")["end"] == T0 + 5  # type: ignore[index]


def test_an_end_before_its_start_is_completed_by_the_start() -> None:
    store = TraceStore()
    store.apply(end("s", T0 + 4, status="error", error_type="Boom", error="bad"))
    s = by_id(store)["s"]
    assert (s["start"], s["end"], s["status"]) == (None, T0 + 4, "error")
    assert store.get("t")["open"] == 0  # type: ignore[index]
    store.apply(start("s", ts=T0 + 1, name="late start", kind="tool"))
    s = by_id(store)["s"]
    assert (s["start"], s["end"], s["status"], s["name"], s["kind"]) == (
        T0 + 1,
        T0 + 4,
        "error",
        "late start",
        "tool",
    )
    summary = store.get("t")
    assert summary is not None and summary["open"] == 0 and summary["errors"] == 1
    assert summary["status"] == "failed" and summary["error"] == "Boom: bad"


def test_a_self_describing_end_is_a_whole_span() -> None:
    store = TraceStore()
    store.apply(
        end(
            "s",
            T0 + 3,
            start=T0 + 1,
            name="chat",
            kind="llm",
            parent_id="p",
            model="gpt-x",
            prompt_tokens=10,
            completion_tokens=5,
            cost_usd=0.5,
        )
    )
    s = by_id(store)["s"]
    assert (s["start"], s["end"], s["parent_id"], s["kind"]) == (T0 + 1, T0 + 3, "p", "llm")
    assert s["cost_usd"] == 0.5 and store.get("t")["cost_usd"] == 0.5  # type: ignore[index]


def test_duplicate_starts_and_ends_are_merged_and_counted_once() -> None:
    store = TraceStore()
    for _ in range(3):
        store.apply(start("s", ts=T0))
    assert store.get("t")["open"] == 1 and store.get("t")["spans"] == 1  # type: ignore[index]
    for _ in range(3):
        store.apply(
            end(
                "s",
                T0 + 1,
                prompt_tokens=7,
                completion_tokens=3,
                cost_usd=0.1,
                status="error",
                error="x",
            )
        )
    summary = store.get("t")
    assert summary is not None
    assert (summary["prompt_tokens"], summary["completion_tokens"], summary["errors"]) == (7, 3, 1)
    assert summary["cost_usd"] == pytest.approx(0.1) and summary["open"] == 0
    store.apply(start("s", ts=T0))  # a start repeated after the end does not reopen it
    assert store.get("t")["open"] == 0  # type: ignore[index]


def test_unknown_ids_and_events_without_ids_are_tolerated() -> None:
    store = TraceStore()
    store.apply(ev("span.updated", span="nope", first_token_at=T0))  # unknown span: ignored
    store.apply(ev("span.started", trace=None, span=None, name="x", kind="llm"))  # no ids
    store.apply(ev("span.started", span="k", name="x", kind="not-a-kind", parent_id=5))
    assert store.ignored == 2
    assert by_id(store)["k"]["kind"] == "other" and by_id(store)["k"]["parent_id"] == "5"
    store.apply(ev("span.ended", trace="u", span="z", status="weird", prompt_tokens="many"))
    assert by_id(store, "u")["z"]["status"] == "ok"
    assert store.get("u")["prompt_tokens"] == 0  # type: ignore[index]


# -- tasks, jobs, usage, links ------------------------------------------------------------------
def test_tasks_and_jobs_open_and_close_the_trace() -> None:
    store = TraceStore()
    store.apply(ev("job.enqueued", agent=None, trace=None, ts=T0, job_id="job-1", kind="codegen"))
    assert store.get("job-1")["status"] == "running"  # type: ignore[index]
    store.apply(
        ev("agent.task.started", trace=None, ts=T0 + 1, task="Plan", task_id="a#1", job_id="job-1")
    )
    store.apply(
        ev(
            "agent.task.failed",
            trace=None,
            ts=T0 + 2,
            task_id="a#1",
            job_id="job-1",
            error_type="ValueError",
            error="bad plan",
        )
    )
    assert store.get("job-1")["status"] == "running"  # the job has not ended  # type: ignore[index]
    store.apply(
        ev(
            "job.completed",
            agent=None,
            trace=None,
            ts=T0 + 3,
            job_id="job-1",
            success=False,
            status="failed",
        )
    )
    summary = store.get("job-1")
    assert summary is not None and summary["name"] == "codegen"
    assert (summary["status"], summary["errors"], summary["end"]) == ("failed", 1, T0 + 3)
    task = by_id(store, "job-1")["a#1"]
    assert (task["kind"], task["name"], task["status"], task["error"]) == (
        "task",
        "Plan",
        "error",
        "bad plan",
    )
    store.apply(ev("job.completed", agent=None, trace=None, job_id="job-2", status="cancelled"))
    assert store.get("job-2")["status"] == "cancelled"  # type: ignore[index]


def test_a_jobs_trace_follows_its_lifecycle_in_any_order() -> None:
    store = TraceStore()

    def job(topic: str, ts: float, job_id: str = "j", **data: Any) -> None:
        store.apply(ev(topic, agent=None, trace=None, ts=ts, job_id=job_id, **data))

    # The usual order: queued, running, done; the trace spans enqueue to completion.
    job("job.enqueued", T0, kind="codegen")
    job("job.started", T0 + 1)
    assert store.trace("j").job_state == "running"  # type: ignore[union-attr]
    job("job.completed", T0 + 3)
    summary = store.get("j")
    assert summary is not None
    assert (summary["status"], summary["name"], summary["start"], summary["end"]) == (
        "ok",
        "codegen",
        T0,
        T0 + 3,
    )
    job("job.started", T0 + 2)  # a late start of a finished job changes nothing
    assert store.get("j") == summary
    # Started before it was enqueued (two producers): one trace, from the earliest time.
    job("job.started", T0 + 5, job_id="k")
    job("job.enqueued", T0 + 4, job_id="k", kind="review")
    k = store.get("k")
    assert k is not None and (k["status"], k["name"], k["start"]) == ("running", "review", T0 + 4)
    # A job known only from its end takes its name from it; success=False means failed.
    job("job.completed", T0 + 6, job_id="m", kind="deploy", success=False)
    m = store.get("m")
    assert m is not None and (m["status"], m["name"], m["end"]) == ("failed", "deploy", T0 + 6)
    # A completion that gives a status is read from it.
    job("job.enqueued", T0, job_id="n")
    job("job.completed", T0 + 1, job_id="n", status="cancelled")
    assert store.get("n")["status"] == "cancelled"  # type: ignore[index]
    # An id that is not a string is read as text, once; an unhashable one is ignored.
    job("job.enqueued", T0, job_id=12)
    job("job.started", T0 + 1, job_id="12")
    job("job.completed", T0 + 2, job_id=["x"])
    assert store.get("12")["status"] == "running"  # type: ignore[index]
    assert len(store) == 5


def test_a_text_filter_finds_names_agents_models_and_errors() -> None:
    store = TraceStore()
    store.apply(ev("job.enqueued", agent=None, trace=None, job_id="job-7", kind="codegen"))
    store.apply(start("r", trace="job-7", kind="task", name="Plan the change"))
    store.apply(ev("span.started", agent="rag_service", trace="job-7", span="q", name="retrieve"))
    store.apply(start("c", "r", trace="job-7", name="chat", model="gpt-4o-mini"))
    store.apply(end("c", T0 + 1, trace="job-7", model="gpt-4o-mini-2024-07-18"))
    store.apply(end("q", T0 + 1, trace="job-7", status="error", error="index offline"))
    store.apply(start("r", trace="other", kind="task", name="unrelated"))
    for text in ("JOB-7", "codegen", "plan the", "RAG_SERVICE", "4o-mini-2024", "offline"):
        assert [t["id"] for t in store.query(text=text)] == ["job-7"], text
    assert store.query(text="nowhere") == []
    # The text is rebuilt when the trace changes.
    store.apply(start("d", "r", trace="job-7", name="deploy step"))
    assert [t["id"] for t in store.query(text="deploy step")] == ["job-7"]


def test_a_trace_without_a_job_is_judged_by_its_root() -> None:
    store = TraceStore()
    store.apply(start("r", ts=T0, trace="x"))
    store.apply(start("c", "r", ts=T0, trace="x"))
    store.apply(end("c", T0 + 1, trace="x", status="error", error="retry me"))
    store.apply(end("r", T0 + 2, trace="x"))
    assert store.get("x")["status"] == "ok" and store.get("x")["errors"] == 1  # type: ignore[index]
    store.apply(start("r2", ts=T0, trace="y"))
    store.apply(end("r2", T0 + 1, trace="y", status="error", error="fatal"))
    assert store.get("y")["status"] == "failed"  # type: ignore[index]


def test_task_level_tokens_go_to_their_span_and_trace() -> None:
    store = TraceStore()
    store.apply(ev("agent.task.started", span="s1", ts=T0, task="t", task_id="a#1"))
    store.apply(ev("agent.tokens", span="s1", prompt=100, completion=20, cost_usd=0.01))
    store.apply(ev("agent.tokens", span="s1", prompt=1, completion=1, cost_usd=0.0))
    store.apply(ev("agent.tokens", trace=None, prompt=999, completion=9, cost_usd=9.0))  # no trace
    assert by_id(store)["s1"]["prompt_tokens"] == 101
    summary = store.get("t")
    assert summary is not None and (summary["prompt_tokens"], summary["completion_tokens"]) == (
        101,
        21,
    )


def test_tokens_without_a_trace_count_in_the_job_they_name_or_the_agents_job() -> None:
    """Raw producers report usage without span ids: it counts in the job named in the event,
    else in the job the agent works on (the registry's ``job_of``), to that agent's open span."""
    jobs = {"a": "job-1"}
    store = TraceStore(job_of=jobs.get)
    store.apply(ev("agent.task.started", trace=None, ts=T0, task="t", task_id="s1", job_id="job-1"))
    store.apply(ev("agent.tokens", trace=None, prompt=10, completion=5, cost_usd=0.5))
    store.apply(ev("agent.tokens", trace=None, prompt=1, completion=0, cost_usd=0.25, job_id="j2"))
    store.apply(ev("agent.tokens", agent="b", trace=None, prompt=7, completion=0, cost_usd=1.0))
    assert by_id(store, "job-1")["s1"]["prompt_tokens"] == 10
    assert store.get("job-1")["cost_usd"] == 0.5  # type: ignore[index]
    assert store.get("j2")["cost_usd"] == 0.25  # type: ignore[index]
    assert len(store) == 2  # b works on no job: its usage is in no trace
    spent = store.take_spent()
    assert [(t.trace_id, t.usage_at) for t in spent] == [("job-1", T0), ("j2", T0)]
    assert store.take_spent() == []


def test_tokens_without_a_span_go_to_the_agents_open_span_in_their_job() -> None:
    """The agent's innermost open span in the job's trace, even when its newest span is in
    another trace, was reattributed, or has ended (the store's shortcut is checked, never
    trusted)."""
    jobs = {"a": "job-1"}
    store = TraceStore(job_of=jobs.get)
    task = {"trace": None, "ts": T0}
    store.apply(ev("agent.task.started", **task, task="t1", task_id="s1", job_id="job-1"))
    store.apply(ev("agent.task.started", **task, task="t2", task_id="s2", job_id="job-2"))
    store.apply(ev("agent.tokens", trace=None, prompt=10, completion=0, cost_usd=0.0))
    assert by_id(store, "job-1")["s1"]["prompt_tokens"] == 10  # a's newest span is in job-2
    store.apply(ev("agent.task.started", **task, task="t3", task_id="s3", job_id="job-1"))
    store.apply(ev("agent.tokens", trace=None, prompt=5, completion=0, cost_usd=0.0))
    assert by_id(store, "job-1")["s3"]["prompt_tokens"] == 5  # the innermost: s3
    store.apply(ev("agent.task.completed", trace=None, task_id="s3", job_id="job-1"))
    store.apply(ev("agent.tokens", trace=None, prompt=2, completion=0, cost_usd=0.0))
    assert by_id(store, "job-1")["s1"]["prompt_tokens"] == 12  # s3 ended: s1 again
    store.apply(ev("agent.task.started", agent="b", **task, task="t", task_id="s1", job_id="job-1"))
    store.apply(ev("agent.tokens", trace=None, prompt=1, completion=0, cost_usd=0.0))
    assert by_id(store, "job-1")["s1"]["prompt_tokens"] == 12  # s1 is b's now: a has none open
    assert store.get("job-1")["prompt_tokens"] == 18  # type: ignore[index]


def test_job_ids_of_any_type_are_checked_found_or_ignored() -> None:
    store = TraceStore()
    store.apply(ev("job.enqueued", agent=None, trace=None, job_id=7, kind="k"))
    store.apply(ev("job.started", agent=None, trace=None, ts=T0 + 1, job_id="7"))
    assert store.get("7")["status"] == "running"  # type: ignore[index]
    store.apply(ev("job.completed", agent=None, trace=None, ts=T0 + 2, job_id=7, success=True))
    assert store.get("7")["status"] == "ok" and len(store) == 1  # type: ignore[index]
    for odd in (["x"], {"x": 1}, None, "", 1.5, "x" * 300):
        store.apply(ev("job.started", agent=None, trace=None, job_id=odd))
    assert store.ids() == ["x" * 255 + "…", "7"]  # a long id is cut; a float is no id


def test_a_task_end_with_usage_or_a_model_counts_them() -> None:
    """A task's end usually has only its id and duration (the store skips reading the rest);
    when it reports usage, a model or an error, they count."""
    store = TraceStore(prices=Prices({"m": (1.0, 2.0)}))
    store.apply(ev("agent.task.started", span="s1", task="t", task_id="s1"))
    store.apply(ev("agent.task.completed", span="s1", ts=T0 + 1, duration=1.0))
    assert by_id(store)["s1"]["status"] == "ok" and by_id(store)["s1"]["error"] is None
    store.apply(ev("agent.task.started", span="s2", task="t", task_id="s2"))
    store.apply(
        ev("agent.task.completed", span="s2", ts=T0 + 1, model="m", prompt_tokens=10,
           completion_tokens=5)
    )  # fmt: skip
    s2 = by_id(store)["s2"]
    assert (s2["model"], s2["prompt_tokens"]) == ("m", 10)
    assert s2["cost_usd"] == pytest.approx(20e-6)  # priced per million tokens
    store.apply(ev("agent.task.started", span="s3", task="t", task_id="s3"))
    store.apply(ev("agent.task.failed", span="s3", ts=T0 + 1, error_type="E", error="boom"))
    assert (by_id(store)["s3"]["error_type"], by_id(store)["s3"]["error"]) == ("E", "boom")


def test_unknown_prices_stay_unknown() -> None:
    store = TraceStore(prices=Prices(table=False))
    store.apply(start("s"))
    store.apply(end("s", T0 + 1, model="mystery", prompt_tokens=10, completion_tokens=10))
    s = by_id(store)["s"]
    assert s["cost_usd"] is None and s["cost_unknown"] is True
    summary = store.get("t")
    assert summary is not None and summary["cost_usd"] == 0 and summary["cost_unknown"] == 1


def test_messages_inside_a_job_link_the_spans_of_two_agents() -> None:
    store = TraceStore()
    store.apply(ev("agent.task.started", agent="a", span="sa", ts=T0, task="ask", task_id="1"))
    # a's message to b, sent from its task: b has no span yet, the link waits for it
    store.apply(ev("agent.message", agent="a", span="sa", ts=T0 + 1, target="b", kind="query"))
    store.apply(
        ev("agent.task.started", agent="b", span="sb", ts=T0 + 2, task="answer", task_id="2")
    )
    # b answers from its open span (no envelope span): its innermost open span is the source
    store.apply(ev("agent.message", agent="b", span=None, ts=T0 + 3, target="a", kind="reply"))
    t = store.trace("t")
    assert t is not None
    assert t.links == [[0, 1, "query", T0 + 1], [1, 0, "reply", T0 + 3]]
    detail = store.span("t", "sb")
    assert detail is not None
    assert {(link["direction"], link["agent"], link["kind"]) for link in detail["links"]} == {
        ("in", "a", "query"),
        ("out", "a", "reply"),
    }


# -- bounds -------------------------------------------------------------------------------------
def test_ten_thousand_open_spans_never_closed_stay_bounded() -> None:
    store = TraceStore(max_traces=50, max_spans=200, max_total_spans=5_000)
    for i in range(10_000):
        store.apply(start(f"s{i}", ts=T0 + i))  # one trace: capped
    summary = store.get("t")
    assert summary is not None
    assert len(store.spans("t")) == 200 and summary["omitted"] == 9_800
    assert summary["spans"] == 10_000 and summary["open"] == 200 and summary["status"] == "running"
    for i in range(10_000):
        store.apply(start(f"s{i}", trace=f"t{i}", ts=T0 + i))  # one trace each: oldest evicted
    assert len(store) == 50 and store.evicted == 9_951
    assert store.total_spans == 50 and store.ids()[0] == "t9999"
    # A recently evicted trace's late end is ignored and counted (not a new trace).
    store.apply(end("s9949", T0 + 1, trace="t9949"))
    assert "t9949" not in store and store.late == 1 and len(store) == 50


def test_total_span_bound_evicts_the_oldest_traces() -> None:
    store = TraceStore(max_spans=100, max_total_spans=250)
    for t in range(5):
        for i in range(100):
            store.apply(start(f"s{i}", trace=f"t{t}"))
    assert store.total_spans <= 250 and store.ids()[0] == "t4" and "t0" not in store


def test_a_trace_over_its_span_cap_keeps_exact_totals() -> None:
    store = TraceStore(max_spans=10)
    for i in range(25):
        store.apply(start(f"s{i}", ts=T0 + i))
        store.apply(
            end(
                f"s{i}",
                T0 + i + 1,
                prompt_tokens=i,
                completion_tokens=1,
                cost_usd=0.5,
                status="error" if i % 5 == 0 else "ok",
            )
        )
    summary = store.get("t")
    assert summary is not None
    assert (summary["spans"], summary["omitted"], len(store.spans("t"))) == (25, 15, 10)
    assert summary["prompt_tokens"] == sum(range(25)) and summary["completion_tokens"] == 25
    assert summary["cost_usd"] == pytest.approx(12.5) and summary["errors"] == 5


def test_content_is_kept_for_the_newest_spans_only_and_cut() -> None:
    store = TraceStore(max_content_spans=3)
    for i in range(5):
        store.apply(start(f"s{i}", input=[{"role": "user", "content": "x" * 20_000}]))
    kept = [s["input"] is not None for s in store.spans("t", with_content=True)]
    assert kept == [False, False, True, True, True]
    text = store.spans("t", with_content=True)[-1]["input"][0]["content"]
    assert len(text) <= 8192 and "cut" in text
    off = TraceStore(capture_content=False)
    off.apply(start("s", input="secret"))
    off.apply(end("s", T0 + 1, output="answer"))
    assert off.spans("t", with_content=True)[0]["input"] is None
    assert off.spans("t", with_content=True)[0]["output"] is None


def test_snapshot_of_many_traces_stays_small_and_query_filters() -> None:
    store = TraceStore()
    for i in range(500):
        agent = f"agent_{i % 7}_" + "n" * 60
        store.apply(
            ev(
                "span.started",
                agent=agent,
                trace=f"job-{i:04d}-" + "x" * 100,
                span="s",
                name="a long span name " * 8,
                kind="task",
            )
        )
        if i % 3 == 0:
            store.apply(
                ev(
                    "span.ended",
                    agent=agent,
                    trace=f"job-{i:04d}-" + "x" * 100,
                    span="s",
                    status="error",
                    error="E" * 500,
                )
            )
    snap = store.snapshot()
    assert len(json.dumps(snap)) <= 64 * 1024
    assert snap["total"] == 500 and sum(snap["counts"].values()) == 500
    assert snap["traces"][0]["id"].startswith("job-0499")  # newest first
    failed = store.query(status="failed", limit=None)
    assert len(failed) == 167 and all(t["status"] == "failed" for t in failed)
    mine = store.query(agent="agent_3_" + "n" * 60, limit=None)
    assert len(mine) == len([i for i in range(500) if i % 7 == 3])
    assert [t["id"][:8] for t in store.query(text="JOB-0042")] == ["job-0042"]
    with pytest.raises(ValueError):
        store.query(status="nope")


# -- the encoder (what a view is sent) ----------------------------------------------------------
def test_encoder_sends_everything_then_only_what_changed() -> None:
    store = TraceStore(clock=FakeClock(T0 + 10))
    store.apply(start("r", ts=T0, kind="task", name="root"))
    store.apply(start("c", "r", ts=T0 + 0.5, name="call"))
    enc = TraceEncoder(store, "t")
    first = enc.next()
    assert first is not None and first["reset"] and first["t0"] == T0
    assert first["rows"]["i0"] == 0 and first["rows"]["p"] == [-1, 0]
    assert first["rows"]["s"] == [0, 500] and first["rows"]["d"] == [None, None]
    names = [first["strings"][k] for k in first["rows"]["n"]]
    assert names == ["root", "call"]
    assert enc.next() is None  # nothing changed
    store.apply(end("c", T0 + 2))
    second = enc.next()
    assert second is not None and not second["reset"]
    assert second["rows"]["i0"] == 1 and second["rows"]["d"] == [1500]
    assert second["strings"] == ["ok"]  # "call", "llm" were sent already; "ok" is new


def test_encoder_pages_a_two_thousand_span_trace_under_64_kib() -> None:
    store = TraceStore(max_spans=2_000)
    rng = random.Random(1)
    for i in range(2_000):
        parent = f"s{rng.randrange(i)}" if i else None
        store.apply(
            start(
                f"s{i}",
                parent,
                ts=T0 + i * 0.01,
                name=f"tool_{i % 40}",
                kind=rng.choice(["llm", "tool", "task"]),
            )
        )
        if i % 40:
            store.apply(end(f"s{i}", T0 + i * 0.01 + rng.uniform(0, 5)))
    enc = TraceEncoder(store, "t")
    sizes, rows = [], 0
    while (patch := enc.next()) is not None:
        sizes.append(len(json.dumps(patch)))
        rows += len(patch["rows"]["p"])
        if not patch["more"]:
            break
    assert rows == 2_000 and max(sizes) <= 64 * 1024, sizes
    assert len(sizes) <= 2  # compact (~30 bytes a span): 2,000 spans in at most two messages


def test_encoder_of_a_missing_trace_says_so_once() -> None:
    enc = TraceEncoder(TraceStore(), "nope")
    patch = enc.next()
    assert patch is not None and patch["missing"] and patch["rows"]["i"] == []
    assert enc.next() is None


# -- properties ---------------------------------------------------------------------------------
@st.composite
def traces(draw: Any) -> dict[str, Any]:
    n = draw(st.integers(1, 30))
    spans = []
    for i in range(n):
        begin = draw(st.floats(0, 100))
        spans.append(
            {
                "id": f"s{i}",
                "parent": draw(st.integers(-1, i - 1)) if i else -1,
                "start": begin,
                "end": begin + draw(st.floats(0, 50)),
                "prompt": draw(st.integers(0, 5_000)),
                "completion": draw(st.integers(0, 5_000)),
                "error": draw(st.booleans()),
                "started": draw(st.booleans()),
                "ended": draw(st.booleans()),
            }
        )
    return {"spans": spans, "seed": draw(st.integers(0, 2**32)), "dup": draw(st.booleans())}


def _events(case: dict[str, Any]) -> list[Event]:
    events = []
    for s in case["spans"]:
        parent = f"s{s['parent']}" if s["parent"] >= 0 else None
        if s["started"]:
            events.append(start(s["id"], parent, ts=T0 + s["start"], name=s["id"]))
        if s["ended"]:
            events.append(
                end(
                    s["id"],
                    T0 + s["end"],
                    prompt_tokens=s["prompt"],
                    completion_tokens=s["completion"],
                    cost_usd=s["prompt"] / 1e6,
                    status="error" if s["error"] else "ok",
                    error="x",
                )
            )
    rng = random.Random(case["seed"])
    rng.shuffle(events)
    if case["dup"]:
        events += rng.sample(events, len(events) // 2)  # repeats, anywhere after
        rng.shuffle(events)
    return events


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traces())
def test_any_order_gives_the_same_exact_tree_and_totals(case: dict[str, Any]) -> None:
    store = TraceStore()
    for event in _events(case):
        store.apply(event)
    seen = [s for s in case["spans"] if s["started"] or s["ended"]]
    spans = by_id(store)
    assert set(spans) == {s["id"] for s in seen}
    for s in seen:
        got = spans[s["id"]]
        if s["started"]:  # the parent is known from the start event
            assert got["parent_id"] == (f"s{s['parent']}" if s["parent"] >= 0 else None)
            assert got["start"] == T0 + s["start"]
        if s["ended"]:
            assert got["end"] == T0 + s["end"]
            assert got["status"] == ("error" if s["error"] else "ok")
        else:
            assert got["end"] is None and got["status"] == "running"
    summary = store.get("t")
    if not seen:
        assert summary is None
        return
    assert summary is not None
    ended = [s for s in seen if s["ended"]]
    assert summary["prompt_tokens"] == sum(s["prompt"] for s in ended)
    assert summary["completion_tokens"] == sum(s["completion"] for s in ended)
    assert summary["cost_usd"] == pytest.approx(sum(s["prompt"] for s in ended) / 1e6, abs=1e-6)
    assert summary["errors"] == sum(1 for s in ended if s["error"])
    assert summary["open"] == sum(1 for s in seen if s["started"] and not s["ended"])
    assert summary["spans"] == len(seen)


@settings(max_examples=60, deadline=None)
@given(traces(), st.integers(1, 8))
def test_over_the_span_cap_totals_stay_exact(case: dict[str, Any], cap: int) -> None:
    for s in case["spans"]:
        s["started"] = True  # every span announces itself once: omitted spans count exactly
    case["dup"] = False
    store = TraceStore(max_spans=cap)
    for event in _events(case):
        store.apply(event)
    n = len(case["spans"])
    summary = store.get("t")
    assert summary is not None
    assert len(store.spans("t")) == min(n, cap) and summary["spans"] == n
    assert summary["omitted"] == max(0, n - cap)
    ended = [s for s in case["spans"] if s["ended"]]
    assert summary["prompt_tokens"] == sum(s["prompt"] for s in ended)
    assert summary["errors"] == sum(1 for s in ended if s["error"])


def test_a_span_first_seen_without_meaning_becomes_the_task_it_turns_out_to_be() -> None:
    """OpenTelemetry in the kernel: LangChain's span is published as `span.started` (kind
    other, no agent) when it starts, and as `agent.task.started` with the same span id once its
    attributes show it is an agent: one span, upgraded, never two."""
    store = TraceStore(clock=FakeClock(T0))
    store.apply(start("s1", kind="other", agent=None, ts=T0))
    store.apply(start("s2", "s1", kind="llm", agent=None, ts=T0 + 0.1))
    store.apply(ev("agent.task.started", agent="coder", span="s1", ts=T0, task="Write code"))
    spans = by_id(store)
    assert len(spans) == 2
    assert spans["s1"]["kind"] == "task" and spans["s1"]["agent"] == "coder"
    assert spans["s1"]["name"] == "Write code"
    assert "coder" in store.get("t")["agents"]  # type: ignore[index]
    store.apply(ev("agent.task.completed", agent="coder", span="s1", ts=T0 + 1, duration=1.0))
    store.apply(end("s2", T0 + 0.5))
    assert store.get("t")["open"] == 0  # type: ignore[index]
