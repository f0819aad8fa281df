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

**A test that fails is run again, alone**, once the rest is done: a test that waits on a timer
or counts a rate may miss its moment on a machine whose cores the two parts share (and the
iopub-overflow control depends on the kernel's "idle" messages, which reset the server's count,
falling outside its flood: it missed once even when run alone). Passing alone, it passes
``make test`` as it would have in a serial run, and is listed at the end under "passed only
alone" so that its wait can be fixed; failing alone, it fails. At most ``MAX_RERUNS`` tests are
run again: more failures than that are a real breakage. A notebook's cell is run again with its
whole notebook (its cells depend on each other).

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
MAX_RERUNS = 8
TESTS_FAILED = 1  # pytest's exit status when tests ran and some failed (not an error)


def pytest_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]


def recording_failures(path: Path) -> dict[str, str]:
    """The environment of a pytest run whose failed tests' ids go to ``path`` (tests/conftest.py
    appends them there)."""
    return {**os.environ, "CODEUR_FAILED_FILE": str(path)}


def serial(extra: list[str]) -> int:
    """The whole suite in one process."""
    return subprocess.call(pytest_command("tests", "--nbval-lax", "notebooks", *extra), cwd=ROOT)


def side_by_side(extra: list[str]) -> int:
    """The browser tests and the rest at once, then the exclusive ones; see the module
    docstring."""
    BROWSER_LOG.parent.mkdir(exist_ok=True)
    parts = ("rest", "browser", EXCLUSIVE)
    failed_files = {part: BROWSER_LOG.parent / f"failed-{part}.txt" for part in parts}
    for path in failed_files.values():
        path.unlink(missing_ok=True)
    started = time.monotonic()
    with BROWSER_LOG.open("w") as log:
        browser = subprocess.Popen(
            pytest_command(BROWSER, "-m", f"not {EXCLUSIVE}", *extra),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=recording_failures(failed_files["browser"]),
        )
        print(f"run_tests: browser tests running beside the rest (log: {BROWSER_LOG})", flush=True)
        try:
            everything_else = ("tests", f"--ignore={BROWSER}", "--nbval-lax", "notebooks")
            rest = subprocess.call(
                ["nice", "-n", str(NICE), *pytest_command(*everything_else, *extra)],
                cwd=ROOT,
                env=recording_failures(failed_files["rest"]),
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
    exclusive = subprocess.call(
        pytest_command(BROWSER, "-m", EXCLUSIVE, *extra),
        cwd=ROOT,
        env=recording_failures(failed_files[EXCLUSIVE]),
    )
    statuses = {"rest": rest, "browser": browser_status, EXCLUSIVE: exclusive}
    alone: list[str] = []
    for part, status in statuses.items():
        if status == TESTS_FAILED:
            status, passed = run_again_alone(_ids(failed_files[part]), extra)
            alone += passed
        if status == NO_TESTS and extra:  # e.g. -k: a run left with no test is not a failure
            status = 0
        statuses[part] = status
    rest, browser_status, exclusive = statuses.values()
    total = time.monotonic() - started
    print(
        f"run_tests: the rest {_verdict(rest)} in {rest_done:.0f} s; "
        f"browser tests {_verdict(browser_status)}; {EXCLUSIVE} ones {_verdict(exclusive)}; "
        f"{total:.0f} s in all",
        flush=True,
    )
    if alone:
        print(
            "run_tests: passed only alone (failed once, then passed alone; fix their waits):\n  "
            + "\n  ".join(alone),
            flush=True,
        )
    return rest or browser_status or exclusive


def _ids(path: Path) -> list[str]:
    """The failed tests' ids (a notebook's cell as its notebook), each once, in order."""
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    ids = [line.split("::")[0] if ".ipynb::" in line else line for line in lines if line]
    return list(dict.fromkeys(ids))


def run_again_alone(ids: list[str], extra: list[str]) -> tuple[int, list[str]]:
    """Run the tests that failed again, alone: (exit status, their ids when they passed).
    Nothing is run again without ids or past MAX_RERUNS of them."""
    if not ids or len(ids) > MAX_RERUNS:
        return TESTS_FAILED, []
    print(f"\n===== {len(ids)} failed test(s) run again, alone =====", flush=True)
    notebooks = ["--nbval-lax"] if any(i.endswith(".ipynb") for i in ids) else []
    status = subprocess.call(pytest_command(*notebooks, *ids, *extra), cwd=ROOT)
    return status, (ids if status == 0 else [])


def _verdict(status: int) -> str:
    return "passed" if status == 0 else f"FAILED (exit {status})"


def main(argv: list[str]) -> int:
    if os.environ.get("CODEUR_TESTS_SERIAL") == "1" or (os.cpu_count() or 1) < 2:
        return serial(argv)
    return side_by_side(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
