"""Webhook deliveries for alerts: JSON POSTs from one worker thread, never on the event path.

:meth:`WebhookSender.submit` only appends to a bounded queue (when it is full the delivery is
dropped and counted); a daemon thread POSTs with a timeout and retries a failed attempt (a
connection error, a timeout, HTTP 5xx or 429) with exponential backoff, up to ``attempts`` tries,
then gives up and counts it. A receiver that hangs costs the worker ``timeout`` seconds per try
and never slows the hub. Retries are scheduled, not slept on, so one slow URL delays only its
own deliveries' retries.

Credentials in a URL (``https://user:secret@host/...``) are sent as an ``Authorization: Basic``
header and never shown: :func:`mask_webhook` keeps only the scheme and host for display, since
webhook services (Slack, Discord, ...) also put secrets in the path and query.
"""

from __future__ import annotations

import base64
import heapq
import http.client
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from .sources import masked_netloc

__all__ = ["WebhookError", "WebhookSender", "check_webhook", "mask_webhook"]

USER_AGENT = "codeur-widgets-alerts/1"
IDLE_EXIT = 30.0
"""Seconds the worker thread waits with nothing to send before it ends."""


class WebhookError(ValueError):
    """A webhook URL that cannot be used; the message says why (never showing credentials)."""


def mask_webhook(url: object) -> str:
    """``url`` for display: ``https://***@hooks.example.com/…`` (path, query and credentials
    hidden, since webhook URLs carry their secret there). Never raises."""
    split = masked_netloc(url)
    if isinstance(split, str):
        return split
    parts, netloc = split
    hidden = "/…" if (parts.path not in ("", "/") or parts.query) else "/"
    return f"{parts.scheme}://{netloc}{hidden}"


def check_webhook(url: object) -> str:
    """``url`` if it is an absolute http(s) URL with a host, else :class:`WebhookError`."""
    if not isinstance(url, str) or not url.strip():
        raise WebhookError(f"webhook must be an http(s) URL string, got {type(url).__name__}")
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        _ = parts.port  # raises ValueError for a bad port
    except ValueError:
        raise WebhookError(f"webhook URL {mask_webhook(url)} cannot be parsed") from None
    if parts.scheme not in ("http", "https"):
        raise WebhookError(
            f"webhook URL must start with http:// or https://, got {parts.scheme or 'none'}://"
        )
    if not host:
        raise WebhookError(f"webhook URL {mask_webhook(url)} has no host")
    return url.strip()


@dataclass(order=True)
class _Delivery:
    due: float
    seq: int
    url: str = field(compare=False)
    body: bytes = field(compare=False)
    attempt: int = field(default=0, compare=False)


class _Failed(Exception):
    def __init__(self, reason: str, retry: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry


def _request(url: str, body: bytes) -> urllib.request.Request:
    parts = urlsplit(url)
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    if parts.username is not None or parts.password is not None:
        user = unquote(parts.username or "")
        password = unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        headers["Authorization"] = f"Basic {token}"
        netloc = parts.hostname or ""
        if ":" in netloc:
            netloc = f"[{netloc}]"
        if parts.port is not None:
            netloc += f":{parts.port}"
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    return urllib.request.Request(url, data=body, headers=headers, method="POST")


class WebhookSender:
    """POSTs JSON bodies to webhook URLs from a daemon thread, with timeout, retries and backoff.

    Args:
        timeout: seconds one attempt may take (connect and response).
        attempts: tries per delivery before giving up (counted in ``failed``).
        backoff: seconds before the first retry; doubled each time, at most ``max_backoff``.
        capacity: deliveries waiting (queued or scheduled for a retry) before new ones are
            dropped and counted in ``dropped``.

    The counters (``sent``, ``retries``, ``failed``, ``dropped``, ``last_error``) are in
    :meth:`health`; the thread starts with the first delivery.
    """

    def __init__(
        self,
        *,
        timeout: float = 5.0,
        attempts: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        capacity: int = 1_000,
    ) -> None:
        if not timeout > 0 or attempts < 1 or backoff < 0 or capacity < 1:
            raise ValueError("need timeout > 0, attempts >= 1, backoff >= 0, capacity >= 1")
        self.timeout = float(timeout)
        self.attempts = int(attempts)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.capacity = int(capacity)
        self.opener = urllib.request.build_opener()
        self.idle_exit = IDLE_EXIT
        self._heap: list[_Delivery] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._busy = 0
        self._closed = False
        self.submitted = 0
        self.sent = 0
        self.retries = 0
        self.failed = 0
        self.dropped = 0
        self.last_error: str | None = None
        self.last_error_at: float | None = None

    # -- the caller's side ---------------------------------------------------------------------
    def submit(self, url: str, payload: dict[str, Any]) -> bool:
        """Queue one POST of ``payload`` as JSON; never blocks. False when dropped (queue full)."""
        body = json.dumps(payload, default=str, separators=(",", ":")).encode()
        with self._cond:
            if self._closed or len(self._heap) + self._busy >= self.capacity:
                self.dropped += 1
                return False
            heapq.heappush(self._heap, _Delivery(time.monotonic(), next(self._seq), url, body))
            self.submitted += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="codeur_widgets.webhooks", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        return True

    def pending(self) -> int:
        """Deliveries not finished yet (waiting, scheduled for a retry, or being sent)."""
        with self._cond:
            return len(self._heap) + self._busy

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every delivery has been sent or given up; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._heap or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def close(self) -> None:
        """Stop the thread after the attempt in progress; waiting deliveries are dropped."""
        with self._cond:
            self._closed = True
            self.dropped += len(self._heap)
            self._heap.clear()
            self._cond.notify_all()

    def health(self) -> dict[str, Any]:
        """Counters for ``hub.health()``: nothing here shows a URL."""
        with self._cond:
            pending = len(self._heap) + self._busy
        return {
            "pending": pending,
            "sent": self.sent,
            "retries": self.retries,
            "failed": self.failed,
            "dropped": self.dropped,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
        }

    # -- the worker ----------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed:
                    now = time.monotonic()
                    if self._heap and self._heap[0].due <= now:
                        break
                    if not self._heap and not self._cond.wait(self.idle_exit) and not self._heap:
                        self._thread = None  # idle: end; the next submit starts another
                        return
                    if self._heap:
                        self._cond.wait(max(0.0, self._heap[0].due - time.monotonic()))
                if self._closed:
                    self._thread = None
                    return
                item = heapq.heappop(self._heap)
                self._busy += 1
            try:
                self._attempt(item)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _attempt(self, item: _Delivery) -> None:
        item.attempt += 1
        try:
            self._post(item.url, item.body)
        except _Failed as exc:
            self.last_error = f"{mask_webhook(item.url)}: {exc.reason}"
            self.last_error_at = time.time()
            if exc.retry and item.attempt < self.attempts:
                self.retries += 1
                delay = min(self.max_backoff, self.backoff * 2 ** (item.attempt - 1))
                item.due = time.monotonic() + delay
                with self._cond:
                    heapq.heappush(self._heap, item)
            else:
                self.failed += 1
        except Exception as exc:  # a bug guard: the worker must live on
            self.failed += 1
            self.last_error = f"{mask_webhook(item.url)}: {type(exc).__name__}"
            self.last_error_at = time.time()
        else:
            self.sent += 1

    def _post(self, url: str, body: bytes) -> None:
        try:
            with self.opener.open(_request(url, body), timeout=self.timeout) as response:
                response.read(65_536)
                status = int(getattr(response, "status", 200))
        except urllib.error.HTTPError as exc:
            retry = exc.code >= 500 or exc.code == 429
            raise _Failed(f"HTTP {exc.code}", retry) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise _Failed(f"no answer in {self.timeout:g} s", True) from None
            raise _Failed(f"unreachable ({type(exc.reason).__name__})", True) from None
        except TimeoutError:
            raise _Failed(f"no answer in {self.timeout:g} s", True) from None
        except (OSError, http.client.HTTPException) as exc:
            raise _Failed(f"{type(exc).__name__}", True) from None
        if status >= 300:
            raise _Failed(f"HTTP {status}", status >= 500)
