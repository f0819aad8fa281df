"""The normaliser, one test per row of ``semconv.MAPPING`` (both vocabularies where they exist),
then content, bounds and hostile values."""

from __future__ import annotations

import math

import pytest

from codeur_widgets.otel.records import STATUS_ERROR, STATUS_OK, SpanEvent
from codeur_widgets.otel.semconv import MAPPING, MAX_ATTRIBUTES, normalize

from .helpers import span

ROWS = {field for field, _, _ in MAPPING}


def norm(name: str, attrs: dict, capture: bool = False, **kw):  # type: ignore[no-untyped-def]
    return normalize(span(name, attrs, **kw), capture)


def test_every_row_has_a_test() -> None:
    tested = {
        "kind", "agent", "delegator", "model_response", "model_request", "prompt_tokens",
        "completion_tokens", "cost_usd", "error_type", "tool", "task", "input", "output",
    }  # fmt: skip
    assert tested == ROWS


@pytest.mark.parametrize(
    ("attrs", "name", "kind"),
    [
        ({"gen_ai.operation.name": "invoke_agent"}, "invoke_agent a", "agent"),
        ({"gen_ai.operation.name": "chat"}, "chat", "llm"),
        ({"gen_ai.operation.name": "text_completion"}, "x", "llm"),
        ({"gen_ai.operation.name": "embeddings"}, "x", "embedding"),
        ({"gen_ai.operation.name": "execute_tool"}, "x", "tool"),
        ({"gen_ai.operation.name": "something_new"}, "x", "other"),
        ({"openinference.span.kind": "AGENT"}, "x", "agent"),
        ({"openinference.span.kind": "LLM"}, "x", "llm"),
        ({"openinference.span.kind": "TOOL"}, "x", "tool"),
        ({"openinference.span.kind": "RETRIEVER"}, "x", "retrieval"),
        ({"openinference.span.kind": "EMBEDDING"}, "x", "embedding"),
        ({"openinference.span.kind": "CHAIN"}, "x", "other"),
        ({"openinference.span.kind": "chain", "graph.node.id": "n"}, "x", "agent"),
        ({"graph.node.id": "planner"}, "x", "agent"),
        ({"gen_ai.operation.name": "chat", "openinference.span.kind": "AGENT"}, "x", "llm"),
        ({"http.method": "GET"}, "GET /", "other"),
        ({}, "handoff to refund_agent", "tool"),
    ],
)
def test_row_kind(attrs: dict, name: str, kind: str) -> None:
    n = norm(name, attrs)
    assert n.kind == kind
    assert n.semantic == (kind != "other" or (bool(attrs) and "http.method" not in attrs))


@pytest.mark.parametrize(
    ("attrs", "name", "agent", "named"),
    [
        ({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "boss"}, "x", "boss", True),
        ({"openinference.span.kind": "AGENT", "agent.name": "triage"}, "x", "triage", True),
        ({"graph.node.id": "n1", "graph.node.name": "Planner"}, "x", "Planner", True),
        ({"graph.node.id": "n1"}, "x", "n1", True),
        ({"gen_ai.operation.name": "invoke_agent"}, "invoke_agent writer", "writer", False),
        ({"openinference.span.kind": "AGENT"}, "AgentExecutor", "AgentExecutor", False),
        # not an agent span: the attribute names the agent it belongs to
        ({"gen_ai.operation.name": "chat", "gen_ai.agent.name": "boss"}, "chat", "boss", True),
        ({"gen_ai.operation.name": "chat"}, "chat", None, False),
    ],
)
def test_row_agent(attrs: dict, name: str, agent: str | None, named: bool) -> None:
    n = norm(name, attrs)
    assert (n.agent, n.agent_named) == (agent, named)


def test_row_delegator() -> None:
    n = norm("refund", {"openinference.span.kind": "AGENT", "graph.node.id": "refund",
                        "graph.node.parent_id": "triage"})  # fmt: skip
    assert (n.node_id, n.parent_node) == ("refund", "triage")
    assert norm("handoff to refund_agent", {"openinference.span.kind": "TOOL"}).handoff_to == (
        "refund_agent"
    )
    assert norm("transfer_to_billing", {}).handoff_to == "billing"


def test_row_model_response() -> None:
    both = {"gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o-2024-08-06"}
    assert norm("chat", both).model_response == "gpt-4o-2024-08-06"
    assert norm("x", {"llm.model_name": "claude"}).model_response == "claude"


def test_row_model_request() -> None:
    assert norm("chat", {"gen_ai.request.model": "gpt-4o"}).model_request == "gpt-4o"
    assert norm("chat", {"gen_ai.request.model": "gpt-4o"}).model_response is None
    assert norm("x", {"llm.model_name": "claude"}).model_request == "claude"


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ({"gen_ai.usage.input_tokens": 12}, 12),
        ({"gen_ai.usage.prompt_tokens": 13}, 13),
        ({"llm.token_count.prompt": 14}, 14),
        ({"gen_ai.usage.input_tokens": 12, "llm.token_count.prompt": 99}, 12),
        ({"gen_ai.usage.input_tokens": "15"}, 15),
        ({"gen_ai.usage.input_tokens": -1}, None),
        ({"gen_ai.usage.input_tokens": math.nan}, None),
        ({"gen_ai.usage.input_tokens": True}, None),
        ({"llm.token_count.total": 40}, None),
    ],
)
def test_row_prompt_tokens(attrs: dict, expected: int | None) -> None:
    assert norm("chat", attrs).prompt_tokens == expected


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ({"gen_ai.usage.output_tokens": 5}, 5),
        ({"gen_ai.usage.completion_tokens": 6}, 6),
        ({"llm.token_count.completion": 7.0}, 7),
        ({"llm.token_count.completion": 7.5}, None),
    ],
)
def test_row_completion_tokens(attrs: dict, expected: int | None) -> None:
    assert norm("chat", attrs).completion_tokens == expected


def test_row_cost_usd() -> None:
    assert norm("x", {"llm.cost.total": 0.0042}).cost_usd == 0.0042
    assert norm("x", {"gen_ai.usage.cost": 0.5}).cost_usd == 0.5
    assert norm("x", {"gen_ai.usage.input_tokens": 5}).cost_usd is None  # priced later
    assert norm("x", {"llm.cost.total": math.inf}).cost_usd is None


def test_row_error_type() -> None:
    ok = norm("x", {}, status=STATUS_OK)
    assert (ok.status, ok.error_type) == ("ok", None)
    by_status = norm("x", {}, status=STATUS_ERROR, message="rate limited")
    assert (by_status.status, by_status.error_type, by_status.error) == (
        "error", "Error", "rate limited"
    )  # fmt: skip
    by_attribute = norm("x", {"error.type": "timeout"})  # GenAI: error.type alone means failed
    assert (by_attribute.status, by_attribute.error_type) == ("error", "timeout")
    exc = SpanEvent("exception", 1.0, {"exception.type": "ValueError", "exception.message": "bad"})
    by_event = norm("x", {}, status=STATUS_ERROR, events=[exc])
    assert (by_event.error_type, by_event.error) == ("ValueError", "bad")
    handled = norm("x", {}, events=[exc])  # an exception recorded but the span did not fail
    assert handled.status == "ok"
    cancelled = norm("x", {"error.type": "CancelledError"})
    assert cancelled.status == "cancelled"


def test_row_tool() -> None:
    assert norm("execute_tool x", {"gen_ai.operation.name": "execute_tool",
                                    "gen_ai.tool.name": "search"}).tool == "search"  # fmt: skip
    assert norm("lookup", {"openinference.span.kind": "TOOL", "tool.name": "lookup"}).tool == (
        "lookup"
    )
    assert norm("grep", {"openinference.span.kind": "TOOL"}).tool == "grep"


def test_row_task() -> None:
    assert norm("invoke_agent boss", {"gen_ai.operation.name": "invoke_agent"}).task == (
        "invoke_agent boss"
    )
    described = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.description": "Plans"}
    assert norm("invoke_agent boss", described).task == "Plans"


def test_row_input() -> None:
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.input.messages": '[{"role":"user"}]'}
    assert norm("chat", attrs, capture=True).input == '[{"role":"user"}]'
    assert norm("chat", attrs, capture=False).input is None
    oi = {"openinference.span.kind": "LLM", "input.value": "hi"}
    assert norm("x", oi, capture=True).input == "hi"
    tool = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.call.arguments": '{"q":1}'}
    assert norm("t", tool, capture=True).input == '{"q":1}'


def test_row_output() -> None:
    attrs = {"openinference.span.kind": "LLM", "output.value": "hello"}
    assert norm("x", attrs, capture=True).output == "hello"
    assert norm("x", attrs, capture=False).output is None
    tool = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.call.result": "42"}
    assert norm("t", tool, capture=True).output == "42"


# -- content, bounds, hostile values ---------------------------------------------------------
def test_content_never_leaks_through_the_kept_attributes() -> None:
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.input.messages": "secret prompt",
        "llm.input_messages.0.message.content": "secret",
        "input.value": "secret",
        "pydantic_ai.all_messages": "secret",
        "custom.flag": "kept",
    }
    for capture in (False, True):
        kept = norm("chat", attrs, capture=capture).attributes
        assert kept == {"custom.flag": "kept"}


def test_unknown_attributes_are_kept_bounded_and_json_safe() -> None:
    attrs = {f"k{i}": i for i in range(10_000)}
    attrs["nan"] = math.nan
    n = norm("x", attrs)
    assert len(n.attributes) == MAX_ATTRIBUTES
    assert n.dropped == 10_001 - MAX_ATTRIBUTES
    odd = norm("x", {"nan": math.nan, "inf": -math.inf, "long": "y" * 10_000, "list": [1] * 99})
    assert odd.attributes["nan"] == "nan" and odd.attributes["inf"] == "-inf"
    assert len(odd.attributes["long"]) <= 257 and len(odd.attributes["list"]) == 16


def test_names_are_printable_and_bounded() -> None:
    n = norm("x", {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "a\x00b" * 100})
    assert n.agent is not None and n.agent.isprintable() and len(n.agent) <= 128


@pytest.mark.parametrize(
    "attrs",
    [
        {"gen_ai.agent.description": "plans the work"},  # known to the table, not mapped
        {"gen_ai.operation.name": "chat", "gen_ai.agent.description": "plans"},
        {"server.address": "api.example.com"},  # unknown to the table
    ],
)
def test_attributes_the_mapping_does_not_read_are_kept(attrs: dict[str, object]) -> None:
    # normalize skips its loop over the kept attributes when a span has none to keep: a known
    # attribute that the mapping does not read (an agent's description) must still be kept.
    kept = normalize(span("step", dict(attrs)), capture_content=False).attributes
    unread = {k: v for k, v in attrs.items() if k != "gen_ai.operation.name"}
    assert kept == unread
