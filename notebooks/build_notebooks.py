"""Writes the tutorial notebooks in this folder from the cell lists below, without outputs.

The notebooks are the source users open; this script is how they are kept tidy (no outputs,
no execution counts, the same kernelspec) and easy to review in diffs. Edit a cell here, then:

    .venv/bin/python notebooks/build_notebooks.py

Each notebook runs under ``pytest --nbval-lax notebooks`` (part of ``make test``) in well under
20 seconds. Cells whose output varies from run to run start with ``# NBVAL_IGNORE_OUTPUT``.

Cells for notebook readers only (prose around the dashboard, a look at the data) carry the tag
``notebook-only``: Voila removes them (``voila.json``, ``make voila``), so the same notebook
served as an app is a dashboard page, not a page of notebook prose.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}

NOTEBOOK_ONLY = "notebook-only"
"""The tag of cells that Voila leaves out (see voila.json)."""

Cell = tuple[str, str, tuple[str, ...]]  # ("md" | "code", source, tags)


def md(text: str, *tags: str) -> Cell:
    return ("md", text.strip("\n"), tags)


def code(text: str, *tags: str) -> Cell:
    return ("code", text.strip("\n"), tags)


QUICKSTART: list[Cell] = [
    md(
        """
# codeur-widgets: quickstart

A live operations dashboard for a multi-agent LLM system, in this notebook.

`Dashboard.demo()` builds a fresh `Hub` (the in-kernel event bus and stores) and starts a
`Simulator` that runs Codeur-style jobs through five agents: the request planner, the code
planner, the coding agent, the RAG service and git operations. What you see:

* **header**: is the hub live, how many events per second, anything dropped or rejected;
* **agent cards**: each agent's status, current task, heartbeat, task counts, tokens and cost;
* **agent graph**: who talks to whom; edges light up and animate as messages flow;
* **job queue**: queued / processing / completed / failed, wait and run times, throughput;
* **system**: CPU, memory, this kernel's process (and GPUs when there are any);
* **logs**: the newest log lines, with level, source and text filters (click a line written
  inside a job to open its trace);
* **traces**: every job as it runs: click one to see its waterfall of tasks, LLM calls, tool
  calls and retrievals, open ones growing, failed ones red; click a span for its prompt, answer,
  tokens, cost and error;
* **controls**: the time range (live 5 min / 15 min / 1 h, or any past range from history, with
  *Back to live*), pause the view, the sampling interval, the simulator's start/stop and speed,
  commands to one agent (pause, resume, cancel its task, restart, mark offline, forget), reset
  counters and a JSON snapshot download. Every action is logged under the source `admin`.

The demo stores everything it sees in a SQLite history file (`history=`), so a past range can be
shown; pass a path of your own (`Hub(history="runs.sqlite")`) to keep a run across kernel
restarts.

Everything travels over Jupyter comms: no extra server, no iframe. The same one-liner works in
JupyterLab, Notebook 7, VS Code and Voila.
""",
        NOTEBOOK_ONLY,
    ),
    code(
        """
import os, tempfile
from codeur_widgets import Dashboard

dash = Dashboard.demo(history=os.path.join(tempfile.mkdtemp(), "demo.sqlite"))
dash
"""
    ),
    md(
        """
The simulator keeps running in the background, so the dashboard keeps moving. The same state is
available as plain data, e.g. the hub's own health:
""",
        NOTEBOOK_ONLY,
    ),
    code(
        """
# NBVAL_IGNORE_OUTPUT
health = dash.hub.health()
print(
    f"running: {health['running']}, {health['events_per_second']:.0f} events/s, "
    f"{health['accepted']:,} accepted, {health['dropped']} dropped, {health['rejected']} rejected"
)
""",
        NOTEBOOK_ONLY,
    ),
    md(
        """
Next steps:

* [02_drive_the_simulator.ipynb](02_drive_the_simulator.ipynb): run jobs one cell at a time,
  inject failures, read the snapshots, and use each panel on its own;
* [03_instrument_your_agents.ipynb](03_instrument_your_agents.ipynb): feed the dashboard from
  your own agents, logging and topology.

To stop the demo (the simulator and its hub), run `dash.close()`.
""",
        NOTEBOOK_ONLY,
    ),
]


DRIVE_THE_SIMULATOR: list[Cell] = [
    md(
        """
# Driving the simulator, one job at a time

We create a `Hub` and run the `Simulator` by hand, so each cell makes one visible thing happen,
and show the panels that matter right under the cells that drive them. With `time_scale=10.0`
simulated work runs ten times faster than the delays it models.
"""
    ),
    code(
        """
from codeur_widgets import (
    AgentCards,
    AgentGraphView,
    Dashboard,
    Hub,
    LogTail,
    QueueStats,
    Simulator,
    SystemMetrics,
)

hub = Hub()
sim = Simulator(hub, seed=1, time_scale=10.0)
"""
    ),
    md(
        """
## One job, end to end

A Codeur job: the user's request goes to the request planner, which asks the code planner for a
plan (with context from the RAG service); the coding agent writes the change and hands it to git
operations. The cell shows the agent cards and the graph, then runs the job: watch the cards
change status and the graph's edges light up while it runs. (Displaying a widget starts the hub
on the kernel's event loop.)
"""
    ),
    code(
        """
# NBVAL_IGNORE_OUTPUT
display(AgentCards(hub), AgentGraphView(hub, height=260))
result = await sim.run_job()
result
"""
    ),
    md(
        """
Once more, and the panels above move again:
"""
    ),
    code(
        """
# NBVAL_IGNORE_OUTPUT
await sim.run_job()
"""
    ),
    md(
        """
## A failure

`inject_error` makes the named agent fail its next task: its card turns red with the error, the
job is counted as failed in the queue panel, and the error shows in the log tail, all right
under this cell.
"""
    ),
    code(
        """
# NBVAL_IGNORE_OUTPUT
display(AgentCards(hub), QueueStats(hub), LogTail(hub, level="WARNING", height=160))
sim.inject_error("coding_agent")
await sim.run_job()
"""
    ),
    md(
        """
## The same state as data

`hub.snapshot()` returns what the panels show, as plain JSON-serialisable dicts (one per store).
The shapes are documented in `docs/internals.md`.
"""
    ),
    code(
        """
snap = hub.snapshot()
sorted(snap)
"""
    ),
    code(
        """
queue = snap["queue"]
print({key: queue[key] for key in ("queued", "processing", "completed", "failed")})
assert queue["completed"] + queue["failed"] == 3  # the three jobs above
assert queue["failed"] >= 1  # the injected error
"""
    ),
    code(
        """
# NBVAL_IGNORE_OUTPUT
for agent in snap["agents"]["agents"]:
    tokens = agent["prompt_tokens"] + agent["completion_tokens"]
    print(
        f"{agent['name']:16} {agent['status']:8} done={agent['tasks_completed']:<3} "
        f"failed={agent['tasks_failed']:<3} tokens={tokens}"
    )
"""
    ),
    code(
        """
# NBVAL_IGNORE_OUTPUT
snap["flows"]["stats"]
"""
    ),
    code(
        """
# NBVAL_IGNORE_OUTPUT
for line in snap["logs"]["lines"][-8:]:
    print(f"{line['level']:8} {line['source']:16} {line['message']}")
"""
    ),
    md(
        """
## Each panel on its own

Every panel of the dashboard is a widget you can display by itself; all of them follow the same
hub, so they show the same live state as the panels above. Two you have not seen yet:
"""
    ),
    code("SystemMetrics(hub)"),
    code("LogTail(hub)"),
    md(
        """
## In the background, on the whole dashboard

`sim.start(...)` keeps jobs coming (on the kernel's event loop, so cells stay usable) until
`sim.stop()`. The next cell starts it and shows the whole dashboard under it; stop it with the
cell after.
"""
    ),
    code(
        """
sim.start(jobs_per_minute=60)
Dashboard(hub, title="simulator in the background")
"""
    ),
    code(
        """
sim.stop()
print(sim)
"""
    ),
]


INSTRUMENT: list[Cell] = [
    md(
        """
# Instrumenting your own agents

The dashboard does not need the simulator: anything that publishes events to a `Hub` shows up.
This notebook wires a small, made-up "research" pipeline of three agents into it.

For agents that run in other processes or on other machines, publish the same events through
Redis Streams (`codeur_widgets.transports`) and give the hub a source; the views are the same.
"""
    ),
    md(
        """
## A custom topology

`Hub(topology=...)` takes `"codeur"` (the default), `"empty"`, a `networkx.DiGraph`, or a dict of
`nodes` and `edges`. Node positions (`x`, `y`) are optional; nodes without one are placed
automatically. Agents and edges that appear in events but not in the topology are added to the
graph too, without moving the nodes already placed. Displaying the dashboard starts the hub on
the kernel's event loop.
"""
    ),
    code(
        """
import asyncio
import logging

from codeur_widgets import AgentCards, Dashboard, Hub

topology = {
    "nodes": [
        {"id": "user", "label": "User", "role": "external", "x": 0, "y": 100},
        {"id": "planner", "label": "Planner", "role": "planner", "x": 180, "y": 0},
        {"id": "researcher", "label": "Researcher", "role": "executor", "x": 360, "y": 100},
        {"id": "writer", "label": "Writer", "role": "executor", "x": 180, "y": 200},
    ],
    "edges": [
        {"source": "user", "target": "planner", "type": "requests"},
        {"source": "planner", "target": "researcher", "type": "tasks"},
        {"source": "researcher", "target": "writer", "type": "notes"},
        {"source": "writer", "target": "user", "type": "answers"},
    ],
}
hub = Hub(topology=topology)
Dashboard(hub, title="my agents")
"""
    ),
    md(
        """
## Agents, tasks, tokens and messages

`hub.agent(name, model=..., role=...)` registers an agent and keeps its heartbeat going.
`agent.task(...)` is a context manager (sync or async): the card shows the task while it runs,
then counts it as completed, or as failed with the error if the block raises. Inside it,
`t.tokens(...)` adds token usage and cost, and `agent.send(target, kind)` draws a message on the
graph. The cards under the next cell follow along.
"""
    ),
    code(
        """
planner = hub.agent("planner", model="gpt-4o-mini", role="planner")
researcher = hub.agent("researcher", model="gpt-4o", role="executor")
writer = hub.agent("writer", model="claude-3-5-sonnet", role="executor")


async def answer(question: str, job_id: str) -> None:
    hub.publish("job.enqueued", job_id=job_id, kind="question")
    hub.publish("agent.message", "user", data={"target": "planner", "kind": "question"})
    hub.publish("job.started", job_id=job_id)
    async with planner.task(f"Plan: {question}", job_id=job_id) as t:
        await asyncio.sleep(0.2)
        t.tokens(prompt=350, completion=80, cost_usd=0.0004)
        planner.send("researcher", "subtask")
    async with researcher.task("Search and summarise", job_id=job_id) as t:
        await asyncio.sleep(0.4)
        t.tokens(prompt=2400, completion=500, cost_usd=0.011)
        researcher.send("writer", "notes")
    async with writer.task("Write the answer", job_id=job_id) as t:
        await asyncio.sleep(0.3)
        t.tokens(prompt=1200, completion=650, cost_usd=0.009)
        writer.send("user", "answer")
    hub.publish("job.completed", job_id=job_id, success=True)


display(AgentCards(hub))
await answer("Why is the sky blue?", "q-1")
await answer("What is a monad?", "q-2")
"""
    ),
    md(
        """
A task that raises is recorded as failed (the exception still propagates, as usual):
"""
    ),
    code(
        """
try:
    with writer.task("Write in Klingon", job_id="q-3"):
        raise ValueError("unsupported language: tlh")
except ValueError as exc:
    print("caught:", exc)
"""
    ),
    md(
        """
## Decorating a function

`@agent.instrument` wraps a function (sync or async) in a task named after it.
"""
    ),
    code(
        """
@researcher.instrument
async def fetch_sources(topic: str) -> list[str]:
    await asyncio.sleep(0.1)
    return [f"https://example.org/{topic}/{i}" for i in range(3)]


await fetch_sources("rayleigh-scattering")
"""
    ),
    md(
        """
## Logging

`hub.capture_logging(logger, level)` forwards records of a standard `logging` logger, from any
thread, to the log tail.
"""
    ),
    code(
        """
handler = hub.capture_logging("research", level="INFO")
log = logging.getLogger("research")
log.info("index refreshed: %d documents", 1284)
log.warning("rate limited by the search API, retrying in %.1f s", 1.5)
"""
    ),
    md(
        """
## Raw events

Everything above is built on `hub.publish(topic, agent, data=...)`; you can publish events
directly, e.g. custom gauges shown on an agent's card:
"""
    ),
    code(
        """
event = hub.publish("agent.metrics", "researcher", data={"cache_hit_rate": 0.82, "open_sockets": 3})
print(event.topic, event.agent, event.data)
"""
    ),
    md(
        """
The stores now hold what the dashboard shows:
"""
    ),
    code(
        """
snap = hub.snapshot()
agents = {a["name"]: a for a in snap["agents"]["agents"]}
print(sorted(agents))
writer_state = agents["writer"]
print(f"writer: {writer_state['tasks_completed']} done, {writer_state['tasks_failed']} failed")
assert writer_state["tasks_failed"] == 1
assert snap["queue"]["completed"] == 2
"""
    ),
    code(
        """
# NBVAL_IGNORE_OUTPUT
sorted(node["id"] for node in snap["graph"]["nodes"])
"""
    ),
]


TRACES: list[Cell] = [
    md(
        """
# Traces: what happened inside each job

Cards and counters say *that* something happens; a trace says *what happened inside one job*:
which agent did what, which LLM or tool call took how long, what the model was asked and
answered, what it cost, and where it failed. Spans are visible **while they run**: a hung LLM
call is an open bar that keeps growing.

Here two agents, a planner and a coder, are instrumented with `task`, `llm_call` and `tool_call`
(the LLM is faked with `asyncio.sleep`, so the notebook needs no API key). One of the coder's
calls is slow; we find it.
"""
    ),
    code(
        """
import asyncio

from codeur_widgets import Hub, TraceView

hub = Hub(topology="empty")
hub.start()
planner = hub.agent("planner", model="gpt-4o", role="planner")
coder = hub.agent("coder", model="claude-sonnet-4", role="executor")
"""
    ),
    md(
        """
Inside a task, `llm_call(model=..., messages=...)` and `tool_call(name, arguments)` are spans
of their own. They nest under the task (and under each other) by themselves, in sync code,
`async` code and threads. Report the first streamed token with `c.first_token()` (time to first
token, tokens/s), the answer with `c.output(...)` and the usage with `c.tokens(...)`: the cost
comes from the `genai-prices` table when you do not give it. An exception is recorded on the
span and re-raised.
"""
    ),
    code(
        """
async def plan(job_id: str, request: str) -> str:
    async with planner.task(f"Plan {job_id}", job_id=job_id):
        messages = [
            {"role": "system", "content": "You plan small code changes as numbered steps."},
            {"role": "user", "content": request},
        ]
        async with planner.llm_call(model="gpt-4o", messages=messages) as c:
            await asyncio.sleep(0.05)
            c.first_token()
            await asyncio.sleep(0.05)
            answer = "1. add a retry helper\\n2. use it in the HTTP client"
            c.output(answer)
            c.tokens(prompt=420, completion=60)
        planner.send("coder", "plan", job_id=job_id)
        return answer


async def implement(job_id: str, plan_text: str, slow: bool = False) -> None:
    async with coder.task(f"Implement {job_id}", job_id=job_id):
        for n, step in enumerate(plan_text.splitlines(), 1):
            messages = [{"role": "user", "content": f"Write the diff for: {step}"}]
            async with coder.llm_call(model="claude-sonnet-4", messages=messages) as c:
                # the provider queues the second step of the slow job
                await asyncio.sleep(1.5 if slow and n == 2 else 0.05)
                c.first_token()
                await asyncio.sleep(0.1)
                c.output(f"--- a/client.py\\n+++ b/client.py\\n@@ step {n} @@")
                c.tokens(prompt=900, completion=240)
            async with coder.tool_call("run_tests", {"path": "tests/", "args": ["-q"]}) as t:
                await asyncio.sleep(0.03)
                t.result("12 passed in 0.4 s")
"""
    ),
    md(
        """
`TraceView(hub)` lists the newest traces (a job is a trace: its id is the job id) with their
status, duration, agents, tokens, cost and errors. Click one to see its waterfall; click a span
for its details (messages, answer, tool arguments and result, tokens/s, cost). It is also a
panel of `Dashboard`.
"""
    ),
    code(
        """
view = TraceView(hub)
view
"""
    ),
    md(
        """
Three jobs; the second one has the slow call. Watch the list while the cell runs: the running
job's duration grows, and a selected running trace shows its open spans growing.
"""
    ),
    code(
        """
for i, slow in enumerate([False, True, False], start=1):
    job_id = f"job-{i}"
    hub.publish("job.enqueued", job_id=job_id, kind="retry-helper")
    hub.publish("job.started", job_id=job_id)
    steps = await plan(job_id, "Add retries with backoff to the HTTP client.")
    await implement(job_id, steps, slow=slow)
    hub.publish("job.completed", job_id=job_id, success=True)
"""
    ),
    md(
        """
## Find the slow call

The same data is in `hub.traces` (the store behind the view): summaries, spans, look-ups by
trace (job) id, agent, status or text.
"""
    ),
    code(
        """
spans = [span for trace_id in hub.traces.ids() for span in hub.traces.spans(trace_id)]
calls = [span for span in spans if span["kind"] in ("llm", "tool")]  # not the tasks around them
slowest = max(calls, key=lambda span: span["duration"] or 0.0)
print(slowest["kind"], slowest["name"], "in", slowest["job_id"], "by", slowest["agent"])
assert (slowest["kind"], slowest["job_id"]) == ("llm", "job-2") and slowest["duration"] > 1.0
"""
    ),
    code(
        """
# NBVAL_IGNORE_OUTPUT
view.selected = slowest["job_id"]  # open its waterfall above; the slow call is on the critical path
{k: slowest[k] for k in ("model", "duration", "ttft", "tokens_per_s", "cost_usd")}
"""
    ),
    md(
        """
## Failures, unknown prices and your own prices

A call that raises is a red span with the error's type and message; the trace counts it. A
model the price table does not know has its tokens counted and its cost shown as *unknown*,
never guessed, until you give it a price (USD per million tokens):
"""
    ),
    code(
        """
try:
    with coder.task("Refactor", job_id="job-4"):
        with coder.llm_call(model="my-local-llama", messages="Refactor client.py") as c:
            c.tokens(prompt=1000, completion=100)
        with coder.tool_call("git_push", {"remote": "origin"}):
            raise RuntimeError("git push rejected: non-fast-forward")
except RuntimeError as exc:
    print("caught:", exc)

summary = hub.traces.get("job-4")
print(summary["status"], summary["errors"], "error(s);", summary["cost_unknown"], "unpriced call")
hub.prices.set("my-local-llama", input_per_mtok=0.1, output_per_mtok=0.2)
"""
    ),
    md(
        """
Content (prompts, answers, tool arguments and results) is kept for calls made in this kernel
and dropped for events read from other processes, unless `Hub(capture_content=True)`;
`Hub(capture_content=False)` keeps none. Each text is cut at 8 KB. See
[docs/traces.md](../docs/traces.md) for the span events, so that other producers (your own
framework, OpenTelemetry) can feed the same view.
"""
    ),
]


OPENTELEMETRY: list[Cell] = [
    md(
        """
# Agents from any framework, through OpenTelemetry

Agent frameworks already describe their work as OpenTelemetry spans: pydantic-ai, LangChain and
LangGraph (through OpenInference), the OpenAI Agents SDK, CrewAI, smolagents, LlamaIndex...
`hub.instrument_otel()` adds a span processor to the OpenTelemetry SDK of this kernel, so their
agents fill the cards, the graph and the job queue **without any change to their code**.

Here: two [pydantic-ai](https://ai.pydantic.dev) agents, offline with pydantic-ai's own
`TestModel` (no API key, no network). A boss agent hands work to a joke writer through a tool
(an agent used as a tool), and a third agent's model fails.
"""
    ),
    md(
        """
## Set-up: one line for the dashboard

`Agent.instrument_all()` is pydantic-ai's own switch for its OpenTelemetry spans (with
LangChain it is `LangChainInstrumentor().instrument()`, with the OpenAI Agents SDK
`OpenAIAgentsInstrumentor().instrument()`). `hub.instrument_otel()` is the one line this
dashboard needs: it adds its processor to the tracer provider installed in this kernel, or
installs one.
"""
    ),
    code(
        """
from pydantic_ai import Agent, RunContext
from pydantic_ai.models.function import FunctionModel
from pydantic_ai.models.test import TestModel

from codeur_widgets import Dashboard, Hub

hub = Hub(topology="empty")
hub.instrument_otel()  # the one line
Agent.instrument_all()  # pydantic-ai: emit OpenTelemetry spans
Dashboard(hub, title="pydantic-ai agents")
"""
    ),
    md(
        """
## The agents: plain pydantic-ai code

Nothing below knows about the dashboard.
"""
    ),
    code(
        """
joke_writer = Agent(TestModel(), name="joke_writer", instructions="Write short jokes.")
boss = Agent(TestModel(), name="boss", instructions="Delegate jokes to the joke writer.")


@boss.tool
async def ask_joke_writer(ctx: RunContext[None], topic: str) -> str:
    result = await joke_writer.run(f"a joke about {topic}", usage=ctx.usage)
    return result.output


def unreachable(messages, info):
    raise ConnectionError("model endpoint unreachable")


flaky = Agent(FunctionModel(unreachable), name="flaky")
"""
    ),
    md(
        """
## Run them

Each run is an `invoke_agent` span: the card turns *working* the moment it starts, the LLM calls
inside it (`chat` spans) are attributed to it, the joke writer's run inside the boss's tool is a
delegation (an edge boss → joke_writer on the graph), and each run is a job in the queue.
"""
    ),
    code(
        """
import asyncio

for topic in ("cats", "compilers", "coffee"):
    await boss.run(f"tell me a joke about {topic}")
    await asyncio.sleep(0.3)
try:
    await flaky.run("hello")
except ConnectionError as exc:
    print("flaky failed:", exc)
"""
    ),
    md(
        """
The same state as plain data: the cards and the graph's edges.
"""
    ),
    code(
        """
from codeur_widgets.core.graph import snapshot_edges

for name in hub.agents.names():
    card = hub.agents.get(name)
    print(f"{name:12} done={card['tasks_completed']} failed={card['tasks_failed']} "
          f"model={card['model']}")
print(sorted(f"{e['source']} -> {e['target']}" for e in snapshot_edges(hub.graph.snapshot())))
"""
    ),
    md(
        """
## From other processes: OTLP

Agents in other processes or machines export their spans with OpenTelemetry's OTLP exporters;
the hub receives them itself (no collector needed, though one can forward to it):

```python
hub = Hub(sources=["otlp://127.0.0.1:4318"])          # OTLP/HTTP: POST /v1/traces, /v1/logs
hub = Hub(sources=["otlp+grpc://127.0.0.1:4317"])     # OTLP/gRPC
```

and in the agents' processes, the standard OpenTelemetry settings:
`OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318`. See `docs/otel.md` for tokens, limits, a
Collector configuration and the attribute mapping.
"""
    ),
]


NOTEBOOKS = {
    "01_quickstart.ipynb": QUICKSTART,
    "02_drive_the_simulator.ipynb": DRIVE_THE_SIMULATOR,
    "03_instrument_your_agents.ipynb": INSTRUMENT,
    "04_traces.ipynb": TRACES,
    "05_opentelemetry.ipynb": OPENTELEMETRY,
}


def build(cells: list[Cell]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    for kind, source, tags in cells:
        if kind == "md":
            cell = nbformat.v4.new_markdown_cell(source)
        else:
            cell = nbformat.v4.new_code_cell(source)
        if tags:
            cell.metadata["tags"] = list(tags)
        nb.cells.append(cell)
    # Stable cell ids, so rebuilding an unchanged notebook gives an identical file.
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
    nbformat.validate(nb)
    return nb


def main() -> int:
    for name, cells in NOTEBOOKS.items():
        nbformat.write(build(cells), str(HERE / name))
        print(f"wrote notebooks/{name} ({len(cells)} cells)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
