"""Fixtures of the reliability tests: real ``redis-server`` processes (the Debian package) for the
cases that need one. Under ``CI=true`` a missing server or redis package fails the test
(``require``, in tests/conftest.py); elsewhere it skips."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from codeur_widgets.transports.redis_server import RedisServer, find_redis_server


@pytest.fixture
def make_redis(
    require: Callable[..., None], tmp_path: Path
) -> Iterator[Callable[..., RedisServer]]:
    """A factory of dedicated, started servers (tests here kill them); all stopped at the end."""
    require(
        "the redis Python package",
        importlib.util.find_spec("redis") is not None,
        "pip install 'codeur-widgets[redis]'",
    )
    path = find_redis_server()
    require("redis-server", path is not None, "apt-get install redis-server")
    assert path is not None
    servers: list[RedisServer] = []

    def make(**options: Any) -> RedisServer:
        directory = tmp_path / f"redis-{len(servers)}"
        directory.mkdir()
        server = RedisServer(path, directory=directory, **options)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.close()
