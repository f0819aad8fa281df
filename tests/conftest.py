"""Shared test helpers.

``require`` is the one place that decides what a test does when a real component it needs (a
browser, a Jupyter server, redis-server) is missing: under ``CI=true`` the test fails, so a broken
CI image can never pass by skipping; on a developer machine it skips with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from codeur_widgets.transports.redis_server import RedisServer


def in_ci() -> bool:
    """True when running under CI (``CI=true``, as set by most CI systems)."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require_component(component: str, available: bool, detail: str = "") -> None:
    """Fail (under CI) or skip (elsewhere) unless ``component`` is ``available``."""
    if available:
        return
    reason = f"{component} is not available" + (f": {detail}" if detail else "")
    if in_ci():
        pytest.fail(f"CI=true and a required component is missing. {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def require() -> Callable[..., None]:
    """The ``require_component(component, available, detail)`` rule, as a fixture."""
    return require_component


@pytest.fixture(scope="session")
def redis_binary(require: Callable[..., None]) -> str:
    """The redis-server executable, with the redis Python package importable; under the rule of
    :func:`require_component` (integration and reliability tests both start servers with it)."""
    import importlib.util

    from codeur_widgets.transports.redis_server import find_redis_server

    require(
        "the redis Python package",
        importlib.util.find_spec("redis") is not None,
        "pip install 'codeur-widgets[redis]'",
    )
    path = find_redis_server()
    require("redis-server", path is not None, "apt-get install redis-server")
    assert path is not None
    return path


@pytest.fixture
def make_server(redis_binary: str, tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """A factory of dedicated redis-servers, not started (restart, auth, faults); all stopped at
    the end of the test."""
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


# -- the failed tests' ids, for scripts/run_tests.py -----------------------------------------
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """With ``CODEUR_FAILED_FILE`` set, append the id of each failed test to that file:
    ``make test`` (scripts/run_tests.py) runs those again, alone."""
    path = os.environ.get("CODEUR_FAILED_FILE")
    if path and report.failed:
        with open(path, "a", encoding="utf-8") as out:
            out.write(report.nodeid + "\n")
