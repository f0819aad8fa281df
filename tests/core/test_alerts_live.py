"""Alerts on a running hub (real time): a budget pauses a simulated agent, and webhooks reach a
real HTTP receiver on a loopback port without ever slowing the hub."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from codeur_widgets.core.alerts import Rule
from codeur_widgets.core.clock import FakeClock
from codeur_widgets.core.hub import Hub
from codeur_widgets.sim.simulator import Simulator

# -- a budget pauses a simulator agent -------------------------------------------------------


async def _wait_for(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


def test_a_budget_pauses_the_agent_and_its_spend_stops_growing() -> None:
    async def main() -> None:
        hub = Hub(collect_system=False, default_alerts=False)
        hub.start()
        sim = Simulator(hub, seed=5, time_scale=200.0)
        commands: list[tuple[str, dict[str, Any]]] = []
        sim.agents["coding_agent"].on_command(lambda c, args: commands.append((c, args)))
        audit = []
        hub.bus.subscribe("admin.command", audit.append)
        budget = Rule(
            "coder budget", metric="cost_usd", scope="agent:coding_agent", above=0.05,
            window=3600, actions=["pause"], severity="critical",
        )  # fmt: skip
        hub.alerts.add(budget)
        sim.start(jobs_per_minute=600, concurrency=3)
        try:
            assert await _wait_for(lambda: hub.alerts.active(), timeout=30), "never fired"
            [alert] = hub.alerts.active()
            assert alert["id"] == "coder budget@agent:coding_agent"
            assert alert["value"] > 0.05
            # The pause reached the agent through on_command, and the simulator obeys it.
            assert commands == [("pause", {"alert": "coder budget@agent:coding_agent"})]
            assert "coding_agent" in sim.paused
            # Audited like a click: an admin.command from the origin "alerts", in the log tail.
            [command] = audit
            assert (command.agent, command.data["command"], command.data["origin"]) == (
                "coding_agent", "pause", "alerts",
            )  # fmt: skip
            lines = [r["message"] for r in hub.logs.query(source="admin")]
            assert lines == [
                "admin.command: pause coding_agent alert=coder budget@agent:coding_agent "
                "(by alerts)"
            ]
            # Its spend stops growing (at ×200, a second is 200 s of simulated work).
            await asyncio.sleep(0.3)  # a step already past its pause check may still report
            spent = hub.agents.get("coding_agent")["cost_usd"]
            await asyncio.sleep(2.0)
            assert hub.agents.get("coding_agent")["cost_usd"] == spent
            assert hub.alerts.active()[0]["rule"] == "coder budget"  # still over the budget
        finally:
            await sim.aclose()
            await hub.aclose()

    asyncio.run(main())


# -- webhooks ----------------------------------------------------------------------------------


class Receiver:
    """A webhook receiver on a loopback port: answers with the next planned status (200 after
    the plan), or hangs for ``hang`` seconds first."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.plan: list[int] = []
        self.hang = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.posts.append(
                    {
                        "path": self.path,
                        "auth": self.headers.get("Authorization"),
                        "body": json.loads(body),
                        "at": time.monotonic(),
                    }
                )
                if receiver.hang:
                    time.sleep(receiver.hang)
                status = receiver.plan.pop(0) if receiver.plan else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:  # keep the test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook", creds: str = "") -> str:
        return f"http://{creds}127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


def _hub(**sender: Any) -> tuple[Hub, FakeClock]:
    clock = FakeClock(1_700_000_000.0)
    hub = Hub(clock=clock, collect_system=False, default_alerts=False)
    for key, value in {"backoff": 0.05, **sender}.items():
        setattr(hub.alerts.webhooks, key, value)
    return hub, clock


class Knob:
    def __init__(self, value: float) -> None:
        self.value = value

    def __call__(self) -> float:
        return self.value


def test_each_firing_is_delivered_once_after_a_500(receiver: Receiver) -> None:
    hub, clock = _hub()
    knob = Knob(2)
    secret = "s3cr3t-pass"
    url = receiver.url("/hooks/T000/B000?token=tok-9", creds=f"bot:{secret}@")
    hub.alerts.add(Rule("r", metric=knob, above=1, webhook=url, severity="critical"))
    receiver.plan = [500]
    hub.alerts.evaluate()
    for _ in range(3):  # still firing: no second delivery
        clock.advance(1)
        hub.alerts.evaluate()
    assert hub.alerts.webhooks.flush(timeout=10)
    assert [p["body"]["event"] for p in receiver.posts] == ["alert.fired", "alert.fired"]
    first, second = receiver.posts
    assert first["body"] == second["body"]  # the same delivery, retried after the 500
    assert second["body"]["alert"] == "r@hub" and second["body"]["value"] == 2
    assert second["body"]["severity"] == "critical" and second["body"]["id"]
    assert second["path"] == "/hooks/T000/B000?token=tok-9"
    assert second["auth"] == "Basic " + base64.b64encode(f"bot:{secret}".encode()).decode()
    knob.value = 0
    hub.alerts.evaluate()
    assert hub.alerts.webhooks.flush(timeout=10)
    assert [p["body"]["event"] for p in receiver.posts][-1] == "alert.resolved"
    health = hub.health()["alerts"]["webhooks"]
    assert (health["sent"], health["retries"], health["failed"]) == (2, 1, 0)
    # The URL's secrets are never shown: not in the rules, the snapshot or health.
    shown = json.dumps({"snapshot": hub.snapshot(), "health": hub.health()}, default=str)
    for hidden in (secret, "tok-9", "T000", "bot:"):
        assert hidden not in shown
    assert hub.alerts.describe("r")["webhook"] == f"http://***@127.0.0.1:{receiver.port}/…"
    assert secret not in repr(hub.alerts.rules()) and "tok-9" not in repr(hub.alerts.rules())


def test_a_failing_webhook_is_given_up_after_n_attempts_and_counted(receiver: Receiver) -> None:
    hub, _clock = _hub(attempts=3)
    receiver.plan = [500] * 10
    hub.alerts.add(Rule("r", metric=lambda: 2, above=1, webhook=receiver.url()))
    hub.alerts.evaluate()
    assert hub.alerts.webhooks.flush(timeout=10)
    assert len(receiver.posts) == 3
    health = hub.health()["alerts"]["webhooks"]
    assert (health["sent"], health["retries"], health["failed"]) == (0, 2, 1)
    assert health["last_error"] == f"http://127.0.0.1:{receiver.port}/…: HTTP 500"
    # A client error is not retried.
    receiver.plan = [404]
    hub.alerts.add(Rule("s", metric=lambda: 2, above=1, webhook=receiver.url()))
    hub.alerts.evaluate()
    assert hub.alerts.webhooks.flush(timeout=10)
    assert len(receiver.posts) == 4 and hub.alerts.webhooks.failed == 2


def test_a_hanging_webhook_never_slows_the_hub(receiver: Receiver) -> None:
    hub, clock = _hub(timeout=0.5, attempts=2)
    receiver.hang = 3.0
    for i in range(5):
        hub.alerts.add(Rule(f"r{i}", metric=lambda: 2, above=1, webhook=receiver.url()))
    t0 = time.perf_counter()
    hub.alerts.evaluate()  # five firings, five deliveries queued
    evaluate_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for n in range(20_000):
        hub.publish("agent.tokens", "a", prompt=1, completion=1, cost_usd=0.0)
        if n % 5_000 == 0:
            clock.advance(1)
            hub.alerts.evaluate()
    publish_s = time.perf_counter() - t0
    assert evaluate_s < 0.1, evaluate_s
    assert publish_s < 5.0, publish_s  # ~0.3 s normally; a blocking POST would take >= 15 s
    assert hub.alerts.webhooks.pending() > 0  # still trying in the background meanwhile
    assert hub.alerts.webhooks.flush(timeout=20)
    health = hub.health()["alerts"]["webhooks"]
    assert health["failed"] == 5 and "no answer in 0.5 s" in health["last_error"]


def test_a_full_webhook_queue_drops_and_counts() -> None:
    hub, _clock = _hub(capacity=2, timeout=0.2, attempts=1)
    # Nothing listens on this port: each attempt fails fast, but the queue bound holds first.
    url = "http://127.0.0.1:9/x"
    for i in range(5):
        hub.alerts.add(Rule(f"r{i}", metric=lambda: 2, above=1, webhook=url))
    hub.alerts.evaluate()
    assert hub.alerts.webhooks.dropped >= 3 - 1  # the worker may have taken one already
    assert hub.alerts.webhooks.flush(timeout=10)


def test_idle_worker_threads_end_and_come_back(receiver: Receiver) -> None:
    hub, _clock = _hub(idle_exit=0.2)
    hub.alerts._runner.IDLE_EXIT = 0.2
    knob = Knob(2)
    hub.alerts.add(Rule("r", metric=knob, above=1, webhook=receiver.url()))

    def threads() -> list[str]:
        return sorted(t.name for t in threading.enumerate() if t.name.startswith("codeur_widgets."))

    hub.alerts.evaluate()
    assert hub.alerts.webhooks.flush(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (
        hub.alerts.webhooks._thread is not None or hub.alerts._runner._alive
    ):
        time.sleep(0.05)
    assert hub.alerts.webhooks._thread is None and hub.alerts._runner._alive == 0, threads()
    knob.value = 0  # both come back for the next call and delivery
    for _ in range(3):
        hub.alerts.evaluate()
    assert hub.alerts.webhooks.flush(timeout=10)
    assert [p["body"]["event"] for p in receiver.posts] == ["alert.fired", "alert.resolved"]
