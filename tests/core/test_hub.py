"""Hub: publishing paths, the thread inbox, the render tick, lifecycle and health."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any, ClassVar

import pytest

from codeur_widgets.core.clock import FakeClock
from codeur_widgets.core.events import Event, InvalidEvent
from codeur_widgets.core.hub import Hub, default_hub
from codeur_widgets.core.store import Store


class CountingStore(Store):
    """Counts events per topic: the simplest store, to observe exactly what was applied."""

    name = "counting"
    topics: ClassVar[tuple[str, ...]] = ("*",)

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}
        self.snapshots = 0

    def apply(self, event: Event) -> None:
        self.counts[event.topic] = self.counts.get(event.topic, 0) + 1
        self.touch()

    def snapshot(self) -> dict[str, Any]:
        self.snapshots += 1
        return {"counts": dict(self.counts)}


def make_hub(**kwargs: Any) -> tuple[Hub, CountingStore]:
    kwargs.setdefault("collect_system", False)
    hub = Hub(**kwargs)
    store = CountingStore()
    hub.add_store(store)
    return hub, store


def test_publish_applies_synchronously_and_kwargs_become_data() -> None:
    hub, store = make_hub(clock=FakeClock(100.0))
    e = hub.publish("job.enqueued", job_id="job-7", kind="code_generation")
    assert e.data == {"job_id": "job-7", "kind": "code_generation"}
    assert e.ts == 100.0
    assert store.counts == {"job.enqueued": 1}
    assert hub.queue.snapshot()["queued"] == 1


def test_publish_rejects_programmer_mistakes_with_the_field() -> None:
    hub, store = make_hub()
    with pytest.raises(InvalidEvent) as info:
        hub.publish("Bad Topic")
    assert info.value.field == "topic"
    assert store.counts == {}


def test_publish_many_is_all_or_nothing() -> None:
    hub, store = make_hub()
    good = {"topic": "log", "data": {"message": "hi"}}
    with pytest.raises(InvalidEvent, match="item 1"):
        hub.publish_many([good, {"topic": "log", "ts": "not a time"}])
    assert store.counts == {}
    assert hub.publish_many([good, Event.create("log")]) == 2
    assert store.counts == {"log": 2}


def test_ingest_never_raises_and_counts_rejects() -> None:
    hub, store = make_hub()
    assert hub.ingest({"event_type": "log", "agent_name": "x"}) is not None
    assert hub.ingest({"event_type": 3}) is None
    assert hub.health()["rejected"] == 1
    assert store.counts == {"log": 1}


def test_duplicate_store_name_is_refused() -> None:
    hub, _ = make_hub()
    with pytest.raises(ValueError, match="already registered"):
        hub.add_store(CountingStore())


def test_watch_calls_back_only_when_its_stores_moved() -> None:
    hub, _ = make_hub()
    frames: list[dict[str, Any]] = []
    w = hub.watch(["counting"], frames.append, max_hz=1e9)
    assert hub.render_now() == 1  # the first tick always delivers the current state
    assert hub.render_now() == 0
    hub.publish("log")
    assert hub.render_now() == 1
    assert frames[-1]["counting"]["counts"] == {"log": 1}
    w.close()
    hub.publish("log")
    assert hub.render_now() == 0
    w.close()  # idempotent


def test_watch_rate_limit_defers_but_never_loses_the_latest_state() -> None:
    hub, _store = make_hub()
    frames: list[dict[str, Any]] = []
    hub.watch(["counting"], frames.append, max_hz=10)
    hub.render_now(now=100.0)
    hub.publish("log")
    assert hub.render_now(now=100.05) == 0  # too soon for 10 Hz
    hub.publish("log")
    assert hub.render_now(now=100.1) == 1
    assert frames[-1]["counting"]["counts"] == {"log": 2}


def test_each_store_is_snapshotted_once_per_tick_for_all_views() -> None:
    hub, store = make_hub()
    for _ in range(5):
        hub.watch(["counting"], lambda frame: None, max_hz=1e9)
    hub.publish("log")
    hub.render_now()
    assert store.snapshots == 1


def test_a_failing_view_is_isolated_and_counted() -> None:
    hub, _store = make_hub()
    good: list[Any] = []

    def broken(frame: dict[str, Any]) -> None:
        raise RuntimeError("view bug")

    hub.watch(["counting"], broken, max_hz=1e9)
    hub.watch(["counting"], good.append, max_hz=1e9)
    hub.render_now()
    assert len(good) == 1
    assert hub.health()["render_errors"] == 1


def test_watch_unknown_store_names_it() -> None:
    hub, _ = make_hub()
    with pytest.raises(KeyError, match="nope"):
        hub.watch(["nope"], lambda f: None)


def test_start_without_a_loop_explains_what_to_do() -> None:
    hub, _ = make_hub()
    with pytest.raises(RuntimeError, match="running asyncio event loop"):
        hub.start()


def test_threads_publish_exact_counts_into_the_stores() -> None:
    """8 threads x 50,000 publish_threadsafe calls while the loop runs: nothing lost."""
    per_thread, n_threads = 50_000, 8

    async def main() -> tuple[Hub, CountingStore]:
        hub, store = make_hub(thread_buffer=n_threads * per_thread)
        hub.start()

        def agent_thread(i: int) -> None:
            name = f"agent-{i}"
            for _ in range(per_thread):
                hub.publish_threadsafe("agent.tokens", name, prompt=1, completion=2)

        threads = [threading.Thread(target=agent_thread, args=(i,)) for i in range(n_threads)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            await asyncio.sleep(0.01)
        await hub.aclose()
        return hub, store

    hub, store = asyncio.run(main())
    assert store.counts == {"agent.tokens": per_thread * n_threads}
    agents = {a["name"]: a for a in hub.agents.snapshot()["agents"]}
    assert len(agents) == n_threads
    assert all(a["prompt_tokens"] == per_thread for a in agents.values())
    assert all(a["completion_tokens"] == 2 * per_thread for a in agents.values())
    assert hub.health()["dropped"] == 0


def test_threads_without_a_running_loop_apply_directly_and_exactly() -> None:
    hub, store = make_hub()

    def worker() -> None:
        for _ in range(10_000):
            hub.publish_threadsafe("log", "w", message="x")

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.counts == {"log": 40_000}


def test_publish_threadsafe_fast_path_builds_what_event_create_builds() -> None:
    # publish_threadsafe inlines Event.create's fast path (a topic and agent already seen): the
    # two must agree, first call (slow path, which caches the names) and later calls alike.
    hub, _ = make_hub(clock=FakeClock(50.0))
    long_text = "é" * 10_000  # not a fast-path value: cleaned (truncated) either way
    for _ in range(2):
        got = hub.publish_threadsafe("agent.custom.topic", "fresh_agent", text=long_text, n=1)
        want = Event.create("agent.custom.topic", "fresh_agent", {"text": long_text, "n": 1},
                            clock=hub.clock)  # fmt: skip
        assert (got.topic, got.agent, got.data, got.ts) == (want.topic, want.agent, want.data,
                                                            want.ts)  # fmt: skip
        assert got.id.split("-")[0] == want.id.split("-")[0] and got.id != want.id
        assert got.trace_id is None and got.span_id is None
    with pytest.raises(InvalidEvent, match="data"):
        hub.publish_threadsafe("agent.custom.topic", "fresh_agent", data={"x": float("nan")})
    with pytest.raises(InvalidEvent, match="topic"):
        hub.publish_threadsafe("Bad Topic", "fresh_agent")
    with pytest.raises(InvalidEvent, match="agent"):
        hub.publish_threadsafe("agent.custom.topic", 42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ts", "trace_id", "span_id"),
    [
        (1_700_000_000.5, "job-7", "a1b2c3d4e5f60718"),  # what the agent API sends: fast path
        (None, "t" * 256, "s"),
        (2e12, "job-7", "s"),  # epoch milliseconds: the slow path converts them
        (1_700_000_000, "job-7", "s"),  # an int: the slow path
        (None, "jöb-ü", "s"),  # not ASCII: the slow path checks it
    ],
)
def test_publish_threadsafe_with_ids_and_times_builds_what_event_create_builds(
    ts: float | None, trace_id: str, span_id: str
) -> None:
    hub, _ = make_hub(clock=FakeClock(50.0))
    for _ in range(2):  # the first call caches the topic and agent
        got = hub.publish_threadsafe("span.started", "a", ts=ts, trace_id=trace_id,
                                     span_id=span_id, name="x")  # fmt: skip
        want = Event.create("span.started", "a", {"name": "x"}, ts=ts, trace_id=trace_id,
                            span_id=span_id, clock=hub.clock)  # fmt: skip
        assert (got.ts, got.trace_id, got.span_id, got.data) == (
            want.ts, want.trace_id, want.span_id, want.data
        )  # fmt: skip
    for bad in ({"trace_id": "x" * 257}, {"span_id": ""}, {"ts": float("nan")}, {"ts": -1.0}):
        with pytest.raises(InvalidEvent):
            hub.publish_threadsafe("span.started", "a", **bad)  # type: ignore[arg-type]


def test_full_inbox_drops_oldest_and_counts_while_the_caller_never_blocks() -> None:
    async def main() -> tuple[Hub, CountingStore, float]:
        hub, store = make_hub(thread_buffer=1_000)
        hub.start()
        worst = 0.0

        def worker() -> None:
            nonlocal worst
            for i in range(5_000):
                t0 = time.perf_counter()
                hub.publish_threadsafe("log", "w", n=i)
                worst = max(worst, time.perf_counter() - t0)

        # The loop is blocked (this coroutine does not yield) while the thread floods the inbox.
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        await asyncio.sleep(0.05)
        await hub.aclose()
        return hub, store, worst

    hub, store, worst = asyncio.run(main())
    health = hub.health()
    assert health["dropped"] == 4_000
    assert store.counts == {"log": 1_000}
    assert worst < 0.5  # never waits for the (blocked) loop


def test_publish_from_another_thread_while_running_is_routed_through_the_inbox() -> None:
    async def main() -> CountingStore:
        hub, store = make_hub()
        hub.start()
        t = threading.Thread(target=lambda: [hub.publish("log") for _ in range(1000)])
        t.start()
        while t.is_alive():
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.01)
        await hub.aclose()
        return store

    assert asyncio.run(main()).counts == {"log": 1000}


def test_stop_applies_everything_buffered_before_it() -> None:
    async def main() -> CountingStore:
        hub, store = make_hub()
        hub.start()
        t = threading.Thread(target=lambda: [hub.publish_threadsafe("log") for _ in range(3000)])
        t.start()
        t.join()  # the loop has not run: all 3000 are still buffered
        hub.stop()
        return store

    assert asyncio.run(main()).counts == {"log": 3000}


def test_running_hub_renders_samples_and_measures(monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        hub = Hub(sample_interval=0.1, render_hz=20)
        frames: list[dict[str, Any]] = []
        hub.watch(["system", "agents"], frames.append)
        async with hub:
            assert hub.running
            hub.agent("coding_agent", model="gpt-4o", role="executor")
            await asyncio.sleep(1.3)
            health = hub.health()
        assert not hub.running
        return frames, health

    frames, health = asyncio.run(main())
    assert len(frames) >= 3
    assert frames[-1]["system"]["series"]["cpu"], "the sampler fed the system store"
    assert [a["name"] for a in frames[-1]["agents"]["agents"]] == ["coding_agent"]
    assert health["running"] is True
    assert health["events_per_second"] >= 0
    assert health["loop_lag_ms"] >= 0
    json.dumps(health)


def test_snapshot_is_json_serialisable() -> None:
    hub, _ = make_hub()
    hub.publish("agent.registered", "coding_agent", role="executor", model="gpt-4o")
    hub.publish("agent.message", "user", target="request_planner", kind="request")
    hub.publish("job.enqueued", job_id="j1")
    hub.publish("log", "coding_agent", level="INFO", message="hello")
    snap = hub.snapshot()
    assert {"agents", "queue", "graph", "flows", "logs", "system", "health"} <= set(snap)
    json.dumps(snap, allow_nan=False)


def test_clean_stop_under_asyncio_run_leaves_no_pending_tasks() -> None:
    script = textwrap.dedent(
        """
        import asyncio, gc, warnings
        warnings.simplefilter("error")
        from codeur_widgets import Hub

        async def main():
            hub = Hub(sample_interval=0.05)
            hub.start()
            hub.agent("a").send("b", "ping")
            await asyncio.sleep(0.3)
            await hub.aclose()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            assert not others, others

        asyncio.run(main())
        gc.collect()
        print("clean")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-X", "dev", "-c", script], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "clean"
    # What a leaked task or coroutine prints; not asyncio debug mode's "Executing <Task pending
    # ...> took 0.150 seconds", which a loaded machine prints about any slow step.
    leaks = ("Task was destroyed but it is pending", "never awaited")
    assert not any(leak in proc.stderr for leak in leaks), proc.stderr


def test_default_hub_is_lazy_and_shared() -> None:
    import codeur_widgets.core.hub as hub_module

    assert default_hub() is default_hub()
    assert isinstance(hub_module._default_hub, Hub)


def test_importing_core_does_not_import_jupyter() -> None:
    script = (
        "import sys, codeur_widgets, codeur_widgets.core.hub as h; h.Hub(); "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('ipywidgets', 'anywidget', 'ipykernel', 'IPython', 'traitlets', 'bqplot')]; "
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_keyboard_interrupt_in_a_view_is_contained_and_the_view_redrawn() -> None:
    hub, _store = make_hub()
    calls: list[Any] = []

    def interrupted_once(frame: dict[str, Any]) -> None:
        calls.append(frame)
        if len(calls) == 1:
            raise KeyboardInterrupt

    other: list[Any] = []
    hub.watch(["counting"], interrupted_once, max_hz=1e9)
    hub.watch(["counting"], other.append, max_hz=1e9)
    hub.render_now(1.0)  # must not raise
    assert len(other) == 1 and hub.health()["render_interrupts"] == 1
    hub.render_now(2.0)  # nothing moved, but the interrupted view is drawn again
    assert len(calls) == 2 and len(other) == 1


def test_a_paused_watch_is_skipped_then_brought_up_to_date() -> None:
    hub, _store = make_hub()
    frames: list[Any] = []
    w = hub.watch(["counting"], frames.append, max_hz=1e9)
    hub.render_now(1.0)
    w.paused = True
    hub.publish("x.y")
    hub.render_now(2.0)
    assert len(frames) == 1
    w.paused = False
    hub.render_now(3.0)
    assert len(frames) == 2 and frames[-1]["counting"]["counts"] == {"x.y": 1}


def test_a_periodic_task_that_dies_is_restarted_and_counted() -> None:
    hub, _store = make_hub(render_hz=50)
    frames: list[Any] = []
    deaths = 0

    def view(frame: dict[str, Any]) -> None:
        nonlocal deaths
        frames.append(frame)

    hub.watch(["counting"], view)
    original = hub.render_now

    def render_now_dies_once(now: float | None = None) -> int:
        nonlocal deaths
        if deaths == 0:
            deaths += 1
            raise RuntimeError("bug in the render loop")
        return original(now)

    hub.render_now = render_now_dies_once  # type: ignore[method-assign]

    async def main() -> dict[str, Any]:
        async with hub:
            await asyncio.sleep(0.2)
            restarts = hub.health()["task_restarts"]
            hub.publish("a.b")
            await asyncio.sleep(0.2)
        return restarts

    assert asyncio.run(main()) == {"render": 1}
    assert frames and frames[-1]["counting"]["counts"] == {"a.b": 1}
