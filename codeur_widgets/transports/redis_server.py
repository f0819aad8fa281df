"""A throwaway local ``redis-server`` for tests, demos and benchmarks.

It runs the Debian ``redis-server`` binary on a free loopback port, with no RDB snapshots and an
append-only file in a temporary folder (so a restart keeps the streams), and stops it on exit::

    with RedisServer() as server:
        hub = Hub(sources=[server.url + "?stream=codeur:events"])

Not for production: it exists so that trying the Redis transport needs no set-up.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["RedisServer", "find_redis_server", "free_port"]


def find_redis_server() -> str | None:
    """The path of ``redis-server`` (``PATH``, then Debian's location), or None."""
    found = shutil.which("redis-server")
    if found:
        return found
    return "/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK) else None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A ``redis-server`` child process on 127.0.0.1.

    Args:
        executable: the binary (default: :func:`find_redis_server`).
        directory: where the AOF lives (default: a new temporary folder, removed by :meth:`stop`).
        appendfsync: ``everysec`` (Redis' default) or ``always`` (every acknowledged write is on
            disk before the reply: nothing acknowledged is lost even on ``kill -9``).
        password: sets ``requirepass``.
        port: a fixed port (default: a free one, kept across :meth:`restart`).
    """

    def __init__(
        self,
        executable: str | None = None,
        *,
        directory: str | os.PathLike[str] | None = None,
        appendfsync: str = "everysec",
        password: str | None = None,
        port: int | None = None,
    ) -> None:
        exe = executable or find_redis_server()
        if exe is None:
            raise FileNotFoundError("redis-server not found: apt-get install redis-server")
        self.executable = exe
        self._own_dir = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="codeur-redis-"))
        self.appendfsync = appendfsync
        self.password = password
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0`` (with the password when one is set)."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the server and wait until it answers (raises RuntimeError if it does not)."""
        if self.process is not None and self.process.poll() is None:
            return self
        args = [
            self.executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--protected-mode", "yes",
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--dir", str(self.directory),
            "--logfile", str(self.directory / "redis.log"),
            "--daemonize", "no",
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with {self.process.returncode}; see "
                    f"{self.directory / 'redis.log'}"
                )
            if self._answers():
                return self
            time.sleep(0.02)
        self.stop(kill=True)
        raise RuntimeError(f"redis-server did not answer on port {self.port} in {timeout} s")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                reply = s.recv(64)
        except OSError:
            return False
        # +PONG, or -NOAUTH when a password is set: either way it is up and loaded.
        return reply.startswith((b"+PONG", b"-NOAUTH"))

    def stop(self, kill: bool = False, timeout: float = 10.0) -> None:
        """Stop the server: SIGTERM (it writes its AOF and exits) or, with ``kill``, SIGKILL."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)

    def restart(self, kill: bool = False, down_for: float = 0.0) -> None:
        """Stop, stay down ``down_for`` seconds, start again on the same port and AOF."""
        self.stop(kill=kill)
        if down_for > 0:
            time.sleep(down_for)
        self.start()

    def close(self) -> None:
        """Stop the server and remove its temporary folder (if it made one)."""
        self.stop()
        if self._own_dir:
            with contextlib.suppress(OSError):
                shutil.rmtree(self.directory)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.process is not None and self.process.poll() is None else "down"
        return f"<RedisServer 127.0.0.1:{self.port} {state}>"
