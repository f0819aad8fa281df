"""An agent process traced by the real OpenTelemetry SDK, exporting with its real OTLP exporter.

``python otlp_worker.py http|grpc ENDPOINT [--traces N] [--compression gzip|deflate|none]``
builds N traces (a planner agent delegating to a coder agent, LLM calls with tokens, a tool, an
HTTP span, every fifth coder failing), exports them through ``BatchSpanProcessor`` and prints one
JSON line: the span ids it ended and the totals the receiver should show.
"""

from __future__ import annotations

import argparse
import json
import sys

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Status, StatusCode


def exporter(kind: str, endpoint: str, compression: str, token: str | None) -> SpanExporter:
    headers = {"authorization": f"Bearer {token}"} if token else None
    if kind == "http":
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        mode = {"gzip": Compression.Gzip, "deflate": Compression.Deflate}.get(
            compression, Compression.NoCompression
        )
        return OTLPSpanExporter(endpoint=endpoint, compression=mode, headers=headers, timeout=30)
    from grpc import Compression as GrpcCompression
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc

    gmode = GrpcCompression.Gzip if compression == "gzip" else GrpcCompression.NoCompression
    return Grpc(endpoint=endpoint, insecure=True, compression=gmode, headers=headers, timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["http", "grpc"])
    parser.add_argument("endpoint")
    parser.add_argument("--traces", type=int, default=20)
    parser.add_argument("--compression", default="none")
    parser.add_argument("--token", default=None)
    parser.add_argument("--prefix", default="w")
    args = parser.parse_args()
    ended: list[str] = []

    class Recording(BatchSpanProcessor):
        def on_end(self, span):  # type: ignore[no-untyped-def]
            ended.append(format(span.context.span_id, "016x"))
            super().on_end(span)

    tp = TracerProvider(resource=Resource.create({"service.name": f"agents-{args.prefix}"}))
    processor = Recording(
        exporter(args.kind, args.endpoint, args.compression, args.token),
        schedule_delay_millis=50,
        max_export_batch_size=64,
    )
    tp.add_span_processor(processor)
    tracer = tp.get_tracer("otlp_worker")
    planner, coder = f"{args.prefix}_planner", f"{args.prefix}_coder"
    tokens = {planner: [0, 0], coder: [0, 0]}
    failed = 0
    for i in range(args.traces):
        agent = {"gen_ai.operation.name": "invoke_agent"}
        with tracer.start_as_current_span(
            f"invoke_agent {planner}", attributes={**agent, "gen_ai.agent.name": planner}
        ):
            with tracer.start_as_current_span(
                "chat gpt-4o",
                attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                            "gen_ai.usage.input_tokens": 100 + i,
                            "gen_ai.usage.output_tokens": 10},
            ):  # fmt: skip
                tokens[planner][0] += 100 + i
                tokens[planner][1] += 10
            with tracer.start_as_current_span(
                f"invoke_agent {coder}", attributes={**agent, "gen_ai.agent.name": coder}
            ) as c:
                with tracer.start_as_current_span(
                    "ChatOpenAI",
                    attributes={"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini",
                                "llm.token_count.prompt": 50, "llm.token_count.completion": 5},
                ):  # fmt: skip
                    tokens[coder][0] += 50
                    tokens[coder][1] += 5
                tool = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "git_commit"}
                with (
                    tracer.start_as_current_span("execute_tool git_commit", attributes=tool),
                    tracer.start_as_current_span(
                        "POST /commit", attributes={"http.method": "POST"}
                    ),
                ):
                    pass
                if i % 5 == 4:
                    failed += 1
                    c.record_exception(ValueError(f"tests failed in trace {i}"))
                    c.set_status(Status(StatusCode.ERROR, f"tests failed in trace {i}"))
    tp.force_flush(30_000)
    tp.shutdown()
    print(json.dumps({"ended": ended, "tokens": tokens, "failed": {coder: failed},
                      "traces": args.traces}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
