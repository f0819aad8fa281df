"""DashboardHeader: the health line carries the contained faults a person must see."""

from __future__ import annotations

import json
from typing import Any

from codeur_widgets.core.hub import Hub
from codeur_widgets.widgets.dashboard import DashboardHeader

from .conftest import CommSpy


def test_a_healthy_hub_sends_a_small_header(hub: Hub, spy: CommSpy) -> None:
    header = DashboardHeader(hub)
    assert header.health["collectors"] == {} and header.health["sources"] == []
    assert header.health["history"] is None
    assert len(json.dumps(header.health)) < 1_000
    header.close()


def test_faults_appear_in_the_header(hub: Hub, spy: CommSpy, tmp_path: Any) -> None:
    health = hub.system.collectors_health()
    stuck = {**health["memory"], "ok": False, "stuck_s": 12.4}
    broken = {**health["freq"], "ok": False, "last_error": "OSError: /sys unreadable"}
    hub.system.collectors_health = lambda: {  # type: ignore[method-assign]
        **health,
        "memory": stuck,
        "freq": broken,
        "gpu": {**health["gpu"], "degraded": True, "reason": "NVML: Library Not Found"},
    }

    def view(frame: dict[str, Any]) -> None:
        raise KeyboardInterrupt

    hub.watch(["agents"], view)
    hub.render_now(1.0)
    header = DashboardHeader(hub)
    assert header.health["collectors"] == {
        "memory": "timed out (12 s)",
        "freq": "OSError: /sys unreadable",
        "gpu": "NVML: Library Not Found",
    }
    assert header.health["render_interrupts"] == 1
    header.close()
