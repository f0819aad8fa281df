"""Pausing Python's cyclic garbage collector while a batch of input is turned into events.

Decoding an OTLP request and folding its spans into the stores allocates thousands of container
objects (span records, the correlator's nodes, events and their data) that live for the whole
batch. The cyclic collector counts those allocations and, every 700 of them, walks the young
objects; what survives a few walks is promoted and makes the full collections (which walk every
object the stores hold) come more often. None of that garbage is cyclic: reference counting
frees it. Measured on the OTLP benchmark (``benchmarks.otel_throughput``, 4 exporters, 2 cores),
the collector took about a fifth of the Hub's time; pausing it for each batch, the way
:mod:`timeit` pauses it for a measurement, gave about 10 % more spans per second.

:func:`paused_gc` is that pause, safe to nest and to enter from several threads at once: the
collector is disabled while at least one pause is active, and enabled again by the last one to
leave, only if it was enabled when the first one came in. Objects made garbage in a pause are
collected by the first collection after it (the pause does not lose anything, it delays a
collection by one batch, a few milliseconds).

One case it cannot tell apart: another thread that disables the collector *during* a pause has
it enabled again when the pause ends. A program that manages the collector itself calls
``set_enabled(False)`` first, which turns every pause into a no-op.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["paused_gc", "set_enabled"]

_lock = threading.Lock()
_depth = 0  # pauses active now, in all threads
_reenable = False  # the first pause found the collector enabled: the last one enables it
_enabled = True


def set_enabled(enabled: bool) -> None:
    """Allow (True, the default) or forbid pauses of the collector, process-wide."""
    global _enabled
    _enabled = bool(enabled)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Run the body with the cyclic garbage collector paused (see the module docstring)."""
    if not _enabled:
        yield
        return
    global _depth, _reenable
    with _lock:
        if _depth == 0:
            _reenable = gc.isenabled()
            if _reenable:
                gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _reenable:
                _reenable = False
                gc.enable()
