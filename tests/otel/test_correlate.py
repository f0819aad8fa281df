"""The correlator on span records (no SDK): ancestry, holding, delegation, usage once, jobs.

Each test feeds records in the order one of the two paths delivers them: in-process (``start``
when a span begins, ``end`` when it ends) or OTLP (only ``end``, children before parents).
"""

from __future__ import annotations

import json
import math

from codeur_widgets.core.clock import FakeClock
from codeur_widgets.core.events import Event
from codeur_widgets.core.hub import Hub
from codeur_widgets.otel.correlate import Correlator
from codeur_widgets.otel.records import STATUS_ERROR

from .helpers import Recorder, card, edges, span

AGENT = "gen_ai.operation.name"


def agent_attrs(name: str) -> dict:
    return {AGENT: "invoke_agent", "gen_ai.agent.name": name}


def chat(tokens: tuple[int, int] | None = None, model: str = "gpt-4o") -> dict:
    attrs = {AGENT: "chat", "gen_ai.request.model": model}
    if tokens:
        attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"] = tokens
    return attrs


def make(hub: Hub, hold: float = 30.0, clock: FakeClock | None = None) -> Correlator:
    return Correlator(
        hub.publish_many, capture_content=False, hold=hold, clock=clock or FakeClock(0.0)
    )


def test_otlp_children_first_are_held_until_their_agent_arrives(hub: Hub, rec: Recorder) -> None:
    c = make(hub)
    root = span("invoke_agent planner", agent_attrs("planner"), start=10, end=20)
    turn = span("turn", {"openinference.span.kind": "CHAIN"}, parent=root, start=11, end=15)
    llm = span("chat", chat((100, 20)), parent=turn, start=12, end=13)
    http = span("POST /v1/chat", {"http.method": "POST"}, parent=llm, start=12.1, end=12.9)
    for record in (http, llm, turn):
        c.end(record)
    assert c.held == 3 and not rec.topic("span.ended")
    c.end(root)
    assert c.held == 0
    assert {e.agent for e in rec.topic("span.ended")} == {"planner"}  # HTTP span included
    assert rec.tokens() == {"planner": (100, 20)}
    assert card(hub, "planner")["tasks_completed"] == 1
    assert card(hub, "planner")["model"] == "gpt-4o"
    # events describe each span completely (OTLP never showed their start)
    ended = rec.spans(name="POST /v1/chat")[0]
    assert ended.data["kind"] == "other" and ended.data["start"] == 12.1
    assert ended.data["parent_id"] == llm.span_id and ended.trace_id == root.trace_id


def test_a_span_that_names_its_agent_is_never_held(hub: Hub, rec: Recorder) -> None:
    c = make(hub)
    c.end(span("chat", {**chat((5, 1)), "gen_ai.agent.name": "boss"}, parent="ff" * 8))
    assert c.held == 0 and rec.tokens() == {"boss": (5, 1)}


def test_in_process_agent_is_working_from_its_start(hub: Hub, rec: Recorder) -> None:
    c = make(hub)
    root = span("invoke_agent boss", agent_attrs("boss"), end=None)
    c.start(root)
    assert card(hub, "boss")["status"] == "active"
    assert card(hub, "boss")["task"] == "invoke_agent boss"
    llm = span("chat", chat(), parent=root, end=None)
    c.start(llm)
    started = rec.topic("span.started")[0]
    assert started.agent == "boss" and started.data["kind"] == "llm"
    llm.end = llm.start + 1
    llm.attributes.update(chat((7, 3)))
    c.end(llm)
    root.end = root.start + 2
    c.end(root)
    assert card(hub, "boss")["status"] == "idle"
    assert card(hub, "boss")["tasks_completed"] == 1
    assert rec.tokens() == {"boss": (7, 3)}


def test_in_process_span_that_says_what_it_is_only_at_its_end(hub: Hub, rec: Recorder) -> None:
    """OpenInference's LangChain spans: no attributes at start, AGENT at the end. Their
    children wait for them, so tokens land on the right agent."""
    c = make(hub)
    outer = span("planner_agent", {}, end=None)
    inner = span("coder_agent", {}, parent=outer, end=None)
    llm = span("FakeChatModel", {}, parent=inner, end=None)
    for r in (outer, inner, llm):
        c.start(r)
    llm.attributes = {"openinference.span.kind": "LLM", "llm.token_count.prompt": 12,
                      "llm.token_count.completion": 7}  # fmt: skip
    c.end(llm)
    assert c.held == 1
    inner.attributes = {"openinference.span.kind": "AGENT"}
    c.end(inner)
    outer.attributes = {"openinference.span.kind": "AGENT"}
    c.end(outer)
    assert rec.tokens() == {"coder_agent": (12, 7)}
    assert edges(hub) == {"planner_agent->coder_agent"}
    assert card(hub, "coder_agent")["tasks_completed"] == 1
    # the early span.started of the agent span is upgraded under the same span id
    started = rec.topic("agent.task.started")
    assert {e.span_id for e in started} == {outer.span_id, inner.span_id}


def test_aggregated_usage_is_not_added_twice(hub: Hub, rec: Recorder) -> None:
    c = make(hub)
    usage = {"gen_ai.usage.input_tokens": 300, "gen_ai.usage.output_tokens": 30}
    with_children = span("invoke_agent a", {**agent_attrs("a"), **usage}, start=0, end=10)
    c.end(span("chat", chat((100, 10)), parent=with_children, start=1, end=2))
    c.end(span("chat", chat((200, 20)), parent=with_children, start=3, end=4))
    c.end(with_children)
    alone = span("invoke_agent b", {**agent_attrs("b"), **usage}, start=0, end=10,
                 trace="cd" * 16)  # fmt: skip
    c.end(alone)
    assert rec.tokens() == {"a": (300, 30), "b": (300, 30)}
    assert c.aggregates_dropped == 1
    assert [e.agent for e in rec.topic("agent.tokens")] == ["b"]


def test_nested_agent_is_a_delegation_and_graph_node_parent_a_handoff(
    hub: Hub, rec: Recorder
) -> None:
    c = make(hub)
    boss = span("invoke_agent boss", agent_attrs("boss"), start=0, end=10)
    tool = span("execute_tool ask", {AGENT: "execute_tool", "gen_ai.agent.name": "boss"},
                parent=boss, start=1, end=9)  # fmt: skip
    joker = span("invoke_agent joker", agent_attrs("joker"), parent=tool, start=2, end=8)
    for r in (joker, tool, boss):  # OTLP order
        c.end(r)
    assert rec.flows() == [("boss", "joker", "delegate")]

    # OpenAI Agents through OpenInference: a handoff span, then the delegate names its parent.
    t2 = "cd" * 16
    root = span("Agent workflow", {"openinference.span.kind": "AGENT"}, trace=t2, start=0, end=9)
    triage = span("triage", {"openinference.span.kind": "AGENT", "agent.name": "triage",
                             "graph.node.id": "node-triage"}, parent=root, trace=t2,
                  start=1, end=3)  # fmt: skip
    handoff = span("handoff to refund", {"openinference.span.kind": "TOOL"}, parent=triage,
                   trace=t2, start=2, end=2.5)  # fmt: skip
    refund = span("refund", {"openinference.span.kind": "AGENT", "agent.name": "refund",
                             "graph.node.parent_id": "node-triage"}, parent=root, trace=t2,
                  start=3, end=8)  # fmt: skip
    for r in (handoff, triage, refund, root):
        c.end(r)
    handoffs = [f for f in rec.flows() if f[2] == "handoff"]
    assert handoffs == [("triage", "refund", "handoff")]  # one message, not two
    assert ("Agent workflow", "triage", "delegate") in rec.flows()
    assert {"boss->joker", "triage->refund"} <= edges(hub)


def test_failures_reach_cards_and_spans(hub: Hub, rec: Recorder) -> None:
    c = make(hub)
    agent = span("invoke_agent w", agent_attrs("w"), status=STATUS_ERROR, message="boom")
    c.end(span("chat", {**chat(), "error.type": "RateLimitError"}, parent=agent))
    c.end(agent)
    entry = card(hub, "w")
    assert entry["tasks_failed"] == 1 and entry["last_error"]["message"] == "boom"
    assert rec.spans(kind="llm")[0].data["error_type"] == "RateLimitError"
    assert [e.topic for e in rec.topic("job.failed")] == ["job.failed"]


def test_cancelled_is_not_a_failure(hub: Hub) -> None:
    c = make(hub)
    c.end(span("invoke_agent w", {**agent_attrs("w"), "error.type": "CancelledError"}))
    assert card(hub, "w")["tasks_failed"] == 0


def test_a_root_with_either_vocabulary_is_a_job(hub: Hub, rec: Recorder) -> None:
    c = make(hub)
    c.end(span("invoke_agent a", agent_attrs("a")))
    c.end(span("GET /health", {"http.method": "GET"}, trace="cd" * 16))
    assert [e.data["job_id"] for e in rec.topic("job.started")] == ["ab" * 16]
    assert hub.queue.snapshot()["completed"] == 1


def test_held_spans_are_released_after_hold_seconds(hub: Hub, rec: Recorder) -> None:
    clock = FakeClock(0.0)
    c = make(hub, hold=5.0, clock=clock)
    c.end(span("chat", chat((1, 1)), parent="77" * 8))
    assert c.held == 1
    clock.advance(4.9)
    assert c.sweep() == 0
    clock.advance(0.2)
    assert c.sweep() == 1 and c.held == 0 and c.released_early == 1
    assert rec.tokens() == {None: (1, 1)}


def test_holding_is_bounded(hub: Hub, rec: Recorder) -> None:
    c = Correlator(hub.publish_many, capture_content=False, clock=FakeClock(0.0), max_held=10)
    for _ in range(25):
        c.end(span("chat", chat((1, 0)), parent="77" * 8))
    assert c.held == 10 and c.released_early == 15


def test_each_span_applies_once_and_time_is_repaired(hub: Hub, rec: Recorder) -> None:
    c = make(hub)
    backwards = span("invoke_agent a", agent_attrs("a"), start=100, end=90)
    c.end(backwards)
    c.end(backwards)  # an exporter retry
    child = span("chat", chat((1, 1)), parent="66" * 8)
    c.end(child)
    c.end(child)  # held, then sent again
    assert c.held == 1
    assert len(rec.topic("agent.task.completed")) == 1
    assert rec.topic("agent.task.completed")[0].data["duration"] == 0.0
    assert c.repaired == 1


def test_hostile_values_become_valid_events(hub: Hub, rec: Recorder) -> None:
    """Events are built without Event.create's validation: every one must survive it."""
    c = make(hub)
    c.capture_content = True
    c.end(span("x", {"openinference.span.kind": "AGENT", "agent.name": "\x00" * 5}))
    c.end(span("invoke_agent " + "n" * 500, {AGENT: "invoke_agent"}))
    surrogate = "bad \ud800 text"
    root = span(surrogate * 2000, {AGENT: "invoke_agent", "gen_ai.agent.name": surrogate,
                                   "input.value": surrogate * 5000, surrogate: surrogate,
                                   "n": math.nan, "big": 2**70, "list": [math.inf, "a"],
                                   "gen_ai.usage.input_tokens": 2**60},
                status=STATUS_ERROR, message=surrogate * 100, start=math.nan)  # fmt: skip
    c.end(span("chat", {**chat((1, 1)), "gen_ai.response.model": surrogate}, parent=root))
    c.end(root)
    c.start(span("\ud801", {"http.method": "GET"}, end=None))
    assert rec.events
    for event in rec.events:
        again = Event.from_dict(event.to_dict())
        assert again.to_dict() == event.to_dict(), event
        json.dumps(event.to_dict(), allow_nan=False).encode("utf-8")
        assert event.agent is None or len(event.agent) <= 128
