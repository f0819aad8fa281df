"""The Python test suite of ``make test``: two pytest processes at once, on a machine's cores.

The browser tests (``tests/e2e``: JupyterLab, Notebook 7 and Voila in Chromium) take about half
of the suite's time, and most of it is waiting: for a server to start, a page to draw, a widget
to update. Everything else (core, widgets, notebooks, docs, integration, reliability) is mostly
Python on one core. Run one after the other, the two parts took 9 minutes on a 2-core machine;
run side by side, about the longer of the two.

* **The browser tests** run in one process, as before: one JupyterLab and one Chromium, their
  package- and module-scoped servers started once. Their output is written to
  ``artifacts/browser-tests.log`` and printed whole when both parts are done, so that the two
  never interleave.
* **Everything else** runs at a lower CPU priority (``nice`` 10), streamed live, so that the
  browser side, which has a Jupyter server, a kernel and Chromium to feed, is never the one kept
  waiting; the other part still gets every cycle the browser side leaves idle.
* **The browser tests marked** ``cpu_exclusive`` run last, alone: they measure a rate that needs
  a whole core (the flood test's kernel must really publish 50,000 events/s; the control test's
  kernel must outrun the server's message-rate limit). Beside the other part they missed it
  (44,496 events/s once, on 2 cores), which says nothing of the code under test.

Extra arguments go to every pytest command (``-x``, ``-k ...``, ``--durations=20``).
``CODEUR_TESTS_SERIAL=1``, or a machine with one core, runs the single pytest command of old.
The exit status is the first non-zero one of the three runs (0 when all pass); with extra
arguments, a run whose tests were all deselected (pytest's exit 5) counts as passed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BROWSER = "tests/e2e"
BROWSER_LOG = ROOT / "artifacts" / "browser-tests.log"
EXCLUSIVE = "cpu_exclusive"
NO_TESTS = 5  # pytest's exit status when no test was collected or all were deselected
NICE = 10


def pytest_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]


def serial(extra: list[str]) -> int:
    """The whole suite in one process."""
    return subprocess.call(pytest_command("tests", "--nbval-lax", "notebooks", *extra), cwd=ROOT)


def side_by_side(extra: list[str]) -> int:
    """The browser tests and the rest at once, then the exclusive ones; see the module
    docstring."""
    BROWSER_LOG.parent.mkdir(exist_ok=True)
    started = time.monotonic()
    with BROWSER_LOG.open("w") as log:
        browser = subprocess.Popen(
            pytest_command(BROWSER, "-m", f"not {EXCLUSIVE}", *extra),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        print(f"run_tests: browser tests running beside the rest (log: {BROWSER_LOG})", flush=True)
        try:
            everything_else = ("tests", f"--ignore={BROWSER}", "--nbval-lax", "notebooks")
            rest = subprocess.call(
                ["nice", "-n", str(NICE), *pytest_command(*everything_else, *extra)], cwd=ROOT
            )
            rest_done = time.monotonic() - started
            browser_status = browser.wait()
        finally:
            if browser.poll() is None:  # interrupted: leave no browser test running
                browser.terminate()
                browser.wait()
    print(f"\n===== browser tests ({BROWSER}), run beside the rest =====", flush=True)
    print(BROWSER_LOG.read_text(), end="", flush=True)
    print(f"\n===== browser tests marked {EXCLUSIVE}, run alone =====", flush=True)
    exclusive = subprocess.call(pytest_command(BROWSER, "-m", EXCLUSIVE, *extra), cwd=ROOT)
    total = time.monotonic() - started
    print(
        f"run_tests: the rest {_verdict(rest)} in {rest_done:.0f} s; "
        f"browser tests {_verdict(browser_status)}; {EXCLUSIVE} ones {_verdict(exclusive)}; "
        f"{total:.0f} s in all",
        flush=True,
    )
    if extra:  # e.g. -k: a run left with no test is not a failure
        rest, browser_status, exclusive = (
            0 if status == NO_TESTS else status for status in (rest, browser_status, exclusive)
        )
    return rest or browser_status or exclusive


def _verdict(status: int) -> str:
    return "passed" if status == 0 else f"FAILED (exit {status})"


def main(argv: list[str]) -> int:
    if os.environ.get("CODEUR_TESTS_SERIAL") == "1" or (os.cpu_count() or 1) < 2:
        return serial(argv)
    return side_by_side(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
