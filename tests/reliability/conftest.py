"""Fixtures of the reliability tests: real ``redis-server`` processes (the Debian package) for the
cases that need one. Under ``CI=true`` a missing server or redis package fails the test
(``require``, in tests/conftest.py); elsewhere it skips."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from codeur_widgets.transports.redis_server import RedisServer


@pytest.fixture
def make_redis(make_server: Callable[..., RedisServer]) -> Callable[..., RedisServer]:
    """A factory of dedicated, started servers (tests here kill them); all stopped at the end."""
    return lambda **options: make_server(**options).start()
