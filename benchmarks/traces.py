"""Section 11: traces (spans), from the agent's call to the browser's waterfall.

a) Agent side: what a span costs the calling thread. An agent thread runs ``llm_call`` enter,
   ``c.tokens(...)`` and exit (two events), timed with ``perf_counter_ns``, in bursts of 20 every
   millisecond, while the hub runs on its own loop thread (the agent only hands the events to the
   hub's buffer); side by side, in the same run, ``task()`` enter and exit (what every task
   already cost) and two plain ``publish_threadsafe`` calls (the two events a span is).
b) Hub side: complete spans (a start and an end; LLM calls with tokens and a model priced from
   the table, 20 spans per job trace under a task) applied through ``publish_many`` in batches of
   1,000, best of 3: spans/s with every store subscribed (the trace store and the agent registry
   read span events). Budget: >= 100,000 spans/s.
c) The ingest section's mixed stream, published with ``Hub.publish`` on a hub as it was before
   traces and alerts (the trace, usage and alert stores unsubscribed: the agent registry, queue,
   graph, flows, logs, system and custom stores) and on a whole hub (the trace store, the usage
   windows, the alerts with the default rules), the stream's tasks carrying the trace and span
   ids the agent API now gives them (spans on): runs interleaved, best of 5 each, ratio.
   Budget: >= 0.8x.
d) Browser: a notebook builds a 2,000-span trace (50 spans open) and displays a ``TraceView``
   with it selected, in JupyterLab in Chromium: the JS time of drawing all 2,000 rows (summed over
   the messages they came in) and the time from the view's first render to the last row drawn;
   then, while the 50 open spans grow and the kernel updates one of them every 100 ms (so a patch
   arrives with each of its frames), ``requestAnimationFrame`` callbacks counted for 10 s (5 s
   with ``--quick``): frames/s and the longest gap. Budgets: draw < 200 ms, >= 10 frames/s.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from ._report import Section, fmt_rate, percentile, wait_for_quiet

SPANS_BUDGET = 100_000.0
RATIO_BUDGET = 0.8
DRAW_BUDGET_MS = 200.0
FPS_BUDGET = 10.0
TRACE_SPANS = 2_000
OPEN_SPANS = 50


# -- a) the agent's side ---------------------------------------------------------------------------
def agent_side(seconds: float) -> dict[str, dict[str, float]]:
    """p50/p99 (µs) of a span, a task and two publish_threadsafe calls in an agent thread."""
    from codeur_widgets.core.hub import Hub

    ready = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        hub = Hub(collect_system=False, thread_buffer=1_000_000)
        hub.start()
        box["hub"] = hub
        ready.set()
        while not box.get("done"):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        box["health"] = hub.health()
        await hub.aclose()

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    ready.wait(10)
    hub = box["hub"]
    agent = hub.agent("coding_agent", model="gpt-4o")

    def llm(n: int) -> None:
        with agent.llm_call(model="gpt-4o") as c:
            c.tokens(prompt=800, completion=200)

    def task(n: int) -> None:
        with agent.task("Implement #42"):
            pass

    publish = hub.publish_threadsafe

    def two(n: int) -> None:
        publish("agent.task.started", "coding_agent", task="Implement #42", task_id=f"t{n}")
        publish("agent.task.completed", "coding_agent", task_id=f"t{n}")

    out: dict[str, dict[str, float]] = {}
    clock = time.perf_counter_ns
    try:
        with agent.task("benchmark", job_id="bench-job"):  # the spans nest under a task
            for key, call in (("llm_call", llm), ("task", task), ("two_events", two)):
                wait_for_quiet(limit=10.0)
                times: list[int] = []
                end = time.monotonic() + seconds
                n = 0
                while time.monotonic() < end:
                    for _ in range(20):
                        t0 = clock()
                        call(n)
                        times.append(clock() - t0)
                        n += 1
                    time.sleep(0.001)
                us = [t / 1000 for t in times]
                out[key] = {"p50": percentile(us, 50), "p99": percentile(us, 99), "calls": n}
    finally:
        box["done"] = True
        thread.join(30)
    out["health"] = {"dropped": float(box.get("health", {}).get("dropped", -1))}
    return out


# -- b) the hub's side -----------------------------------------------------------------------------
def span_events(spans: int, per_trace: int = 20) -> list[Any]:
    """``spans`` complete spans as events: per job trace, a task and ``per_trace - 1`` LLM calls
    under it (model and tokens, no cost: priced from the table)."""
    from codeur_widgets.core.events import Event
    from codeur_widgets.core.spans import new_span_id

    out: list[Event] = []
    t = time.time()
    for k in range(spans // per_trace):
        trace = f"bench-{k}"
        root = new_span_id()
        out.append(
            Event(
                "agent.task.started",
                "coding_agent",
                {"task": f"Implement {trace}", "task_id": root, "job_id": trace},
                t,
                f"r{k}",
                trace,
                root,
            )
        )
        for j in range(per_trace - 1):
            sid = new_span_id()
            out.append(
                Event(
                    "span.started",
                    "coding_agent",
                    {
                        "name": "llm gpt-4o",
                        "kind": "llm",
                        "parent_id": root,
                        "job_id": trace,
                        "model": "gpt-4o",
                    },
                    t,
                    f"s{k}.{j}",
                    trace,
                    sid,
                )
            )
            out.append(
                Event(
                    "span.ended",
                    "coding_agent",
                    {
                        "status": "ok",
                        "model": "gpt-4o",
                        "prompt_tokens": 800,
                        "completion_tokens": 200,
                    },
                    t + 0.5,
                    f"e{k}.{j}",
                    trace,
                    sid,
                )
            )
        out.append(
            Event(
                "agent.task.completed",
                "coding_agent",
                {"task_id": root, "job_id": trace, "duration": 1.0},
                t + 1,
                f"c{k}",
                trace,
                root,
            )
        )
    return out


def hub_spans_rate(spans: int) -> float:
    from codeur_widgets.core.hub import Hub

    events = span_events(spans)
    best = float("inf")
    for _ in range(3):
        hub = Hub(collect_system=False)
        hub.prices.cost("gpt-4o", 1, 1)  # the table's import is not what is measured
        t0 = time.perf_counter()
        for i in range(0, len(events), 1_000):
            hub.publish_many(events[i : i + 1_000])
        hub.traces.fold()  # the last batch handed over is part of the work
        best = min(best, time.perf_counter() - t0)
    return spans / best


# -- c) the mixed stream, with and without spans --------------------------------------------------
def mixed_rates(n: int) -> dict[str, float]:
    """events/s of the mixed stream: before traces and alerts, and with every store, spans on."""
    from codeur_widgets.core.hub import Hub
    from codeur_widgets.core.spans import new_span_id

    from .workload import mixed_stream, without_new_stores

    plain = mixed_stream(n)
    # The same stream as the agent API sends it now: each task is a span of its job's trace.
    traced: list[tuple[str, str | None, dict[str, Any], str | None, str | None]] = []
    open_span: dict[str, tuple[str, str]] = {}
    for topic, agent, data in plain:
        if topic == "agent.task.started" and agent:
            ids = (data["job_id"], new_span_id())
            open_span[agent] = ids
            traced.append((topic, agent, {**data, "task_id": ids[1]}, *ids))
        elif topic == "agent.task.completed" and agent and agent in open_span:
            trace_id, span_id = open_span.pop(agent)
            traced.append((topic, agent, {**data, "task_id": span_id}, trace_id, span_id))
        else:
            traced.append((topic, agent, data, None, None))

    def elapsed(with_traces: bool) -> float:
        hub = Hub(collect_system=False)
        if not with_traces:  # as before traces and alerts: none of their stores on the bus
            without_new_stores(hub)
        publish = hub.publish
        t0 = time.perf_counter()
        if with_traces:
            for topic, agent, data, trace_id, span_id in traced:
                publish(topic, agent, data=data, trace_id=trace_id, span_id=span_id)
        else:
            for topic, agent, data in plain:
                publish(topic, agent, data=data)
        hub.traces.fold()  # the store folds in batches: the last one is part of the work
        return time.perf_counter() - t0

    # Interleaved (without, with, without, ...), best of 5 each: on a shared machine the load
    # drifts, and two back-to-back blocks would each see a different machine.
    best = {False: float("inf"), True: float("inf")}
    for _ in range(5):
        for with_traces in (False, True):
            best[with_traces] = min(best[with_traces], elapsed(with_traces))
    return {"without": n / best[False], "with": n / best[True]}


# -- d) the browser --------------------------------------------------------------------------------
WATERFALL_SETUP = f"""
from codeur_widgets import Hub, TraceView
hub = Hub(topology="empty", collect_system=False)
hub.start()
agents = ["request_planner", "code_planner", "coding_agent", "rag_service", "git_operations"]
now = hub.clock()
t0 = now - 60.0
hub.publish("job.enqueued", job_id="big", kind="benchmark", ts=t0)
hub.publish("agent.task.started", "request_planner", trace_id="big", span_id="root",
            task="the whole job", task_id="root", ts=t0)
OPEN = []
for i in range(1, {TRACE_SPANS}):
    start = t0 + i * 0.025
    parent = "root" if i < 40 else f"s{{(i * 7) % (i - 1) + 1}}" if i % 3 else "root"
    ids = {{"trace_id": "big", "span_id": f"s{{i}}"}}
    hub.publish("span.started", agents[i % 5], **ids, name=f"call {{i % 60}}",
                kind=["llm", "tool", "retrieval", "task"][i % 4], parent_id=parent, ts=start)
    if i % 39 == 0 and len(OPEN) < {OPEN_SPANS}:
        OPEN.append(ids)
    else:
        hub.publish("span.ended", agents[i % 5], **ids, status="error" if i % 97 == 0 else "ok",
                    ts=start + 0.02 + (i % 13) * 0.01)
print("SPANS", hub.traces.get("big")["spans"], "OPEN", hub.traces.get("big")["open"])
view = TraceView(hub, selected="big", height=600)
view
"""

WATERFALL_RUN = """
{wait}
# Live: every 100 ms one of the 50 open spans reports its first token (a span.updated): a patch
# reaches the page with each frame of the kernel while the open spans grow in the browser.
k = 0
t_end = time.monotonic() + {seconds}
while time.monotonic() < t_end:
    hub.publish("span.updated", "coding_agent", **OPEN[k % len(OPEN)], first_token_at=hub.clock())
    k += 1
    await asyncio.sleep(0.1)
print("WATERFALL_DONE", k)
"""

DRAWN_JS = """
(count) => new Promise((resolve) => {
  const t0 = performance.now();
  const step = () => {
    const root = document.querySelector('.cw-trace-view');
    const rows = root ? root.querySelectorAll('.cw-tr-row').length : 0;
    if (rows >= count || performance.now() - t0 > 60000) {
      const d = root ? root.dataset : {};
      resolve({rows, drawMs: Number(d.drawMs ?? NaN), draws: Number(d.draws ?? 0),
               renderToDrawnMs: Number(d.lastDrawAt ?? NaN) - Number(d.renderedAt ?? NaN),
               open: root ? root.querySelectorAll('.cw-tr-row[data-open="true"]').length : 0});
    } else requestAnimationFrame(step);
  };
  step();
})
"""

RENDERED_JS = """
() => new Promise((resolve) => {
  const t0 = performance.now();
  const step = () => {
    const found = document.querySelector('.cw-trace-view');
    if (found || performance.now() - t0 > 90000) resolve(performance.now());
    else requestAnimationFrame(step);
  };
  step();
})
"""


def waterfall(ctx: Any, seconds: float) -> dict[str, Any]:
    from ._browser import WAIT_FOR_GO
    from .views import FRAMES_JS, _fps

    session = ctx.browser
    name = session.notebook(
        "trace_waterfall.ipynb",
        [WATERFALL_SETUP, WATERFALL_RUN.format(wait=WAIT_FOR_GO, seconds=2 * seconds + 6)],
    )
    out: dict[str, Any] = {}
    try:
        with session.page({"width": 1440, "height": 1200}) as page:
            session.start_notebook(page, name)
            rendered = page.evaluate(RENDERED_JS)  # the view's element exists: it renders now
            drawn = page.evaluate(DRAWN_JS, TRACE_SPANS)
            out["drawn"] = drawn
            out["rendered_at_ms"] = rendered
            out["render_to_drawn_ms"] = drawn["renderToDrawnMs"]  # first render → last draw
            page.locator(".cw-trace-view").scroll_into_view_if_needed()
            session.go()
            page.wait_for_timeout(1500)  # patches are arriving, open spans growing
            out["fps"] = _fps(page.evaluate(FRAMES_JS, seconds * 1000))
            out["open_shown"] = page.evaluate(
                "() => document.querySelectorAll('.cw-tr-row[data-open=\"true\"]').length"
            )
            out["rows_shown"] = page.evaluate(
                "() => document.querySelectorAll('.cw-tr-row').length"
            )
            session.wait_output(page, r"WATERFALL_DONE (\d+)", timeout_s=60)
    finally:
        session.shutdown_kernels()
    return out


def _us(x: float) -> str:
    return f"{x:.1f} µs"


def run(ctx: Any) -> Section:
    from ._browser import available

    section = Section("traces", "11. Traces (spans)")
    seconds = 1.0 if ctx.quick else 3.0
    a = agent_side(seconds)
    t = section.table("agent thread, hub on its own loop", "calls", "p50", "p99", "p50 vs task()")
    labels = {
        "llm_call": "llm_call enter + tokens + exit (2 events)",
        "task": "task() enter + exit (2 events)",
        "two_events": "2 × publish_threadsafe",
    }
    for key, label in labels.items():
        r = a[key]
        t.add(
            label,
            f"{int(r['calls']):,}",
            _us(r["p50"]),
            _us(r["p99"]),
            f"{r['p50'] / a['task']['p50']:.2f}×",
        )
    section.data["agent"] = a

    n = 30_000 if ctx.quick else 100_000
    wait_for_quiet()
    spans = hub_spans_rate(n)
    wait_for_quiet()
    mixed = mixed_rates(n)
    ratio = mixed["with"] / mixed["without"]
    t = section.table("hub side (best of 3)", "rate", "ratio")
    t.add(
        "complete spans applied (publish_many, every store)",
        f"{fmt_rate(spans)} spans/s",
        f"{spans / SPANS_BUDGET:.2f}× budget",
    )
    t.add(
        "mixed stream, before traces and alerts (no trace, usage, alert stores)",
        f"{fmt_rate(mixed['without'])} events/s",
        "1×",
    )
    t.add(
        "mixed stream, tasks as spans, every store (traces, usage, alerts)",
        f"{fmt_rate(mixed['with'])} events/s",
        f"{ratio:.2f}×",
    )
    section.budget(
        "traces: complete spans applied by the hub",
        f">= {fmt_rate(SPANS_BUDGET)}/s",
        f"{fmt_rate(spans)}/s",
        spans >= SPANS_BUDGET,
    )
    section.budget(
        "traces: mixed stream with spans vs without",
        f">= {RATIO_BUDGET}×",
        f"{ratio:.2f}×",
        ratio >= RATIO_BUDGET,
    )
    section.data.update(spans_per_s=spans, mixed=mixed, ratio=ratio)

    why = available()
    if why:
        section.notes.append(f"waterfall skipped: {why}")
        section.budget("traces: waterfall first draw", f"< {DRAW_BUDGET_MS:.0f} ms", why, None)
        section.budget("traces: waterfall frames/s", f">= {FPS_BUDGET:.0f}", why, None)
        return section
    w = waterfall(ctx, 5.0 if ctx.quick else 10.0)
    drawn, fps = w["drawn"], w["fps"]
    t = section.table(
        f"waterfall of a {TRACE_SPANS:,}-span trace in Chromium",
        "rows",
        "open",
        "measured",
    )
    t.add(
        f"draw of all rows (JS time, {drawn['draws']} message(s))",
        drawn["rows"],
        drawn["open"],
        f"{drawn['drawMs']:.0f} ms",
    )
    t.add(
        "first render → last row drawn (kernel frames included)",
        drawn["rows"],
        drawn["open"],
        f"{w['render_to_drawn_ms']:.0f} ms",
    )
    t.add(
        f"{OPEN_SPANS} open spans growing, a patch every 100 ms: frames/s (rAF)",
        w["rows_shown"],
        w["open_shown"],
        f"{fps['fps']:.1f} (longest gap {fps['longest_ms']:.0f} ms)",
    )
    section.budget(
        f"traces: waterfall draw of {TRACE_SPANS:,} spans",
        f"< {DRAW_BUDGET_MS:.0f} ms",
        f"{drawn['drawMs']:.0f} ms",
        drawn["rows"] >= TRACE_SPANS and drawn["drawMs"] < DRAW_BUDGET_MS,
    )
    section.budget(
        f"traces: waterfall frames/s, {OPEN_SPANS} spans open",
        f">= {FPS_BUDGET:.0f}",
        f"{fps['fps']:.1f}",
        fps["fps"] >= FPS_BUDGET,
    )
    section.notes.append(
        "a span is two events (start, end); the agent's rows hand them to the hub's buffer (the "
        "loop applies them), the hub's rows apply them to every store"
    )
    section.data["waterfall"] = w
    return section
