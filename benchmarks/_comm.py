"""A comm spy for benchmarks without a browser: every widget message is recorded with its size.

The same approach as ``tests/widgets/conftest.py``: the ``comm`` package's ``create_comm`` hook
(which ipywidgets calls to open a widget's comm) is replaced, so each message a widget would send
to the front end is serialised as the kernel would (JSON content plus binary buffers) and
counted, with the wall-clock time it was sent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Sent:
    comm_id: str
    msg_type: str
    method: str
    size: int
    at: float  # time.monotonic()


@dataclass
class CommSpy:
    messages: list[Sent] = field(default_factory=list)

    def record(self, comm_id: str, msg_type: str, data: Any, buffers: Any) -> None:
        payload = json.dumps(data or {}, default=str, ensure_ascii=False, allow_nan=False)
        size = len(payload.encode()) + sum(len(memoryview(b).cast("B")) for b in buffers or ())
        method = str((data or {}).get("method", "")) if msg_type == "comm_msg" else ""
        self.messages.append(Sent(comm_id, msg_type, method, size, time.monotonic()))

    def updates(self, ids: set[str] | None = None, start: float = 0.0, end: float = 1e300):
        return [
            m
            for m in self.messages
            if m.method == "update" and start <= m.at < end and (ids is None or m.comm_id in ids)
        ]


def model_ids(widget: Any) -> set[str]:
    """The comm ids of ``widget`` and of every widget reachable through its traits."""
    from codeur_widgets.widgets._base import descendants

    return {w.model_id for w in descendants(widget)}


@contextmanager
def comm_spy() -> Iterator[CommSpy]:
    """Install the spy for the duration of the block (widgets created inside are recorded)."""
    import comm
    from comm.base_comm import BaseComm

    spy = CommSpy()

    class SpyComm(BaseComm):
        def publish_msg(
            self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None,
            **keys: Any,
        ) -> None:  # fmt: skip
            spy.record(self.comm_id, msg_type, data, buffers)

    saved = comm.create_comm
    comm.create_comm = lambda *a, **kw: SpyComm(*a, **kw)
    try:
        yield spy
    finally:
        comm.create_comm = saved
