"""The receivers decode, and the loop applies, each request with the cyclic collector paused
(core/gcpause): a request's records are no cyclic garbage, and the collector's walks over them
cost the Hub about a fifth of its time (benchmarks/README.md)."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from codeur_widgets.otel import receiver
from codeur_widgets.otel.correlate import Correlator

from .receiver_helpers import agent_span, live, post, request

pytestmark = pytest.mark.usefixtures("otel_sdk")


def test_a_request_is_decoded_and_applied_with_the_collector_paused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, list[bool]] = {"decode": [], "apply": []}
    decode, end_many = receiver.decode_traces, Correlator.end_many

    def watched_decode(body: bytes, content: str) -> Any:
        seen["decode"].append(gc.isenabled())
        return decode(body, content)

    def watched_end_many(self: Correlator, records: Any) -> None:
        seen["apply"].append(gc.isenabled())
        end_many(self, records)

    monkeypatch.setattr(receiver, "decode_traces", watched_decode)
    monkeypatch.setattr(Correlator, "end_many", watched_end_many)
    assert gc.isenabled()
    with live("otlp://127.0.0.1:0") as h:
        assert post(h.port, request(agent_span("paused")).SerializeToString())[0] == 200
        h.settle(lambda: "paused" in h.hub.agents.names())
    assert seen == {"decode": [False], "apply": [False]}
    assert gc.isenabled()  # and on again once they are done
