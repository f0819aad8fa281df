"""Helpers shared by the transports: URL parsing and masking, backoff, lag statistics.

Nothing here imports redis, so the URL helpers can be used (and tested) without it.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, unquote_plus, urlencode, urlsplit, urlunsplit

from ..core.sources import mask_url

__all__ = ["Backoff", "LagStats", "ParsedURL", "mask_url", "parse_url", "scrub"]

REDIS_SCHEMES = ("redis", "rediss", "unix")

# Query parameters that redis-py understands in a URL and that make sense as text. Anything else
# that is not one of ours is refused up front: redis-py would only fail at the first connection,
# with a TypeError that does not say which URL was wrong.
REDIS_URL_PARAMS = frozenset(
    {
        "db",
        "username",
        "password",
        "client_name",
        "socket_timeout",
        "socket_connect_timeout",
        "socket_read_size",
        "socket_keepalive",
        "retry_on_timeout",
        "max_connections",
        "health_check_interval",
        "timeout",
        "ssl_cert_reqs",
        "ssl_ca_certs",
        "ssl_ca_path",
        "ssl_certfile",
        "ssl_keyfile",
        "ssl_password",
        "ssl_ciphers",
        "ssl_check_hostname",
        "ssl_min_version",
    }
)
# Query parameters whose values are secrets (masked everywhere, scrubbed from error texts).
SECRET_PARAMS = frozenset({"password", "ssl_password"})
# RESP2 is forced: the source parses raw replies in their RESP2 shape for speed.
IGNORED_PARAMS = frozenset({"protocol"})


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret replaced by ``***``."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, "***")
    return text


@dataclass(frozen=True)
class ParsedURL:
    """A Redis URL split into what redis-py needs and what the transport reads itself."""

    redis_url: str = field(repr=False)
    """The URL for ``redis.from_url``: our parameters removed. Holds credentials: never show."""
    masked: str
    params: dict[str, str]
    secrets: tuple[str, ...] = field(repr=False)

    def pick(self, value: Any, name: str, default: Any) -> Any:
        """An explicit keyword (``value``) wins over the URL's parameter, which wins over
        ``default``."""
        return value if value is not None else self.params.get(name, default)


def parse_url(url: object, ours: Iterable[str]) -> ParsedURL:
    """Split ``url``; raise :class:`ValueError` (with the URL masked) when it is not usable.

    ``ours`` names the query parameters the caller reads (``stream``, ``group``, ...); they are
    removed from the URL handed to redis-py.
    """
    if not isinstance(url, str):
        raise TypeError(f"a Redis URL must be a string, got {type(url).__name__}")
    masked = mask_url(url)
    try:
        parts = urlsplit(url)
        password = parts.password
        parts.port  # noqa: B018 - validates the port now, not at the first connection
    except ValueError as exc:
        raise ValueError(f"invalid Redis URL {masked}: {type(exc).__name__}") from None
    scheme = parts.scheme.lower()
    if scheme not in REDIS_SCHEMES:
        raise ValueError(
            f"unsupported URL {masked}: use redis://host:port/db, rediss:// (TLS) or unix://path"
        )
    if scheme != "unix" and not parts.hostname:
        raise ValueError(f"invalid Redis URL {masked}: no host")
    known = frozenset(ours)
    params: dict[str, str] = {}
    passthrough: list[tuple[str, str]] = []
    secrets: list[str] = []
    if password:
        secrets += [password, unquote(password)]
    # The raw (percent-encoded) form of a secret parameter too: an error text may quote the URL
    # as written, and parse_qsl() only gives the decoded value.
    for pair in parts.query.split("&"):
        raw_key, _, raw_value = pair.partition("=")
        if unquote_plus(raw_key) in SECRET_PARAMS and raw_value:
            secrets += [raw_value, unquote(raw_value), unquote_plus(raw_value)]
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in known:
            params[key] = value
        elif key in IGNORED_PARAMS:
            continue
        elif key in REDIS_URL_PARAMS:
            passthrough.append((key, value))
            if key in SECRET_PARAMS and value:
                secrets.append(value)
        else:
            raise ValueError(
                f"unknown parameter {key!r} in {masked}?…; this transport reads "
                f"{', '.join(sorted(known))} and passes redis-py's connection options through"
            )
    redis_url = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(passthrough), ""))
    # Longest first, so that a secret containing another is replaced whole.
    ordered = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))
    return ParsedURL(redis_url=redis_url, masked=masked, params=params, secrets=ordered)


def int_param(name: str, value: object, minimum: int, masked: str) -> int:
    """An integer option (from a URL's text or a keyword), at least ``minimum``."""
    try:
        number = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an integer, got {value!r} (in {masked})") from None
    if isinstance(value, bool) or number < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r} (in {masked})")
    return number


class Backoff:
    """Exponential backoff with jitter: ``first``, doubling up to ``cap`` seconds.

    Jitter (each delay drawn between half and all of the nominal one) keeps many agents that lost
    the same server from reconnecting in lock-step when it comes back.
    """

    def __init__(self, first: float = 0.05, cap: float = 5.0) -> None:
        if not 0 < first <= cap:
            raise ValueError("backoff needs 0 < first <= cap")
        self.first = first
        self.cap = cap
        self._nominal = first
        self._rng = random.Random()

    def next(self) -> float:
        """The next delay in seconds (and double the one after)."""
        nominal = self._nominal
        self._nominal = min(self.cap, nominal * 2.0)
        return nominal * (0.5 + 0.5 * self._rng.random())

    def reset(self) -> None:
        self._nominal = self.first


def _bucket(ms: int) -> int:
    # 1 ms resolution below 1 s, 10 ms below 10 s, 100 ms below 100 s, then one overflow bucket.
    if ms < 1_000:
        return ms if ms > 0 else 0
    if ms < 10_000:
        return 1_000 + (ms - 1_000) // 10
    if ms < 100_000:
        return 1_900 + (ms - 10_000) // 100
    return 2_800


def _bucket_upper(index: int) -> int:
    if index < 1_000:
        return index
    if index < 1_900:
        return 1_000 + (index - 1_000 + 1) * 10
    if index < 2_800:
        return 10_000 + (index - 1_900 + 1) * 100
    return 100_000


_BUCKETS = 2_801


class LagStats:
    """Delivery lag (milliseconds) in a fixed histogram: O(1) per sample, exact counts.

    Keeps a cumulative histogram (since creation or :meth:`reset`) and a recent one that covers
    the last one to two ``window`` seconds (two halves rotated), so a dashboard's health shows
    the current lag and not a replay of old entries at start-up.
    """

    def __init__(self, window: float = 60.0, clock: Any = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._total = [0] * _BUCKETS
        self._current = [0] * _BUCKETS
        self._previous = [0] * _BUCKETS
        self._rotated = clock()
        self.max_ms = 0
        self.count = 0

    def add_many(self, lags_ms: Iterable[int]) -> None:
        """Record several lags (a batch)."""
        now = self._clock()
        with self._lock:
            if now - self._rotated >= self.window:
                self._previous = self._current
                self._current = [0] * _BUCKETS
                self._rotated = now
            total, current = self._total, self._current
            n = 0
            top = self.max_ms
            for ms in lags_ms:
                b = _bucket(ms)
                total[b] += 1
                current[b] += 1
                if ms > top:
                    top = ms
                n += 1
            self.max_ms = top
            self.count += n

    def reset(self) -> None:
        with self._lock:
            self._total = [0] * _BUCKETS
            self._current = [0] * _BUCKETS
            self._previous = [0] * _BUCKETS
            self.max_ms = 0
            self.count = 0

    @staticmethod
    def _quantiles(hist: list[int], qs: tuple[float, ...]) -> list[int | None]:
        n = sum(hist)
        if n == 0:
            return [None for _ in qs]
        out: list[int | None] = []
        for q in qs:
            rank = max(1, int(q * n + 0.999999))  # ceil: the value below which q of samples lie
            seen = 0
            for i, c in enumerate(hist):
                seen += c
                if seen >= rank:
                    out.append(_bucket_upper(i))
                    break
        return out

    def summary(self, total: bool = False) -> dict[str, Any]:
        """``{"count", "p50", "p95", "p99"}`` in ms (bucket upper bounds), recent or total."""
        with self._lock:
            if total:
                hist = list(self._total)
            else:
                hist = [a + b for a, b in zip(self._current, self._previous, strict=True)]
        p50, p95, p99 = self._quantiles(hist, (0.5, 0.95, 0.99))
        return {"count": sum(hist), "p50": p50, "p95": p95, "p99": p99}
