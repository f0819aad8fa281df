"""Fixtures for tests against a real ``redis-server`` (the Debian package).

The server runs on a free loopback port with ``--save "" --appendonly yes --dir <tmp>``. When
the binary (or the redis Python package) is missing the tests skip, except under ``CI=true``
where they fail: a broken CI image must not pass by skipping.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from codeur_widgets.transports.redis_server import RedisServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def redis_server(
    redis_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RedisServer]:
    """One server for the session (tests use their own stream names)."""
    server = RedisServer(redis_binary, directory=tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def stream() -> str:
    """A stream name of this test's own."""
    return f"test:{uuid.uuid4().hex[:12]}"
