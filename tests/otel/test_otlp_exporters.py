"""The real OpenTelemetry SDK and its real OTLP exporters, in other processes, into one Hub.

Each worker (``otlp_worker.py``) traces a planner agent delegating to a coder agent, with LLM,
tool and HTTP spans and some failures, and exports through ``BatchSpanProcessor`` over OTLP/HTTP
(protobuf; none, gzip or deflate) or OTLP/gRPC (none or gzip). Every span it ended must be
applied exactly once, and tokens, failures, delegations and jobs must land where they should.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from codeur_widgets.core.hub import Hub

from .helpers import Recorder, card, edges, has

WORKER = Path(__file__).with_name("otlp_worker.py")
DONE_TOPICS = ("span.ended", "agent.task.completed", "agent.task.failed")


@pytest.fixture
def exporters(require: Any, otel_sdk: None) -> None:
    require("the OTLP/HTTP exporter", has("opentelemetry.exporter.otlp.proto.http"),
            "pip install opentelemetry-exporter-otlp-proto-http")  # fmt: skip
    require("the OTLP/gRPC exporter", has("opentelemetry.exporter.otlp.proto.grpc"),
            "pip install opentelemetry-exporter-otlp-proto-grpc")  # fmt: skip
    require("grpcio", has("grpc"), "pip install grpcio")


def endpoint(kind: str, port: int) -> str:
    return f"http://127.0.0.1:{port}/v1/traces" if kind == "http" else f"127.0.0.1:{port}"


async def _worker(kind: str, port: int, *options: str) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(WORKER), kind, endpoint(kind, port), *options,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 180)
    assert proc.returncode == 0, err.decode()[-3000:]
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def run_workers(
    url: str, kind: str, workers: list[list[str]], **source_options: Any
) -> tuple[Hub, Recorder, list[dict[str, Any]], dict[str, Any]]:
    """Start a hub reading ``url``, run the workers, wait until every span they ended is applied
    (at most 60 s); returns the hub (stopped), its events, the workers' reports and the source's
    health."""
    hub = Hub(collect_system=False, topology="empty", sources=[url])
    rec = Recorder(hub)

    async def main() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        hub.start()
        source: Any = hub.sources[0]
        assert source.port, source.health()
        reports = await asyncio.gather(*(_worker(kind, source.port, *w) for w in workers))
        expected = sum(len(r["ended"]) for r in reports)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if len(rec.topic(*DONE_TOPICS)) >= expected and not source.pipeline.correlator.held:
                break
            await asyncio.sleep(0.05)
        health = source.health()
        await hub.aclose()
        return list(reports), health

    reports, health = asyncio.run(main())
    return hub, rec, reports, health


def check(hub: Hub, rec: Recorder, reports: list[dict[str, Any]], health: dict[str, Any]) -> None:
    applied = [e.span_id for e in rec.topic(*DONE_TOPICS)]
    ended = [s for r in reports for s in r["ended"]]
    assert len(applied) == len(set(applied)), "a span was applied twice"
    assert sorted(applied) == sorted(ended), "every span exactly once"
    tokens = rec.tokens()
    for report in reports:
        for agent, (prompt, completion) in report["tokens"].items():
            assert tokens[agent] == (prompt, completion), agent
        for agent, failed in report["failed"].items():
            entry = card(hub, agent)
            assert entry["tasks_failed"] == failed
            assert entry["tasks_completed"] == report["traces"] - failed
            assert entry["last_error"]["type"] == "ValueError"
            assert entry["last_error"]["message"].startswith("tests failed in trace")
            assert entry["model"] == "gpt-4o-mini"
        planner = next(a for a in report["tokens"] if a.endswith("_planner"))
        coder = next(a for a in report["tokens"] if a.endswith("_coder"))
        assert f"{planner}->{coder}" in edges(hub)
        assert card(hub, planner)["tasks_completed"] == report["traces"]
    # the HTTP and tool spans have no agent of their own: the coder owns them
    http = [e for e in rec.topic("span.ended") if e.data.get("name") == "POST /commit"]
    assert http and all(e.agent and e.agent.endswith("_coder") for e in http)
    assert hub.queue.snapshot()["completed"] == sum(r["traces"] for r in reports)
    assert health["rejected_spans"] == 0 and health["bad_requests"] == 0
    assert health["errors"] == 0 and health["released_early"] == 0


@pytest.mark.usefixtures("exporters")
@pytest.mark.parametrize(
    ("scheme", "kind", "compression"),
    [
        ("otlp", "http", "none"),
        ("otlp", "http", "gzip"),
        ("otlp+http", "http", "deflate"),
        ("otlp+grpc", "grpc", "none"),
        ("otlp+grpc", "grpc", "gzip"),
    ],
)
def test_real_exporter_every_span_once(scheme: str, kind: str, compression: str) -> None:
    hub, rec, reports, health = run_workers(
        f"{scheme}://127.0.0.1:0", kind, [["--traces", "20", "--compression", compression]]
    )
    check(hub, rec, reports, health)
    assert health["requests"] >= 1 and health["spans"] == len(reports[0]["ended"])


@pytest.mark.usefixtures("exporters")
@pytest.mark.parametrize(("scheme", "kind"), [("otlp", "http"), ("otlp+grpc", "grpc")])
def test_four_exporters_with_a_token(scheme: str, kind: str) -> None:
    token = "s3cret-t0ken"
    workers = [["--traces", "15", "--prefix", f"p{i}", "--token", token] for i in range(4)]
    hub, rec, reports, health = run_workers(f"{scheme}://127.0.0.1:0?token={token}", kind, workers)
    check(hub, rec, reports, health)
    assert health["token"] is True and token not in json.dumps(hub.health())
    assert token not in repr(hub.sources[0])
