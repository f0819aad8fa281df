"""Real Jupyter servers for browser tests: JupyterLab and Voila as subprocesses of the venv.

Each server gets a free loopback port, a random token, its own temporary root, config, runtime,
Lab settings and workspaces folders, and the *default* rate limits (the IOPub limit is part of what
the tests check, so it is never raised). Its log goes to a file that tests can read.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import nbformat

#: The venv's bin folder: servers and kernels run with the interpreter running the tests.
VENV_BIN = Path(sys.executable).parent

#: Settings written into the temporary JUPYTERLAB_SETTINGS_DIR, keyed by "<plugin id>" path.
LAB_SETTINGS: dict[str, dict[str, Any]] = {
    # No news or update pop-ups over the notebook (they would cover widgets in screenshots and
    # make Lab fetch from the internet).
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    # Every cell stays in the DOM, so checks on widgets below the fold do not depend on scrolling.
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}

STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0

#: The repository's Voila configuration (voila.json: notebook-only cells are left out), which
#: ``voila`` reads from its working directory, as when run by ``make voila``.
VOILA_CONFIG = Path(__file__).resolve().parents[2] / "voila.json"


def free_port() -> int:
    """A free TCP port on the loopback interface, chosen by the OS (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_notebook(path: Path, cells: list[tuple[str, str]]) -> Path:
    """Write a notebook of ``(kind, source)`` cells (kind: "code" or "markdown"), no outputs.

    The kernelspec metadata is set so Lab and Voila start the venv's ``python3`` kernel
    without asking.
    """
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    for kind, source in cells:
        if kind == "code":
            nb.cells.append(nbformat.v4.new_code_cell(source))
        else:
            nb.cells.append(nbformat.v4.new_markdown_cell(source))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


class JupyterProcess:
    """One server subprocess (``jupyter lab`` or ``voila``) with its folders and log file.

    ``start()`` returns once the server answers HTTP on ``ready_path``; ``stop()`` interrupts it
    (then kills it) and is safe to call twice. Use as a context manager or call ``stop()`` in a
    finalizer, so no test can leave a server behind.
    """

    #: Used in messages and as the log file's name.
    name = "jupyter"
    #: Path that answers 200 once the server is up.
    ready_path = ""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.token = secrets.token_hex(24)
        self.root = base / "root"
        self.log_path = base / f"{self.name}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        for sub in ("root", "config", "runtime", "settings", "workspaces", "ipython"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        for plugin, values in LAB_SETTINGS.items():
            target = base / "settings" / f"{plugin}.jupyterlab-settings"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(values))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` with the token, which logs the browser in."""
        sep = "&" if "?" in path else "?"
        return f"{self.base_url}/{path.lstrip('/')}{sep}token={self.token}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
                # Only the user-level folders are replaced: the venv's own config and data
                # (server extensions, lab extensions, kernelspec) still apply.
                "JUPYTER_CONFIG_DIR": str(self.base / "config"),
                "JUPYTER_RUNTIME_DIR": str(self.base / "runtime"),
                "JUPYTERLAB_SETTINGS_DIR": str(self.base / "settings"),
                "JUPYTERLAB_WORKSPACES_DIR": str(self.base / "workspaces"),
                "IPYTHONDIR": str(self.base / "ipython"),
                "JUPYTER_PLATFORM_DIRS": "1",
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def argv(self) -> list[str]:
        """The server's command line (subclasses)."""
        raise NotImplementedError

    def start(self) -> JupyterProcess:
        self._log_file = self.log_path.open("wb")
        self._proc = subprocess.Popen(
            self.argv(),
            cwd=self.root,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            # Own process group, so stop() also reaches the kernels it started.
            start_new_session=True,
        )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self._proc.returncode} while starting; "
                    f"log:\n{self.log_text()[-4000:]}"
                )
            try:
                with urllib.request.urlopen(self.url(self.ready_path), timeout=2) as resp:
                    if resp.status == 200:
                        return
                    last_error = f"HTTP {resp.status}"
            except (urllib.error.URLError, OSError) as exc:
                last_error = str(exc)
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(
            f"{self.name} did not answer {self.ready_path} within {STARTUP_TIMEOUT_S:.0f} s "
            f"({last_error}); log:\n{self.log_text()[-4000:]}"
        )

    def log_text(self) -> str:
        """Everything the server has logged so far (its stdout and stderr)."""
        if self._log_file is not None:
            self._log_file.flush()
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_size(self) -> int:
        """Current size of the log, to read only what a test added (``log_since``)."""
        return len(self.log_text())

    def log_since(self, offset: int) -> str:
        return self.log_text()[offset:]

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            # SIGINT twice is how Jupyter servers shut down without asking; the server then
            # shuts its kernels down. Anything left after the timeout is killed, group-wide.
            for _ in range(2):
                try:
                    os.killpg(proc.pid, signal.SIGINT)
                except ProcessLookupError:
                    break
                time.sleep(0.2)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=STOP_TIMEOUT_S)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def api(self, method: str, path: str) -> Any:
        """Call the server's REST API (``/api/...``) with the token; returns the decoded JSON."""
        req = urllib.request.Request(self.url(f"api/{path}"), method=method)
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> int:
        """Shut down every running kernel (a demo's simulator would otherwise keep using CPU
        during later tests); returns how many were running."""
        kernels = self.api("GET", "kernels")
        for kernel in kernels:
            self.api("DELETE", f"kernels/{kernel['id']}")
        return len(kernels)

    def copy_in(self, source: Path, name: str | None = None) -> Path:
        """Copy a file (a notebook under test) into the server's root; returns its new path."""
        target = self.root / (name or source.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return target

    def __enter__(self) -> JupyterProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _root_flag(app: str) -> list[str]:
    """``--<app>.allow_root=True`` when running as root (containers, CI), where Jupyter Server
    otherwise refuses to start; nothing otherwise."""
    return [f"--{app}.allow_root=True"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []


class LabServer(JupyterProcess):
    """A JupyterLab server with default limits, on a free port."""

    name = "jupyterlab"
    ready_path = "api/status"

    def argv(self) -> list[str]:
        return [
            str(VENV_BIN / "jupyter-lab"),
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            # Not needed by the tests, and each slows the start a little.
            "--ServerApp.terminals_enabled=False",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            # No PyPI queries from the extension manager: tests must not touch the network.
            "--LabApp.extension_manager=readonly",
            *_root_flag("ServerApp"),
        ]


class NotebookServer(LabServer):
    """A Notebook 7 server (``jupyter notebook``: ``/notebooks/<name>``) with default limits, on
    a free port."""

    name = "notebook7"

    def argv(self) -> list[str]:
        # The same server options as Lab's; Lab's own (update checks, extension manager) do
        # not exist in Notebook 7, whose news pop-up is off through the shared Lab settings.
        lab = super().argv()
        return [
            str(VENV_BIN / "jupyter-notebook"),
            *(arg for arg in lab[1:] if not arg.startswith("--LabApp.")),
        ]


class VoilaServer(JupyterProcess):
    """A Voila server serving its root folder (``/voila/render/<notebook>``), on a free port,
    with the repository's ``voila.json`` in its working directory (as ``make voila`` has)."""

    name = "voila"
    ready_path = ""

    def start(self) -> JupyterProcess:
        if VOILA_CONFIG.exists():
            shutil.copyfile(VOILA_CONFIG, self.root / VOILA_CONFIG.name)
        return super().start()

    def argv(self) -> list[str]:
        return [
            str(VENV_BIN / "voila"),
            str(self.root),
            "--no-browser",
            "--Voila.ip=127.0.0.1",
            f"--port={self.port}",
            f"--token={self.token}",
            "--show_tracebacks=True",
            # Connection files in this server's temp folder, not in /tmp.
            f"--Voila.connection_dir_root={self.base / 'runtime'}",
        ]
