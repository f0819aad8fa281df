"""HubSpanProcessor with the real OpenTelemetry SDK: live from on_start, never in the way of
the framework, and ``hub.instrument_otel()`` picking the right tracer provider."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
from typing import Any

import pytest

from codeur_widgets.core.hub import Hub

from .helpers import Recorder, card

pytestmark = pytest.mark.usefixtures("otel_sdk")


def provider() -> Any:
    from opentelemetry.sdk.trace import TracerProvider

    return TracerProvider()


def test_an_agent_works_from_the_moment_its_span_starts(hub: Hub, rec: Recorder) -> None:
    tp = provider()
    hub.instrument_otel(tp)
    tracer = tp.get_tracer("test")
    attrs = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"}
    with tracer.start_as_current_span("invoke_agent planner", attributes=attrs):
        assert card(hub, "planner")["status"] == "active"
        with tracer.start_as_current_span("chat", attributes={"gen_ai.operation.name": "chat"}):
            assert rec.topic("span.started")[-1].agent == "planner"  # open, attributed
        with tracer.start_as_current_span("GET /search", attributes={"http.method": "GET"}):
            pass
    assert card(hub, "planner")["status"] == "idle"
    assert card(hub, "planner")["tasks_completed"] == 1
    http = [e for e in rec.topic("span.ended") if e.data["kind"] == "other"]
    assert len(http) == 1 and http[0].agent == "planner"


def test_instrument_otel_is_idempotent_and_a_source(hub: Hub) -> None:
    tp = provider()
    first = hub.instrument_otel(tp)
    assert hub.instrument_otel(tp) is first
    assert first in hub.sources
    assert hub.health()["sources"][0]["source"] == "opentelemetry (in-process)"


def test_the_processor_never_raises_into_the_framework(hub: Hub) -> None:
    tp = provider()
    processor = hub.instrument_otel(tp)

    def broken(events: Any) -> int:
        raise RuntimeError("a store exploded")

    hub.publish_many = broken  # type: ignore[method-assign]
    tracer = tp.get_tracer("test")
    with tracer.start_as_current_span("invoke_agent x", attributes={
        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "x"}):  # fmt: skip
        pass
    processor.on_start(None)  # type: ignore[arg-type]  # garbage in: counted, not raised
    processor.on_end(None)  # type: ignore[arg-type]
    health = processor.health()
    assert health["errors"] >= 3


def test_content_is_kept_in_kernel_unless_the_hub_says_no(rec: Recorder, hub: Hub) -> None:
    from codeur_widgets.otel import HubSpanProcessor

    attrs = {"gen_ai.operation.name": "chat", "gen_ai.input.messages": "hello"}
    for capture, expected in ((None, "hello"), (False, None)):
        hub.capture_content = capture  # type: ignore[attr-defined]
        tp = provider()
        tp.add_span_processor(HubSpanProcessor(hub))
        with tp.get_tracer("t").start_as_current_span("chat", attributes=attrs):
            pass
        assert rec.topic("span.started")[-1].data.get("input") == expected


@pytest.mark.parametrize("wiring", ["instrument_otel", "by hand"])
def test_spans_from_threads_reach_a_running_hub(wiring: str) -> None:
    from codeur_widgets.otel import HubSpanProcessor

    async def main() -> dict[str, Any]:
        hub = Hub(collect_system=False, topology="empty")
        rec = Recorder(hub)
        hub.start()
        tp = provider()
        if wiring == "by hand":
            processor = HubSpanProcessor(hub)
            tp.add_span_processor(processor)
        else:
            processor = hub.instrument_otel(tp)
        tracer = tp.get_tracer("t")

        def agent(name: str) -> None:
            for i in range(50):
                attrs = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": name}
                usage = {"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": i,
                         "gen_ai.usage.output_tokens": 1}  # fmt: skip
                with (
                    tracer.start_as_current_span(f"invoke_agent {name}", attributes=attrs),
                    tracer.start_as_current_span("chat", attributes=usage),
                ):
                    pass

        threads = [threading.Thread(target=agent, args=(f"a{i}",)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for _ in range(100):
            await asyncio.sleep(0.02)
            if processor.pipeline.backlog() == 0 and len(rec.topic("agent.task.completed")) == 200:
                break
        out = {
            "tokens": rec.tokens(),
            "cards": {n: card(hub, n)["tasks_completed"] for n in hub.agents.names()},
            "health": processor.health(),
        }
        await hub.aclose()
        return out

    out = asyncio.run(main())
    assert out["cards"] == {f"a{i}": 50 for i in range(4)}
    assert out["tokens"] == {f"a{i}": (sum(range(50)), 50) for i in range(4)}
    assert out["health"]["errors"] == 0 and out["health"]["dropped"] == 0


GLOBAL_PROVIDER = textwrap.dedent(
    """
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from codeur_widgets import Hub

    hub = Hub(collect_system=False)
    if MODE == "installed":
        mine = TracerProvider()
        trace.set_tracer_provider(mine)
    processor = hub.instrument_otel()
    installed = trace.get_tracer_provider()
    assert isinstance(installed, TracerProvider), installed
    if MODE == "installed":
        assert installed is mine
    with trace.get_tracer("t").start_as_current_span("invoke_agent a", attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "a"}):
        pass
    assert hub.agents.get("a")["tasks_completed"] == 1
    print("ok")
    """
)


@pytest.mark.parametrize("mode", ["none", "installed"])
def test_instrument_otel_without_a_provider(mode: str) -> None:
    """No provider given: the SDK provider installed globally, else a new one it installs (in a
    fresh interpreter: a process installs a global provider once)."""
    code = f"MODE = {mode!r}\n" + GLOBAL_PROVIDER
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
