"""Decode large OTLP trace requests in a worker process: a second core for the receivers.

Decoding a protobuf request is Python work on upb's wrappers, about 9 µs a span, and it runs
under the GIL that the hub's loop needs for the rest (correlating, the stores): in one process
the two take turns on one core, which bounds a receiver at about 20,000 spans/s on a 2-core
machine. :class:`DecodeWorker` hands the bodies of large requests (at least
:data:`WORKER_MIN_BYTES`) to one worker process, which decodes them with
:func:`~codeur_widgets.otel.decode.decode_traces` and sends the spans back as plain tuples (about
2.7 µs a span to read back into :class:`~codeur_widgets.otel.records.SpanRecord`, with msgpack's
C decoder). Small requests, the usual ones of an agent in a notebook, are decoded in the caller's
thread as before, and no process is started until a large request comes.

The worker is ``python -m codeur_widgets.otel.decode_worker``, started in a background thread and
connected by a socket pair (POSIX; on other systems requests are decoded in-process). It is not
``multiprocessing``'s *spawn*, which would import the user's ``__main__`` again in the child. Until
it answers, and whenever it cannot (it failed to start, it died), the receiver decodes in its own
thread, as it always did; while it decodes one request, the next ones wait for it (it decodes
about five times faster than the hub applies what it decoded). A worker lost during a request
(killed, out of memory) leaves that request to the receiver's thread, so nothing valid is lost;
the next large request starts a new worker, at most :data:`MAX_RESTARTS` times.
The receiving threads never block the hub's loop: they wait on the pipe with the GIL released.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any

import msgspec

from .decode import Decoded, DecodeFailed, decode_traces
from .records import SpanEvent, SpanRecord

__all__ = ["MAX_RESTARTS", "WORKER_MIN_BYTES", "DecodeWorker"]

log = logging.getLogger("codeur_widgets.otel.decode_worker")

WORKER_MIN_BYTES = 32 << 10
"""Request bodies at least this large (after decompression) are decoded by the worker: about 150
spans and more. Smaller ones cost less to decode here than to send there and back."""
MAX_RESTARTS = 3
"""Workers started after the first one died; past it, requests are decoded in-process."""
ANSWER_TIMEOUT = 30.0
"""Seconds a request waits for the worker's answer before the worker is deemed hung."""

_CONTENTS = ("proto", "json")


# -- the worker process ----------------------------------------------------------------------
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode


def _rows(decoded: Decoded) -> list[Any]:
    """A decoded request as plain data for msgpack (C on both sides, and data only: unlike a
    pickle, reading it back runs no code). Each resource is sent once: a request's spans share
    their resource's dict."""
    resources: list[dict[str, Any]] = []
    index: dict[int, int] = {}
    rows = []
    for r in decoded.records:
        i = index.get(id(r.resource))
        if i is None:
            i = index[id(r.resource)] = len(resources)
            resources.append(r.resource)
        rows.append((
            r.trace_id, r.span_id, r.parent_id, r.name, r.start, r.end, r.attributes,
            r.status_code, r.status_message,
            [(e.name, e.ts, e.attributes) for e in r.events] if r.events else None,
            r.parent_remote, i, r.scope,
        ))  # fmt: skip
    return [resources, rows, decoded.rejected, decoded.reason, decoded.dropped_attributes]


def _serve(conn: Any) -> None:
    """The worker's loop: ``content + body`` in; ``["ok", ...]``, ``["failed", why]`` (not
    decodable) or ``["here"]`` (decodable, but not as msgpack: text with a lone surrogate, from
    a JSON escape; the receiver decodes that one itself) out. Ends when the hub's end of the
    pipe closes (the receiver stopped, or the kernel died)."""
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            return
        content = _CONTENTS[message[0]]
        try:
            answer = _encode(["ok", *_rows(decode_traces(message[1:], content))])
        except DecodeFailed as exc:
            answer = _encode(["failed", str(exc)])
        except Exception:  # e.g. UnicodeEncodeError
            answer = _encode(["here"])
        conn.send_bytes(answer)


def _records(resources: list[dict[str, Any]], rows: list[list[Any]]) -> list[SpanRecord]:
    return [
        SpanRecord(
            trace_id, span_id, parent_id, name, start, end, attributes,
            status_code=status_code, status_message=status_message,
            events=[SpanEvent(*e) for e in events] if events else None,
            parent_remote=parent_remote, resource=resources[resource], scope=scope,
        )
        for (trace_id, span_id, parent_id, name, start, end, attributes, status_code,
             status_message, events, parent_remote, resource, scope) in rows
    ]  # fmt: skip


# -- the receivers' side ---------------------------------------------------------------------
class DecodeWorker:
    """Decodes OTLP trace requests, large ones in a worker process (see the module).

    Thread-safe: the receivers' threads call :meth:`try_decode` at once; one request at a time
    is in the worker, the others wait for it.
    """

    def __init__(self, min_bytes: int = WORKER_MIN_BYTES) -> None:
        self.min_bytes = min_bytes
        self._lock = threading.Lock()  # one request in the worker at a time
        self._state_lock = threading.Lock()
        self._conn: Any = None
        self._process: Any = None
        self._starting = False
        # Closed: every request stays with the caller. From the start where no worker can run
        # (the socket pair handed to the child needs POSIX), so no start is tried there.
        self._closed = os.name != "posix"
        self.starts = 0
        self.deaths = 0
        self.in_worker = 0  # requests decoded by the worker
        self.in_process = 0  # large requests decoded here (worker busy, starting or gone)
        self.last_error: str | None = None

    # -- decoding --------------------------------------------------------------------------------
    def try_decode(self, body: bytes, content: str) -> Decoded | None:
        """``decode_traces(body, content)`` done by the worker, or None when the caller is to
        decode it itself: a small body, no worker (yet), or a worker lost on the way. Raises
        :class:`~codeur_widgets.otel.decode.DecodeFailed` as ``decode_traces`` does."""
        if len(body) < self.min_bytes or self._closed:
            return None
        if self._conn is not None:
            with self._lock:  # one request at a time in the worker; waiting releases the GIL
                conn, process = self._conn, self._process
                if conn is not None and process.poll() is None:
                    decoded = self._in_worker(conn, body, content)
                    if decoded is not None:
                        return decoded
                elif conn is not None:
                    self._lost("the decode worker exited")
        self._start_soon()
        with self._state_lock:
            self.in_process += 1
        return None

    def _in_worker(self, conn: Any, body: bytes, content: str) -> Decoded | None:
        try:
            conn.send_bytes(bytes((_CONTENTS.index(content),)) + body)
            if not conn.poll(ANSWER_TIMEOUT):
                raise TimeoutError(f"no answer in {ANSWER_TIMEOUT:.0f} s")
            answer = _decode(conn.recv_bytes())
        except (EOFError, OSError, TimeoutError, msgspec.DecodeError) as exc:
            # Lost (killed, out of memory, hung): this request is decoded by the caller, so
            # that nothing valid is lost; the next large request starts a new worker.
            self._lost(f"{type(exc).__name__}: {exc}")
            return None
        if answer[0] == "here":
            return None
        self.in_worker += 1
        if answer[0] == "failed":
            raise DecodeFailed(answer[1])
        _, resources, rows, rejected, reason, dropped = answer
        out = Decoded()
        out.records = _records(resources, rows)
        out.rejected, out.reason, out.dropped_attributes = rejected, reason, dropped
        return out

    # -- the process -----------------------------------------------------------------------------
    def _start_soon(self) -> None:
        with self._state_lock:
            if self._starting or self._conn is not None or self._closed:
                return
            if self.starts > MAX_RESTARTS:
                return
            self._starting = True
        threading.Thread(target=self._start, name="codeur_widgets.otlp.decode-start",
                         daemon=True).start()  # fmt: skip

    def _start(self) -> None:
        try:
            conn, process = _spawn()
        except Exception as exc:  # no worker: requests are decoded in-process, as before
            self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            log.warning("OTLP decode worker not started (%s); decoding in-process",
                        self.last_error)  # fmt: skip
            with self._state_lock:
                self.starts += 1
                self._starting = False
            return
        with self._state_lock:
            self.starts += 1
            self._starting = False
            if not self._closed:
                self._process, self._conn = process, conn
                return
        _stop(conn, process)

    def _lost(self, why: str) -> None:
        with self._state_lock:
            conn, process = self._conn, self._process
            self._conn = self._process = None
            self.deaths += 1
            self.last_error = why[:300]
        log.warning("OTLP decode worker lost (%s)", why)
        _stop(conn, process)

    def close(self) -> None:
        """Stop the worker (idempotent); later requests are decoded in-process."""
        with self._state_lock:
            self._closed = True
            conn, process = self._conn, self._process
            self._conn = self._process = None
        _stop(conn, process)

    @property
    def pid(self) -> int | None:
        """The worker process's id while it runs (its CPU time is not the hub process's)."""
        process = self._process
        return process.pid if process is not None else None

    def health(self) -> dict[str, Any]:
        """Counters for the receiver's health."""
        return {
            "decode_worker": self._conn is not None,
            "decoded_in_worker": self.in_worker,
            "decoded_in_process": self.in_process,
            "decode_worker_deaths": self.deaths,
        }


def _spawn() -> tuple[Connection, subprocess.Popen[bytes]]:
    """Start a worker and wait until it answers a tiny request (its imports done). POSIX."""
    ours, theirs = socket.socketpair()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", __name__, str(theirs.fileno())],
            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    finally:
        theirs.close()
    conn = Connection(ours.detach())
    try:
        conn.send_bytes(b"\x00")  # an empty protobuf request
        if not conn.poll(ANSWER_TIMEOUT) or _decode(conn.recv_bytes())[0] != "ok":
            raise RuntimeError("the decode worker did not answer")
    except BaseException:
        _stop(conn, process)
        raise
    return conn, process


def _stop(conn: Any, process: Any) -> None:
    if conn is not None:
        try:
            conn.close()  # the worker's recv ends: it returns
        except OSError:
            pass
    if process is not None:
        try:
            process.wait(1.0)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(1.0)


if __name__ == "__main__":  # the worker: python -m codeur_widgets.otel.decode_worker FD
    _serve(Connection(int(sys.argv[1])))
