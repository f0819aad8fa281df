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
* **Everything else** runs at a lower CPU priority (``nice`` 10), streamed live. Some browser
  tests measure the page while a kernel publishes flat out (the flood test needs a real 50,000
  events/s); with equal priority they would share their core with a property test. At the lower
  priority the other part still gets every cycle the browser side leaves idle.

Extra arguments go to both pytest commands (``-x``, ``-k ...``, ``--durations=20``).
``CODEUR_TESTS_SERIAL=1``, or a machine with one core, runs the single pytest command of old.
The exit status is the first non-zero one of the two parts (0 when both pass).
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
NICE = 10


def pytest_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]


def serial(extra: list[str]) -> int:
    """The whole suite in one process."""
    return subprocess.call(pytest_command("tests", "--nbval-lax", "notebooks", *extra), cwd=ROOT)


def side_by_side(extra: list[str]) -> int:
    """The browser tests and the rest at once; see the module docstring."""
    BROWSER_LOG.parent.mkdir(exist_ok=True)
    started = time.monotonic()
    with BROWSER_LOG.open("w") as log:
        browser = subprocess.Popen(
            pytest_command(BROWSER, *extra), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
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
    total = time.monotonic() - started
    print(
        f"run_tests: the rest {'passed' if rest == 0 else 'FAILED'} in {rest_done:.0f} s; "
        f"browser tests {'passed' if browser_status == 0 else 'FAILED'}; "
        f"{total:.0f} s in all",
        flush=True,
    )
    return rest or browser_status


def main(argv: list[str]) -> int:
    if os.environ.get("CODEUR_TESTS_SERIAL") == "1" or (os.cpu_count() or 1) < 2:
        return serial(argv)
    return side_by_side(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
