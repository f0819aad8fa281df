"""SystemMetrics with custom collectors' series: one more plot, a selector when there are many,
and no more messages than the comm budget allows."""

from __future__ import annotations

import numpy as np

from codeur_widgets import SystemMetrics
from codeur_widgets.core.clock import FakeClock
from codeur_widgets.core.hub import Hub

from .conftest import CommSpy
from .helpers import sample


def reading(hub: Hub, collector: str, **values: float) -> None:
    hub.publish("metrics.custom", data={"collector": collector, "values": values})


def test_custom_series_get_one_plot_created_with_the_first(
    hub: Hub, clock: FakeClock, spy: CommSpy
) -> None:
    sm = SystemMetrics(hub, window=60)
    assert sm._custom_lines is None and len(sm.plots.children) == 4  # nothing custom yet
    for i in range(30):
        clock.advance(1.0)
        reading(hub, "vllm", running=float(i), waiting=2.0)
        if i % 2:
            reading(hub, "queue", depth=float(10 * i))
    hub.render_now(now=0.0)
    assert sm._custom_lines is not None and len(sm.plots.children) == 5
    assert list(sm._custom_lines.labels) == ["vllm · running", "vllm · waiting", "queue · depth"]
    assert sm._custom_lines.y.shape == (3, 30)
    assert sm._custom_lines.y[0, -1] == 29.0
    # The queue reads every other second: its 15 points are padded at the start (not drawn).
    assert np.isnan(sm._custom_lines.y[2, :15]).all() and sm._custom_lines.y[2, -1] == 290.0
    assert sm.selector is None  # three series: all plotted, no selector
    sm.close()


def test_many_custom_series_are_picked_with_a_selector(
    hub: Hub, clock: FakeClock, spy: CommSpy
) -> None:
    sm = SystemMetrics(hub)
    clock.advance(1.0)
    reading(hub, "vllm", **{f"m{i}": float(i) for i in range(7)})
    hub.render_now(now=0.0)
    assert sm.selector is not None and len(sm.selector.options) == 7
    assert list(sm._custom_lines.labels) == [f"vllm · m{i}" for i in range(4)]
    sm.selector.value = ("vllm · m5", "vllm · m6")  # the user's choice
    assert list(sm._custom_lines.labels) == ["vllm · m5", "vllm · m6"]
    assert list(sm._custom_lines.y[:, -1]) == [5.0, 6.0]
    clock.advance(1.0)
    reading(hub, "vllm", **{f"m{i}": float(i) for i in range(8)})  # one more series
    hub.render_now(now=2.0)
    assert len(sm.selector.options) == 8
    assert sm.selector.value == ("vllm · m5", "vllm · m6")  # the choice is kept
    sm.close()


def test_custom_readings_do_not_resend_the_system_plots(
    hub: Hub, clock: FakeClock, spy: CommSpy
) -> None:
    sm = SystemMetrics(hub)
    clock.advance(1.0)
    hub.publish("system.sample", data=sample(clock()))
    reading(hub, "vllm", running=1.0)
    hub.render_now(now=0.0)
    mark = spy.mark()
    clock.advance(1.0)
    reading(hub, "vllm", running=2.0)  # only the custom store moves
    hub.render_now(now=2.0)
    sent = spy.updates([sm], since=mark)
    assert {m.comm_id for m in sent} == {sm._custom_lines.model_id}
    assert len(sent) == 1
    sm.close()
