"""Real agent frameworks, offline with their own test models, traced by their own OpenTelemetry
instrumentation, shown by ``hub.instrument_otel``: cards, tokens, tasks, failures, and the
delegation or handoff as an edge of the graph.

* pydantic-ai (``TestModel``, ``FunctionModel``; its GenAI-convention spans): a boss agent whose
  tool runs a joke-writer agent (agent as a tool), and an agent whose model fails;
* LangChain (fake chat models) through ``openinference-instrumentation-langchain``: a planner
  agent that calls an LLM and then a coder agent, and an agent that raises;
* the OpenAI Agents SDK (a scripted ``Model`` returning canned responses, no network) through
  ``openinference-instrumentation-openai-agents``: a triage agent handing off to a refund agent
  that calls a tool, and an agent whose model fails.

Each framework writes to its own SDK tracer provider, uninstrumented at the end.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import pytest

from codeur_widgets.core.hub import Hub

from .helpers import Recorder, card, edges, has

pytestmark = pytest.mark.usefixtures("otel_sdk")


def tracer_provider() -> Any:
    from opentelemetry.sdk.trace import TracerProvider

    return TracerProvider()


# -- pydantic-ai -----------------------------------------------------------------------------
@pytest.fixture
def pydantic_ai(require: Any) -> Iterator[Any]:
    require("pydantic-ai", has("pydantic_ai"), "pip install pydantic-ai-slim")
    from pydantic_ai import Agent
    from pydantic_ai.models.instrumented import InstrumentationSettings

    tp = tracer_provider()
    Agent.instrument_all(InstrumentationSettings(tracer_provider=tp))
    try:
        yield tp
    finally:
        Agent.instrument_all(False)


def test_pydantic_ai_agent_as_a_tool(pydantic_ai: Any, hub: Hub, rec: Recorder) -> None:
    from pydantic_ai import Agent, RunContext
    from pydantic_ai.messages import ModelMessage, ModelResponse
    from pydantic_ai.models.function import AgentInfo, FunctionModel
    from pydantic_ai.models.test import TestModel

    hub.instrument_otel(pydantic_ai)
    joke_writer = Agent(TestModel(), name="joke_writer")
    boss = Agent(TestModel(), name="boss")

    async def ask_joke_writer(ctx, topic):  # type: ignore[no-untyped-def]
        result = await joke_writer.run(f"a joke about {topic}", usage=ctx.usage)
        return result.output

    # real objects, not the strings of `from __future__ import annotations`: pydantic-ai reads
    # the hints and RunContext is imported in this function only
    ask_joke_writer.__annotations__ = {"ctx": RunContext[None], "topic": str, "return": str}
    boss.tool(ask_joke_writer)

    def broken(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        raise ConnectionError("model endpoint unreachable")

    flaky = Agent(FunctionModel(broken), name="flaky")

    async def main() -> Any:
        result = await boss.run("tell me a joke")
        with pytest.raises(ConnectionError):
            await flaky.run("hello")
        return result

    result = asyncio.run(main())
    usage = result.usage
    assert card(hub, "boss")["tasks_completed"] == 1
    assert card(hub, "joke_writer")["tasks_completed"] == 1
    assert card(hub, "boss")["model"] == "test"
    tokens = rec.tokens()
    assert tokens["joke_writer"][0] > 0 and tokens["boss"][0] > 0
    # each LLM call once: the run's own total (the joke writer's usage is added to the boss's)
    assert tokens["boss"][0] + tokens["joke_writer"][0] == usage.input_tokens
    assert tokens["boss"][1] + tokens["joke_writer"][1] == usage.output_tokens
    assert rec.topic("agent.tokens") == []  # aggregated usage (on agent spans) not re-added
    for name in ("boss", "joke_writer"):  # the cards show the same usage, counted once
        assert (card(hub, name)["prompt_tokens"], card(hub, name)["completion_tokens"]) == tokens[
            name
        ]
    assert "boss->joke_writer" in edges(hub)
    # the trace view: one trace holds both agents' spans, nested, the writer's under the boss's
    (trace,) = [t for t in hub.traces.query(agent="joke_writer") if t["status"] == "ok"]
    assert {"boss", "joke_writer"} <= set(trace["agents"])
    spans = {s["span_id"]: s for s in hub.traces.spans(trace["id"])}
    writer = next(s for s in spans.values() if s["agent"] == "joke_writer" and s["kind"] == "agent")
    ancestors = []
    parent = writer["parent_id"]
    while parent in spans:
        ancestors.append(spans[parent])
        parent = spans[parent]["parent_id"]
    assert any(a["agent"] == "boss" and a["kind"] == "agent" for a in ancestors)
    assert any(s["kind"] == "llm" and s["agent"] == "joke_writer" for s in spans.values())
    assert ("boss", "joke_writer", "delegate") in rec.flows()
    tools = [e for e in rec.topic("span.ended") if e.data.get("tool") == "ask_joke_writer"]
    assert len(tools) == 1 and tools[0].agent == "boss"
    failed = card(hub, "flaky")
    assert failed["tasks_failed"] == 1 and failed["status"] == "error"
    assert failed["last_error"]["type"] == "ConnectionError"
    assert "unreachable" in failed["last_error"]["message"]


# -- LangChain -------------------------------------------------------------------------------
@pytest.fixture
def langchain(require: Any) -> Iterator[Any]:
    require("langchain-core", has("langchain_core"), "pip install langchain-core")
    require("openinference-instrumentation-langchain",
            has("openinference.instrumentation.langchain"),
            "pip install openinference-instrumentation-langchain")  # fmt: skip
    from openinference.instrumentation.langchain import LangChainInstrumentor

    tp = tracer_provider()
    instrumentor = LangChainInstrumentor()
    instrumentor.instrument(tracer_provider=tp)
    try:
        yield tp
    finally:
        instrumentor.uninstrument()


def test_langchain_planner_delegates_to_coder(langchain: Any, hub: Hub, rec: Recorder) -> None:
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.runnables import RunnableLambda

    hub.instrument_otel(langchain)

    def llm(text: str, prompt: int, completion: int) -> GenericFakeChatModel:
        usage = {"input_tokens": prompt, "output_tokens": completion,
                 "total_tokens": prompt + completion}  # fmt: skip
        return GenericFakeChatModel(messages=iter([AIMessage(content=text, usage_metadata=usage)]))

    planner_llm = llm("plan: write f()", 20, 5)
    coder_llm = llm("def f(): pass", 12, 7)
    coder = (RunnableLambda(lambda x: x["plan"]) | coder_llm).with_config(run_name="coder_agent")

    def plan(request: str) -> Any:
        steps = planner_llm.invoke(request)
        return coder.invoke({"plan": steps.content})

    planner = RunnableLambda(plan).with_config(run_name="planner_agent")

    def review(_: Any) -> Any:
        raise ValueError("review rejected the patch")

    reviewer = RunnableLambda(review).with_config(run_name="reviewer_agent")

    assert planner.invoke("write f").content == "def f(): pass"
    with pytest.raises(ValueError):
        reviewer.invoke("patch")

    assert rec.tokens() == {"planner_agent": (20, 5), "coder_agent": (12, 7)}
    assert card(hub, "planner_agent")["prompt_tokens"] == 20
    assert card(hub, "coder_agent")["completion_tokens"] == 7
    assert card(hub, "planner_agent")["tasks_completed"] == 1
    assert card(hub, "coder_agent")["tasks_completed"] == 1
    assert "planner_agent->coder_agent" in edges(hub)
    failed = card(hub, "reviewer_agent")
    assert failed["tasks_failed"] == 1
    assert failed["last_error"]["type"] == "ValueError"
    assert "review rejected" in failed["last_error"]["message"]
    assert hub.queue.snapshot()["completed"] == 1 and hub.queue.snapshot()["failed"] == 1


# -- OpenAI Agents SDK -----------------------------------------------------------------------
@pytest.fixture
def openai_agents(require: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    require("openai-agents", has("agents"), "pip install openai-agents")
    require("openinference-instrumentation-openai-agents",
            has("openinference.instrumentation.openai_agents"),
            "pip install openinference-instrumentation-openai-agents")  # fmt: skip
    monkeypatch.setenv("OPENAI_API_KEY", os.environ.get("OPENAI_API_KEY") or "sk-test-offline")
    from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor

    tp = tracer_provider()
    instrumentor = OpenAIAgentsInstrumentor()
    # exclusive: replaces the SDK's exporter to OpenAI's servers (nothing leaves the machine)
    instrumentor.instrument(tracer_provider=tp, exclusive_processor=True)
    try:
        yield tp
    finally:
        instrumentor.uninstrument()


def canned_model(name: str, steps: list[tuple[list[Any], tuple[int, int]] | Exception]) -> Any:
    """An Agents SDK ``Model`` that answers from a script, with a generation span carrying the
    model and its usage as the SDK's own OpenAI models do; never touches the network."""
    from agents import Usage, generation_span
    from agents.items import ModelResponse
    from agents.models.interface import Model

    class CannedModel(Model):
        async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
            step = steps.pop(0)
            with generation_span(model=name) as span:
                if isinstance(step, Exception):
                    raise step
                output, (prompt, completion) = step
                span.span_data.usage = {"input_tokens": prompt, "output_tokens": completion}
                usage = Usage(requests=1, input_tokens=prompt, output_tokens=completion,
                              total_tokens=prompt + completion)  # fmt: skip
                return ModelResponse(output=output, usage=usage, response_id=None)

        def stream_response(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError("the tests do not stream")

    return CannedModel()


def test_openai_agents_handoff(openai_agents: Any, hub: Hub, rec: Recorder) -> None:
    from agents import Agent, Runner, function_tool
    from agents.testing import assistant_message, function_call

    hub.instrument_otel(openai_agents)

    @function_tool
    def lookup_order(order_id: str) -> str:
        """Find an order."""
        return f"order {order_id}: paid"

    refund = Agent(
        name="refund_agent",
        instructions="Refund orders.",
        tools=[lookup_order],
        model=canned_model("gpt-4o-mini", [
            ([function_call("lookup_order", {"order_id": "42"}, call_id="c1")], (20, 5)),
            ([assistant_message("Refund issued for order 42")], (30, 7)),
        ]),
    )  # fmt: skip
    triage = Agent(
        name="triage",
        instructions="Route the request.",
        handoffs=[refund],
        model=canned_model("gpt-4o", [
            ([function_call("transfer_to_refund_agent", {}, call_id="h1")], (11, 3)),
        ]),
    )  # fmt: skip
    broken = Agent(name="broken_agent", instructions="-",
                   model=canned_model("gpt-4o", [ConnectionError("upstream down")]))  # fmt: skip

    async def main() -> Any:
        result = await Runner.run(triage, "I want a refund for order 42")
        with pytest.raises(ConnectionError):
            await Runner.run(broken, "hello")
        return result

    result = asyncio.run(main())
    assert result.final_output == "Refund issued for order 42"
    assert card(hub, "triage")["tasks_completed"] == 1
    assert card(hub, "refund_agent")["tasks_completed"] == 1
    assert card(hub, "triage")["model"] == "gpt-4o"
    assert card(hub, "refund_agent")["model"] == "gpt-4o-mini"
    tokens = rec.tokens()
    assert tokens["triage"] == (11, 3) and tokens["refund_agent"] == (50, 12)
    assert card(hub, "refund_agent")["prompt_tokens"] == 50
    assert card(hub, "triage")["completion_tokens"] == 3
    assert "triage->refund_agent" in edges(hub)
    handoffs = [f for f in rec.flows() if f[2] == "handoff"]
    assert handoffs == [("triage", "refund_agent", "handoff")]  # once, not twice
    tools = [e for e in rec.topic("span.ended") if e.data.get("tool") == "lookup_order"]
    assert len(tools) == 1 and tools[0].agent == "refund_agent"
    failed = card(hub, "broken_agent")
    assert failed["tasks_failed"] == 1 and failed["status"] == "error"
