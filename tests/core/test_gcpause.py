"""paused_gc: the cyclic collector paused for a batch, nested and from several threads."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from codeur_widgets.core import gcpause
from codeur_widgets.core.gcpause import paused_gc


@pytest.fixture(autouse=True)
def _collector_enabled() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    gcpause.set_enabled(True)
    if was:
        gc.enable()
    else:
        gc.disable()


def test_the_collector_is_paused_in_the_body_and_enabled_after() -> None:
    with paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_an_error_in_the_body_still_enables_it() -> None:
    with pytest.raises(RuntimeError, match="boom"), paused_gc():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_nested_pauses_enable_it_once_the_outermost_ends() -> None:
    with paused_gc():
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner one ending does not enable it
    assert gc.isenabled()


def test_a_collector_disabled_before_stays_disabled() -> None:
    gc.disable()
    with paused_gc():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_set_enabled_false_makes_pauses_no_ops() -> None:
    gcpause.set_enabled(False)
    with paused_gc():
        assert gc.isenabled()
    assert gc.isenabled()


def test_overlapping_pauses_from_threads() -> None:
    # Eight threads pause in overlapping windows (each waits for all to be inside, then leaves
    # in turn): the collector is off while any is inside, and on once the last has left.
    n = 8
    inside = threading.Barrier(n)
    seen: list[bool] = []
    turn = threading.Lock()

    def worker() -> None:
        with paused_gc():
            inside.wait(10)
            with turn:
                seen.append(gc.isenabled())

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == [False] * n
    assert gc.isenabled()


def test_many_short_pauses_from_threads_leave_it_enabled() -> None:
    def worker() -> None:
        for _ in range(2_000):
            with paused_gc():
                pass

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert gc.isenabled()
    assert gcpause._depth == 0
