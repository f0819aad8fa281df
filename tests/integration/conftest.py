"""Fixtures for tests against a real ``redis-server`` (the Debian package).

The server runs on a free loopback port with ``--save "" --appendonly yes --dir <tmp>``. When
the binary (or the redis Python package) is missing the tests skip, except under ``CI=true``
where they fail: a broken CI image must not pass by skipping.
"""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from codeur_widgets.transports.redis_server import RedisServer, find_redis_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def redis_binary(require: Callable[..., None]) -> str:
    require(
        "the redis Python package",
        importlib.util.find_spec("redis") is not None,
        "pip install 'codeur-widgets[redis]'",
    )
    path = find_redis_server()
    require("redis-server", path is not None, "apt-get install redis-server")
    assert path is not None
    return path


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


@pytest.fixture
def make_server(redis_binary: str, tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """A factory of dedicated servers (restart, auth); all stopped at the end of the test."""
    servers: list[RedisServer] = []

    def make(**options: Any) -> RedisServer:
        directory = tmp_path / f"redis-{len(servers)}"
        directory.mkdir()
        server = RedisServer(redis_binary, directory=directory, **options)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()
