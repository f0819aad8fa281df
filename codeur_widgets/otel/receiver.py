"""OTLP receivers as hub sources: ``otlp://`` (OTLP/HTTP) and ``otlp+grpc://`` (OTLP/gRPC).

``Hub(sources=["otlp://127.0.0.1:4318"])`` listens for ``POST /v1/traces`` (and ``/v1/logs``),
protobuf or JSON bodies, gzip or deflate; ``"otlp+grpc://127.0.0.1:4317"`` serves
``TraceService/Export`` (and ``LogsService/Export``). Query parameters (keywords of the same name
win over them):

* ``token``: a bearer token that requests must carry (``Authorization: Bearer <token>``; gRPC
  metadata ``authorization``). Never shown: not in ``health()``, ``repr`` or errors;
* ``max_body``: bytes of a request body, compressed and after decompression (default 8 MiB);
* ``hold``: seconds a span waits for its parent (see :mod:`codeur_widgets.otel.correlate`);
* ``capture_content``: ``1`` keeps messages and tool arguments (default: dropped, unless the hub's
  ``capture_content`` is True).
* ``decode_process``: ``0`` decodes every request in the receiver's threads (default: large
  requests in a worker process).

It binds to the host of the URL, loopback when none is given; port ``0`` picks a free one
(``source.port`` once started).

Why threads, not the hub's loop: decoding a request of 512 spans takes milliseconds of Python,
and at 20,000 spans/s that would be most of the kernel loop's time, in blocks the notebook would
feel. So requests are read and decoded on the receiver's own threads (``ThreadingHTTPServer``;
grpc's thread pool), which answer the exporter as the OTLP specification asks (200 with an
``ExportTraceServiceResponse`` and ``partial_success`` for rejected spans; 400 for undecodable
data; 401 without the token; 404 / 405 for another path or method; 411 without a length; 413 over
``max_body``, decompressed too; 415 for another content type or encoding; 503 with
``Retry-After`` while the hub's backlog is full; gRPC: INVALID_ARGUMENT, UNAUTHENTICATED,
RESOURCE_EXHAUSTED, UNAVAILABLE). Decoded records then go through the same
:class:`~codeur_widgets.otel.pipeline.SpanPipeline` as in-process spans: one append per request,
correlated on the loop in short slices. Large requests (32 KiB and more) are decoded in a
worker process instead (:mod:`codeur_widgets.otel.decode_worker`; ``decode_process=0`` turns it
off): threads share one GIL, so decoding on them took turns with the loop on one core.
"""

from __future__ import annotations

import hmac
import logging
import socket
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from ..core.events import Event, InvalidEvent
from ..core.gcpause import paused_gc
from ..core.sources import mask_url
from .correlate import DEFAULT_HOLD
from .decode import (
    Decoded,
    DecodeFailed,
    decode_logs,
    decode_traces,
    logs_response,
    status_body,
    traces_response,
)
from .decode_worker import DecodeWorker
from .pipeline import SpanPipeline
from .records import LogRecord, SpanRecord

if TYPE_CHECKING:
    from ..core.hub import Hub

__all__ = ["DEFAULT_MAX_BODY", "OTLPGrpcSource", "OTLPHttpSource", "open_receiver"]

log = logging.getLogger("codeur_widgets.otel.receiver")

DEFAULT_MAX_BODY = 8 << 20
"""Bytes of one request body, as sent and after decompression."""
MAX_CONNECTIONS = 64
DRAIN_LIMIT = 64 << 20
"""Bytes of a refused body still read (and dropped) so the client sees the answer; beyond, the
connection is closed at once."""
READ_TIMEOUT = 30.0
_PARAMS = frozenset({"token", "max_body", "hold", "capture_content", "decode_process"})
_PROTO_TYPES = ("application/x-protobuf", "application/protobuf")
_COUNTERS = {
    400: "bad_requests",
    401: "unauthorized",
    404: "not_found",
    405: "not_found",
    411: "bad_requests",
    413: "too_large",
    415: "unsupported",
}


class _Refused(Exception):
    """An HTTP answer other than 200: status, message, extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """``body`` decoded from ``gzip`` / ``deflate`` (zlib or raw) / identity, at most ``limit``
    bytes out (a decompression bomb stops there): raises :class:`_Refused` 413 or 400."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        candidates = [16 + zlib.MAX_WBITS]
    elif encoding == "deflate":
        candidates = [zlib.MAX_WBITS, -zlib.MAX_WBITS]
    else:
        raise _Refused(415, f"unsupported Content-Encoding {encoding[:32]!r}")
    for wbits in candidates:
        d = zlib.decompressobj(wbits)
        try:
            out = d.decompress(body, limit + 1)
        except zlib.error:
            continue
        if len(out) > limit or d.unconsumed_tail:
            raise _Refused(413, f"body larger than {limit} bytes once decompressed")
        return out
    raise _Refused(400, f"body is not valid {encoding}")


class _Receiver:
    """What both transports share: options, counters, the pipeline, the hand-off."""

    scheme = "otlp"
    default_port = 4318

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        max_body: int | None = None,
        hold: float | None = None,
        capture_content: bool | None = None,
        decode_process: bool | None = None,
    ) -> None:
        if not isinstance(url, str):
            raise TypeError(f"an OTLP URL must be a string, got {type(url).__name__}")
        self.url = mask_url(url)
        """The URL without its query (where the token may be): safe to show."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise ValueError(f"invalid OTLP URL {self.url}") from None
        params: dict[str, str] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key not in _PARAMS:
                raise ValueError(
                    f"unknown parameter {key!r} in {self.url}?…; "
                    f"known: {', '.join(sorted(_PARAMS))}"
                )
            params[key] = value
        self.host = parts.hostname or "127.0.0.1"
        self._requested_port = self.default_port if port is None else port
        self.port: int | None = None
        self._token = token if token is not None else params.get("token") or None
        self.max_body = int(
            max_body if max_body is not None else params.get("max_body", DEFAULT_MAX_BODY)
        )
        if self.max_body < 1024:
            raise ValueError(f"max_body must be at least 1024 bytes (in {self.url})")
        self.hold = float(hold if hold is not None else params.get("hold", DEFAULT_HOLD))
        if capture_content is None and "capture_content" in params:
            capture_content = params["capture_content"].lower() in ("1", "true", "yes")
        self._capture_option = capture_content
        if decode_process is None:
            decode_process = params.get("decode_process", "1").lower() not in ("0", "false", "no")
        self.decode_process = bool(decode_process)
        # Large requests are decoded in a worker process (made at start, closed at stop).
        self._decoder: DecodeWorker | None = None
        self.pipeline: SpanPipeline | None = None
        self.counts = {
            "requests": 0, "spans": 0, "logs": 0, "rejected_spans": 0, "bad_requests": 0,
            "too_large": 0, "unsupported": 0, "unauthorized": 0, "overloaded": 0,
            "not_found": 0, "errors": 0, "refused_connections": 0, "unread_attributes": 0,
        }  # fmt: skip
        self._count_lock = threading.Lock()
        self.last_error: str | None = None

    # -- shared --------------------------------------------------------------------------------
    def _count(self, key: str, n: int = 1) -> None:
        with self._count_lock:
            self.counts[key] += n

    def _scrub(self, text: str) -> str:
        token = self._token
        return text.replace(token, "***") if token and token in text else text

    def _authorized(self, header: str | None) -> bool:
        if not self._token:
            return True
        expected = f"Bearer {self._token}".encode()
        return header is not None and hmac.compare_digest(header.strip().encode(), expected)

    def _decode_traces(self, body: bytes, content: str) -> Decoded:
        """A request's spans: large requests in the decode worker when there is one."""
        decoder = self._decoder
        decoded = decoder.try_decode(body, content) if decoder is not None else None
        return decoded if decoded is not None else decode_traces(body, content)

    def _start_decoder(self) -> None:
        if self.decode_process and self._decoder is None:
            self._decoder = DecodeWorker()  # its process starts with the first large request

    def _stop_decoder(self) -> None:
        decoder, self._decoder = self._decoder, None
        if decoder is not None:
            decoder.close()

    def _make_pipeline(self, hub: Hub) -> SpanPipeline:
        capture = self._capture_option
        if capture is None:
            capture = getattr(hub, "capture_content", None) is True  # network: off by default
        return SpanPipeline(hub, capture_content=bool(capture), hold=self.hold)

    def _accept_traces(self, decoded: Decoded) -> None:
        """Hand decoded spans to the hub (raises _Refused 503 when the backlog is full)."""
        pipeline = self.pipeline
        if pipeline is None:
            raise _Refused(503, "the receiver is stopping", {"Retry-After": "1"})
        if not pipeline.accepting():
            self._count("overloaded")
            raise _Refused(503, "the dashboard is behind; retry later", {"Retry-After": "1"})
        if decoded.records:
            pipeline.put(self._apply_spans, decoded.records)
        self._count("spans", len(decoded.records))
        if decoded.rejected:
            self._count("rejected_spans", decoded.rejected)
        if decoded.dropped_attributes:
            self._count("unread_attributes", decoded.dropped_attributes)

    def _apply_spans(self, records: list[SpanRecord]) -> None:
        assert self.pipeline is not None
        self.pipeline.correlator.end_many(records)

    def _accept_logs(self, decoded: Decoded) -> None:
        pipeline = self.pipeline
        if pipeline is None or not pipeline.accepting():
            self._count("overloaded")
            raise _Refused(503, "the dashboard is behind; retry later", {"Retry-After": "1"})
        if decoded.records:
            pipeline.put(self._apply_logs, decoded.records)
        self._count("logs", len(decoded.records))

    def _apply_logs(self, records: list[LogRecord]) -> None:
        assert self.pipeline is not None
        events = []
        for r in records:
            data: dict[str, Any] = {"level": r.level, "message": r.message[:8192],
                                    "logger": "opentelemetry"}  # fmt: skip
            try:
                events.append(
                    Event.create(
                        "log", _source(r.source), data, ts=r.ts if r.ts > 0 else None,
                        trace_id=r.trace_id, span_id=r.span_id,
                    )
                )  # fmt: skip
            except InvalidEvent:
                self.pipeline.correlator.rejected_events += 1
        self.pipeline._emit(events)

    def health(self) -> dict[str, Any]:
        with self._count_lock:
            counts = dict(self.counts)
        out: dict[str, Any] = {
            "source": self.scheme,
            "url": self.url,
            "listening": self.port is not None,
            # what the dashboard's header shows for each source
            "connected": self.port is not None,
            "state": f"listening on port {self.port}" if self.port is not None else "stopped",
            "port": self.port,
            "token": bool(self._token),
            **counts,
        }
        if self.pipeline is not None:
            out.update(self.pipeline.health())
        if self._decoder is not None:
            out.update(self._decoder.health())
        if self.last_error:
            out["last_error"] = self._scrub(self.last_error)
        return out

    def __repr__(self) -> str:
        state = f"listening on {self.host}:{self.port}" if self.port is not None else "stopped"
        return f"<{type(self).__name__} {self.url} {state}>"

    async def aclose(self) -> None:
        self.stop()
        if self.pipeline is not None:
            await self.pipeline.aclose()

    def start(self, hub: Hub) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


def _source(value: str | None) -> str | None:
    if not value:
        return None
    value = value[:128]
    return value if value.isprintable() else None


# -- OTLP/HTTP -------------------------------------------------------------------------------
class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64
    receiver: OTLPHttpSource

    def __init__(self, address: tuple[str, int], receiver: OTLPHttpSource) -> None:
        self.receiver = receiver
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.address_family = family
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.receiver._count("refused_connections")
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.receiver._count("errors")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "codeur-widgets-otlp"
    sys_version = ""
    timeout = READ_TIMEOUT
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet: counted in health
        pass

    def _reply(self, status: int, body: bytes, content_type: str,
               headers: dict[str, str] | None = None) -> None:  # fmt: skip
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _refuse(self, exc: _Refused, content: str) -> None:
        counter = _COUNTERS.get(exc.status)
        if counter:
            self.server.receiver._count(counter)
        grpc_code = {401: 16, 413: 8, 503: 14}.get(exc.status, 3)
        ctype = "application/json" if content == "json" else "application/x-protobuf"
        self._reply(exc.status, status_body(grpc_code, exc.message, content), ctype, exc.headers)

    def do_GET(self) -> None:
        self.close_connection = True
        self._refuse(_Refused(405, "OTLP/HTTP takes POST", {"Allow": "POST"}), "json")

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def do_POST(self) -> None:
        receiver = self.server.receiver
        receiver._count("requests")
        content = "proto"
        try:
            path = self.path.split("?", 1)[0]
            ctype = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
            if ctype == "application/json":
                content = "json"
            if path not in ("/v1/traces", "/v1/logs"):
                self._discard_body()
                raise _Refused(404, "OTLP/HTTP paths are /v1/traces and /v1/logs")
            if not receiver._authorized(self.headers.get("Authorization")):
                self._discard_body()
                raise _Refused(401, "missing or wrong bearer token",
                               {"WWW-Authenticate": 'Bearer realm="otlp"'})  # fmt: skip
            if ctype not in _PROTO_TYPES and ctype != "application/json":
                self._discard_body()
                raise _Refused(415, "Content-Type must be application/x-protobuf or "
                                    "application/json")  # fmt: skip
            body = self._read_body(receiver.max_body)
            body = decompress(body, self.headers.get("Content-Encoding") or "", receiver.max_body)
            try:
                decode = receiver._decode_traces if path == "/v1/traces" else decode_logs
                with paused_gc():  # thousands of records, none of them cyclic garbage
                    decoded = decode(body, content)
            except DecodeFailed as exc:
                raise _Refused(400, f"undecodable request: {exc}") from None
            if path == "/v1/traces":
                receiver._accept_traces(decoded)
                answer = traces_response(decoded.rejected, decoded.reason, content)
            else:
                receiver._accept_logs(decoded)
                answer = logs_response(decoded.rejected, decoded.reason, content)
            ctype_out = "application/json" if content == "json" else "application/x-protobuf"
            self._reply(200, answer, ctype_out)
        except _Refused as exc:
            self._refuse(exc, content)
        except (OSError, TimeoutError):
            self.close_connection = True
        except Exception as exc:  # a bug: answer 500, count it, keep serving
            receiver._count("errors")
            receiver.last_error = f"{type(exc).__name__}: {exc}"[:300]
            self.close_connection = True
            try:
                self._reply(500, status_body(13, "internal error", content), "application/json")
            except OSError:
                pass

    def _discard_body(self) -> None:
        """Read and drop a body that will not be used (at most :data:`DRAIN_LIMIT` bytes), so
        that the client, still sending, gets our answer instead of a reset connection; then
        close the connection."""
        self.close_connection = True
        try:
            size = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return
        if 0 < size <= DRAIN_LIMIT:
            left = size
            while left > 0:
                chunk = self.rfile.read(min(left, 1 << 16))
                if not chunk:
                    return
                left -= len(chunk)

    def _read_body(self, limit: int) -> bytes:
        length = self.headers.get("Content-Length")
        if length is not None:
            try:
                size = int(length)
            except ValueError:
                self.close_connection = True
                raise _Refused(400, "bad Content-Length") from None
            if size < 0:
                self.close_connection = True
                raise _Refused(400, "bad Content-Length")
            if size > limit:
                self._discard_body()
                raise _Refused(413, f"body larger than {limit} bytes")
            body = self.rfile.read(size)
            if len(body) < size:
                self.close_connection = True
                raise _Refused(400, "body shorter than its Content-Length")
            return body
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked(limit)
        self.close_connection = True
        raise _Refused(411, "Content-Length or chunked Transfer-Encoding required")

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1026)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                raise _Refused(400, "bad chunk size") from None
            if size == 0:
                while self.rfile.readline(1026) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            total += size
            if total > limit:
                self.close_connection = True
                raise _Refused(413, f"body larger than {limit} bytes")
            parts.append(self.rfile.read(size))
            self.rfile.readline(3)


class OTLPHttpSource(_Receiver):
    """OTLP/HTTP receiver (``otlp://`` and ``otlp+http://``; default port 4318)."""

    scheme = "otlp+http"
    default_port = 4318

    def __init__(self, url: str = "otlp://127.0.0.1:4318", **options: Any) -> None:
        super().__init__(url, **options)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, hub: Hub) -> None:
        """Bind and serve (called by ``hub.start()``)."""
        if self._server is not None:
            return
        self.pipeline = self._make_pipeline(hub)
        self.pipeline.start(hub)
        self._start_decoder()
        try:
            server = _Server((self.host, self._requested_port), self)
        except OSError as exc:
            self.last_error = f"cannot listen on {self.host}:{self._requested_port}: {exc}"
            log.error("OTLP receiver %s: %s", self.url, self.last_error)
            return
        self._server = server
        self.port = int(server.server_address[1])
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.2},
            name=f"codeur_widgets.otlp.http:{self.port}", daemon=True,
        )  # fmt: skip
        self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
        self.port = None
        self._stop_decoder()
        if self.pipeline is not None:
            self.pipeline.stop()


# -- OTLP/gRPC -------------------------------------------------------------------------------
class OTLPGrpcSource(_Receiver):
    """OTLP/gRPC receiver (``otlp+grpc://``; default port 4317). Needs ``grpcio``."""

    scheme = "otlp+grpc"
    default_port = 4317

    def __init__(self, url: str = "otlp+grpc://127.0.0.1:4317", **options: Any) -> None:
        super().__init__(url, **options)
        self._server: Any = None

    def start(self, hub: Hub) -> None:
        """Bind and serve (called by ``hub.start()``)."""
        if self._server is not None:
            return
        import grpc

        self.pipeline = self._make_pipeline(hub)
        self.pipeline.start(hub)
        self._start_decoder()
        server = grpc.server(
            ThreadPoolExecutor(max_workers=4, thread_name_prefix="codeur_widgets.otlp.grpc"),
            options=[
                ("grpc.max_receive_message_length", self.max_body),
                ("grpc.max_send_message_length", 1 << 20),
            ],
            maximum_concurrent_rpcs=MAX_CONNECTIONS,
        )
        unary = grpc.unary_unary_rpc_method_handler
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "opentelemetry.proto.collector.trace.v1.TraceService",
                    {"Export": unary(self._export_traces)},
                ),
                grpc.method_handlers_generic_handler(
                    "opentelemetry.proto.collector.logs.v1.LogsService",
                    {"Export": unary(self._export_logs)},
                ),
            )
        )
        host = f"[{self.host}]" if ":" in self.host else self.host
        try:
            port = server.add_insecure_port(f"{host}:{self._requested_port}")
        except RuntimeError as exc:
            port = 0
            self.last_error = str(exc)
        if not port:
            self.last_error = self.last_error or f"cannot listen on {host}:{self._requested_port}"
            log.error("OTLP receiver %s: %s", self.url, self.last_error)
            return
        server.start()
        self._server = server
        self.port = port

    def _call(self, request: bytes, context: Any, traces: bool) -> bytes:
        import grpc

        self._count("requests")
        metadata = dict(context.invocation_metadata() or ())
        if not self._authorized(metadata.get("authorization")):
            self._count("unauthorized")
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        try:
            with paused_gc():
                decoded = (self._decode_traces if traces else decode_logs)(request, "proto")
        except DecodeFailed as exc:
            self._count("bad_requests")
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"undecodable request: {exc}")
        try:
            if traces:
                self._accept_traces(decoded)
                return traces_response(decoded.rejected, decoded.reason, "proto")
            self._accept_logs(decoded)
            return logs_response(decoded.rejected, decoded.reason, "proto")
        except _Refused as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, exc.message)
        raise AssertionError("unreachable")  # pragma: no cover - abort raises

    def _export_traces(self, request: bytes, context: Any) -> bytes:
        return self._call(request, context, traces=True)

    def _export_logs(self, request: bytes, context: Any) -> bytes:
        return self._call(request, context, traces=False)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop(grace=0.5).wait(2.0)
        self.port = None
        self._stop_decoder()
        if self.pipeline is not None:
            self.pipeline.stop()


def open_receiver(url: str) -> _Receiver:
    """An OTLP receiver for ``url`` by its scheme."""
    scheme = url.partition(":")[0].lower()
    if scheme in ("otlp", "otlp+http"):
        return OTLPHttpSource(url)
    if scheme == "otlp+grpc":
        return OTLPGrpcSource(url)
    raise ValueError(f"not an OTLP URL: {mask_url(url)} (otlp://, otlp+http://, otlp+grpc://)")
