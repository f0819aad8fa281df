"""Section 5: idle cost of a displayed Dashboard.

In a real JupyterLab with Chromium, a notebook starts a Hub (system sampler on, as by default),
registers the Codeur agents with a little history, displays a Dashboard and ends. Once the
panels are drawn and 5 s have passed, the harness reads the kernel process's CPU time (user +
system, psutil, from outside) over 60 s (10 s with ``--quick``) and counts the comm messages the
browser receives meanwhile (its kernel websocket). For comparison, the same is measured for a
kernel that has only imported the package (no Hub, no Dashboard).
"""

from __future__ import annotations

import time
from typing import Any

import psutil

from ._report import Section

BUDGET_PERCENT = 2.0

SETUP = """
from codeur_widgets import Dashboard, Hub
hub = Hub()
hub.start()
for name in ["request_planner", "code_planner", "coding_agent", "rag_service", "git_operations"]:
    hub.publish("agent.registered", name, data={"role": "worker"})
    hub.publish("agent.heartbeat", name)
    hub.publish("log", name, level="INFO", message=f"{name} ready")
hub.publish("agent.message", "code_planner", target="coding_agent", kind="task_assignment")
hub.publish("job.enqueued", job_id="job-1", kind="code_generation")
Dashboard(hub)
"""

BASELINE = """
import codeur_widgets
"""


def _cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


def measure(ctx: Any, seconds: float, cells: list[str], name: str, wait: str) -> dict[str, Any]:
    from ._browser import KernelTraffic

    session = ctx.browser
    nb = session.notebook(name, cells)
    try:
        with session.page() as page:
            traffic = KernelTraffic().watch(page)
            session.start_notebook(page, nb)
            proc = psutil.Process(session.kernel_pid(page))
            if wait:
                page.locator(wait).first.wait_for(timeout=90_000)
            session.wait_done(page)
            page.wait_for_timeout(5_000)
            start_mono, cpu0 = time.monotonic(), _cpu_seconds(proc)
            page.wait_for_timeout(seconds * 1000)
            end_mono, cpu1 = time.monotonic(), _cpu_seconds(proc)
            comms = traffic.of_type("comm_msg", start_mono, end_mono)
    finally:
        session.shutdown_kernels()
    wall = end_mono - start_mono
    return {
        "seconds": wall,
        "cpu_s": cpu1 - cpu0,
        "percent": 100.0 * (cpu1 - cpu0) / wall,
        "comm_msgs": comms,
    }


def run(ctx: Any) -> Section:
    from ._browser import available

    seconds = 10.0 if ctx.quick else 60.0
    section = Section("idle", f"5. Idle cost: a displayed Dashboard, no events, {seconds:.0f} s")
    why = available()
    if why:
        section.notes.append(f"skipped: {why}")
        section.budget("idle: kernel CPU", f"< {BUDGET_PERCENT} % of a core", why, None)
        return section
    dash = measure(ctx, seconds, [SETUP], "idle.ipynb", ".cw-log-tail")
    base = measure(ctx, min(seconds, 20.0), [BASELINE], "idle_baseline.ipynb", "")
    t = section.table("kernel", "seconds", "CPU time", "CPU % of one core", "comm messages/s")
    for label, r in (("Dashboard displayed, Hub started", dash), ("package imported only", base)):
        t.add(
            label, f"{r['seconds']:.0f}", f"{r['cpu_s']:.2f} s", f"{r['percent']:.2f} %",
            f"{r['comm_msgs'] / r['seconds']:.2f}",
        )  # fmt: skip
    section.budget(
        f"idle: kernel CPU, Dashboard displayed, {seconds:.0f} s without events",
        f"< {BUDGET_PERCENT:.0f} % of a core", f"{dash['percent']:.2f} %",
        dash["percent"] < BUDGET_PERCENT,
    )  # fmt: skip
    section.data.update(dashboard=dash, baseline=base)
    return section
