"""SystemMetrics: CPU, memory, process and GPU plots (bqplot) beside a panel of current values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anywidget
import bqplot
import ipywidgets
import numpy as np
import traitlets

from ._base import WatchedView, close_models, resolve_hub, swap_watch, watch_hz
from ._bundle import Bundle

if TYPE_CHECKING:
    from ..core.hub import Hub, Watch

__all__ = ["WINDOWS", "SystemMetrics"]

WINDOWS = (60, 300, 900, 3600)
"""The windows the panel offers, in seconds (1, 5 and 15 minutes, 1 hour)."""

MAX_HZ = 1.0
"""Frames per second: the sampler moves about once a second, so more would only resend."""

MAX_LINES = 4
"""Custom series plotted at once; with more, a selector picks which (the first ones by default)."""

_STORES = ("system", "custom")

# Fixed hues that read on light and dark backgrounds.
COLOURS = {
    "cpu": "#1f77b4",
    "cores": "#4c9be8",
    "mem": "#8e44ad",
    "rss": "#2e8b57",
    "threads": "#e67e22",
}
GPU_COLOURS = ("#d62728", "#17becf", "#bcbd22", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")

_EMPTY_TIMES = np.array([], dtype="datetime64[ms]")
_EMPTY = np.array([], dtype=float)


class _SystemPanel(anywidget.AnyWidget):
    """The number panel and window selector (``js/system_metrics.js``)."""

    _esm = Bundle("system_metrics")

    data = traitlets.Dict(help="now, interval, latest sample and collector health").tag(sync=True)
    window = traitlets.Int(300, help="seconds of history plotted").tag(sync=True)


class SystemMetrics(WatchedView, ipywidgets.VBox):
    """CPU total and per core, memory, the kernel process's RSS and threads, and GPU load, memory
    and temperature (only when GPUs exist), over a selectable window (1, 5 or 15 minutes), with
    the current values as numbers above the plots. Custom collectors' numbers
    (``hub.add_collector``) get one more plot, once there are some; with more than
    :data:`MAX_LINES` series a selector picks the ones plotted.

    It watches the ``system`` and ``custom`` stores at most once a second and updates each plot's
    marks inside ``hold_sync()``, only those whose store moved: about six comm messages a second
    (one more with custom series, two more with GPUs), whatever the event rate.

    ``SystemMetrics(hub, window=300)``; ``SystemMetrics()`` watches the default hub.
    """

    window = traitlets.Int(300, help="seconds of history plotted (60, 300, 900 or 3600 offered)")

    def __init__(
        self,
        hub: Hub | None = None,
        *,
        window: int = 300,
        plot_height: int = 170,
        **kwargs: Any,
    ) -> None:
        self._hub = resolve_hub(hub)
        self._watch: Watch | None = None
        self._plot_height = plot_height
        self._snapshot: dict[str, Any] = self._hub.stores["system"].snapshot()
        self._custom: dict[str, Any] = self._hub.stores["custom"].snapshot()
        self._custom_lines: Any = None
        self._choosing = False
        self.selector: ipywidgets.SelectMultiple | None = None
        """Which custom series are plotted; created when there are more than MAX_LINES."""
        self.panel = _SystemPanel(data=_panel_data(self._snapshot), window=window)

        self._cpu = _line(COLOURS["cpu"], "CPU %")
        self._cores = bqplot.Bars(
            x=_EMPTY,
            y=_EMPTY,
            scales={
                "x": bqplot.OrdinalScale(),
                "y": bqplot.LinearScale(min=0.0, max=100.0, allow_padding=False),
            },
            colors=[COLOURS["cores"]],
            padding=0.15,
        )
        self._mem = _line(COLOURS["mem"], "memory %")
        rss_scale = bqplot.LinearScale(min=0.0)
        threads_scale = bqplot.LinearScale(min=0.0)
        time_scale = bqplot.DateScale()
        self._rss = bqplot.Lines(
            x=_EMPTY_TIMES,
            y=_EMPTY,
            scales={"x": time_scale, "y": rss_scale},
            colors=[COLOURS["rss"]],
            labels=["RSS MiB"],
            display_legend=True,
        )
        self._threads = bqplot.Lines(
            x=_EMPTY_TIMES,
            y=_EMPTY,
            scales={"x": time_scale, "y": threads_scale},
            colors=[COLOURS["threads"]],
            labels=["threads"],
            display_legend=True,
        )
        self._gpu_load: Any = None
        self._gpu_temp: Any = None
        h = plot_height
        cores_axes = [
            bqplot.Axis(scale=self._cores.scales["x"], side="bottom", label="core", num_ticks=8),
            _value_axis(self._cores.scales["y"], tick_format="d"),
        ]
        process_axes = [
            _time_axis(time_scale),
            _value_axis(rss_scale, label="MiB"),
            _value_axis(threads_scale, label="threads", side="right"),
        ]
        figures = [
            _figure("CPU %", [self._cpu], _percent_axes(self._cpu), h),
            _figure("per core % (now)", [self._cores], cores_axes, h),
            _figure("memory %", [self._mem], _percent_axes(self._mem), h),
            # Bottom legend: flat RSS/thread lines run along the top edge of their scales.
            _figure("process", [self._rss, self._threads], process_axes, h, legend="bottom-right"),
        ]
        self.plots = ipywidgets.Box(
            figures, layout=ipywidgets.Layout(display="flex", flex_flow="row wrap", width="100%")
        )
        kwargs.setdefault(
            "layout",
            ipywidgets.Layout(
                width="100%",
                min_width="0",
                # One frame around the number panel and the plots, like the other panels.
                border="1px solid var(--jp-border-color2, rgba(127, 127, 127, 0.3))",
                padding="0 0 4px 0",
            ),
        )
        super().__init__([self.panel, self.plots], **kwargs)
        self.window = window
        self._links = [traitlets.link((self, "window"), (self.panel, "window"))]
        self._draw()
        self._draw_custom()
        self._watch = self._hub.watch(_STORES, self._on_frame, max_hz=watch_hz(MAX_HZ))

    @property
    def hub(self) -> Hub:
        """The hub this widget watches."""
        return self._hub

    def _on_frame(self, frame: dict[str, dict[str, Any]]) -> None:
        if self._watch is None:
            return
        system, custom = frame["system"], frame["custom"]
        # One watch for both stores: redraw only the plots whose store moved (the system
        # snapshot's series are the same object until a sample arrives).
        if system.get("series") is not self._snapshot.get("series"):
            self._snapshot = system
            self._draw()
        if custom.get("version") != self._custom.get("version"):
            self._custom = custom
            self._draw_custom()

    def rebind(self, hub: Hub) -> None:
        """Plot ``hub`` from now on (a past state rebuilt from history, or live again)."""
        if hub is self._hub:
            return
        self._watch = swap_watch(self, self._watch, hub, _STORES, MAX_HZ)
        self._hub = hub
        self._snapshot = hub.stores["system"].snapshot()
        self._custom = hub.stores["custom"].snapshot()
        self._draw()
        self._draw_custom()

    @traitlets.observe("window")
    def _window_changed(self, change: Any) -> None:
        if self._watch is not None:
            self._draw()  # a user action: redraw the last frame at once
            self._draw_custom()

    def _draw(self) -> None:
        """Push the last snapshot: one ``hold_sync`` block (one message) per widget touched."""
        snap = self._snapshot
        series: Mapping[str, Any] = snap.get("series") or {}
        latest: Mapping[str, Any] = snap.get("latest") or {}
        times, cut = _window(series.get("ts") or [], snap.get("now"), self.window)

        with self.panel.hold_sync():
            self.panel.data = _panel_data(snap)
        _set_xy(self._cpu, times, _column(series, "cpu", cut))
        _set_xy(self._mem, times, _column(series, "mem_percent", cut))
        rss = _column(series, "rss", cut)
        _set_xy(self._rss, times, rss / (1024.0 * 1024.0))
        _set_xy(self._threads, times, _column(series, "threads", cut))
        per_core = np.asarray(latest.get("per_core") or [], dtype=float)
        _set_xy(self._cores, np.arange(len(per_core)), per_core)

        gpus: Sequence[Mapping[str, Any]] = latest.get("gpus") or []
        load_rows = series.get("gpu_load") or []
        if gpus or any(len(r) for r in load_rows):
            self._draw_gpus(series, times, cut, len(gpus) or len(load_rows))

    def _draw_gpus(
        self, series: Mapping[str, Any], times: np.ndarray, cut: int, count: int
    ) -> None:
        load = _rows(series.get("gpu_load"), cut, count, len(times))
        mem = _rows(series.get("gpu_mem_percent"), cut, count, len(times))
        temp = _rows(series.get("gpu_temp"), cut, count, len(times))
        # Load and memory share one mark (rows: load per GPU, then memory per GPU).
        load_mem = np.vstack([load, mem])
        if self._gpu_load is None:
            self._add_gpu_figure(count, times, load_mem, temp)  # data travels with the comm-open
        else:
            _set_xy(self._gpu_load, times, load_mem)
            _set_xy(self._gpu_temp, times, temp)

    def _add_gpu_figure(
        self, count: int, times: np.ndarray, load_mem: np.ndarray, temp: np.ndarray
    ) -> None:
        time_scale = bqplot.DateScale()
        pct = bqplot.LinearScale(min=0.0, max=100.0, allow_padding=False)
        temp_scale = bqplot.LinearScale(min=0.0)
        colours = [GPU_COLOURS[i % len(GPU_COLOURS)] for i in range(count)]
        labels = [f"GPU{i} load %" for i in range(count)] + [f"GPU{i} mem %" for i in range(count)]
        self._gpu_load = bqplot.Lines(
            x=times,
            y=load_mem,
            scales={"x": time_scale, "y": pct},
            colors=colours * 2,
            labels=labels,
            display_legend=count <= 2,
        )
        self._gpu_temp = bqplot.Lines(
            x=times,
            y=temp,
            scales={"x": time_scale, "y": temp_scale},
            colors=colours,
            line_style="dashed",
            labels=[f"GPU{i} °C" for i in range(count)],
        )
        fig = _figure(
            "GPU load / memory % (solid), temperature °C (dashed)",
            [self._gpu_load, self._gpu_temp],
            [
                _time_axis(time_scale),
                _value_axis(pct, label="%"),
                _value_axis(temp_scale, label="°C", side="right"),
            ],
            self._plot_height,
        )
        self.plots.children = (*self.plots.children, fig)

    def _draw_custom(self) -> None:
        """The custom collectors' plot: created with the first series, one mark for all lines
        (one message per frame), the selector's choice when there are many."""
        series: Sequence[Mapping[str, Any]] = self._custom.get("series") or []
        if not series and self._custom_lines is None:
            return
        labels = [f"{s.get('collector')} · {s.get('metric')}" for s in series]
        chosen = self._chosen(labels)
        picked = [series[i] for i, label in enumerate(labels) if label in chosen]
        now = self._custom.get("now")
        x, y = _aligned(picked, now, self.window)
        names = [labels[i] for i, label in enumerate(labels) if label in chosen]
        if self._custom_lines is None:
            time_scale = bqplot.DateScale()
            self._custom_lines = bqplot.Lines(
                x=x,
                y=y,
                scales={"x": time_scale, "y": bqplot.LinearScale()},
                colors=list(GPU_COLOURS),
                labels=names,
                display_legend=True,
            )
            fig = _figure(
                "custom collectors",
                [self._custom_lines],
                [_time_axis(time_scale), _value_axis(self._custom_lines.scales["y"])],
                self._plot_height,
            )
            self.plots.children = (*self.plots.children, fig)
            return
        with self._custom_lines.hold_sync():
            self._custom_lines.x = x
            self._custom_lines.y = y
            if list(self._custom_lines.labels) != names:
                self._custom_lines.labels = names

    def _chosen(self, labels: list[str]) -> set[str]:
        """The series to plot: all of them up to MAX_LINES, else what the selector says."""
        if len(labels) <= MAX_LINES and self.selector is None:
            return set(labels)
        if self.selector is None:
            self.selector = ipywidgets.SelectMultiple(
                options=labels,
                value=tuple(labels[:MAX_LINES]),
                rows=min(6, len(labels)),
                description="series",
                layout=ipywidgets.Layout(width="260px"),
            )
            self.selector.observe(self._selection_changed, "value")
            self.plots.children = (*self.plots.children, self.selector)
        elif tuple(self.selector.options) != tuple(labels):
            # New options clear the selection: keep the user's choice across the change.
            kept = tuple(v for v in self.selector.value if v in labels)
            self._choosing = True
            try:
                self.selector.options = labels
                self.selector.value = kept or tuple(labels[:MAX_LINES])
            finally:
                self._choosing = False
        return set(self.selector.value)

    def _selection_changed(self, change: Any) -> None:
        if not self._choosing and self._watch is not None:
            self._draw_custom()

    def close(self) -> None:
        """Detach from the hub and close the panel, the plots and this box (idempotent)."""
        watch = self._watch
        if watch is not None:
            self._watch = None
            watch.close()
        for link in getattr(self, "_links", []):
            link.unlink()
        self._links = []
        close_models(self, super().close)  # the panel, the plots, every bqplot part


def _panel_data(snap: Mapping[str, Any]) -> dict[str, Any]:
    return {k: snap.get(k) for k in ("now", "interval", "latest", "collectors")}


def _window(ts: Sequence[float], now: float | None, window: int) -> tuple[np.ndarray, int]:
    """The sample times inside the window (as datetime64 for the DateScale) and where they start."""
    arr = np.asarray(ts, dtype=float)
    if arr.size == 0:
        return _EMPTY_TIMES, 0
    end = float(now) if now is not None else float(arr[-1])
    cut = int(np.searchsorted(arr, end - window, side="left"))
    return (arr[cut:] * 1000.0).astype("datetime64[ms]"), cut


def _aligned(
    series: Sequence[Mapping[str, Any]], now: float | None, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """Custom series inside the window as one (lines, points) pair of arrays for one Lines mark:
    shorter series are padded at the start with their first time and NaN values (not drawn)."""
    cut = [_window(s.get("ts") or [], now, window) for s in series]
    length = max((len(t) for t, _ in cut), default=0)
    if not series or length == 0:
        return _EMPTY_TIMES, _EMPTY
    # At least 2 columns: bqplot squeezes a (lines, 1) array into one line of many points.
    length = max(length, 2)
    x = np.empty((len(series), length), dtype="datetime64[ms]")
    y = np.full((len(series), length), np.nan)
    for i, (s, (times, start)) in enumerate(zip(series, cut, strict=True)):
        values = np.asarray((s.get("values") or [])[start:], dtype=float)
        n = min(len(times), len(values))
        first = times[0] if n else np.datetime64(int(float(now or 0) * 1000), "ms")
        x[i, : length - n] = first
        if n:
            x[i, length - n :] = times[-n:]
            y[i, length - n :] = values[-n:]
    return x, y


def _column(series: Mapping[str, Any], key: str, cut: int) -> np.ndarray:
    return np.asarray((series.get(key) or [])[cut:], dtype=float)


def _rows(rows: Any, cut: int, count: int, length: int) -> np.ndarray:
    """A (count, length) array from per-GPU series, padding missing rows with NaN (gaps)."""
    out = np.full((count, length), np.nan)
    for i, row in enumerate((rows or [])[:count]):
        vals = np.asarray(row[cut:], dtype=float)[-length:] if length else _EMPTY
        if vals.size:
            out[i, length - vals.size :] = vals
    return out


def _set_xy(mark: Any, x: np.ndarray, y: np.ndarray) -> None:
    with mark.hold_sync():  # x and y travel together: one message, never a length mismatch
        mark.x = x
        mark.y = y


def _line(colour: str, label: str) -> Any:
    return bqplot.Lines(
        x=_EMPTY_TIMES,
        y=_EMPTY,
        scales={
            "x": bqplot.DateScale(),
            "y": bqplot.LinearScale(min=0.0, max=100.0, allow_padding=False),
        },
        colors=[colour],
        labels=[label],
    )


def _percent_axes(mark: Any) -> list[Any]:
    return [_time_axis(mark.scales["x"]), _value_axis(mark.scales["y"], tick_format="d")]


def _time_axis(scale: Any) -> Any:
    # Every side is explicit: bqplot would otherwise send one more update after opening the axis.
    return bqplot.Axis(scale=scale, side="bottom", tick_format="%H:%M", num_ticks=4)


def _value_axis(scale: Any, side: str = "left", **kwargs: Any) -> Any:
    return bqplot.Axis(scale=scale, orientation="vertical", side=side, num_ticks=5, **kwargs)


def _figure(
    title: str, marks: list[Any], axes: list[Any], height: int, legend: str = "top-left"
) -> Any:
    return bqplot.Figure(
        marks=marks,
        axes=axes,
        title=title,
        title_style={"font-size": "12px"},
        fig_margin={"top": 28, "bottom": 28, "left": 44, "right": 44},
        animation_duration=0,
        legend_location=legend,
        layout=ipywidgets.Layout(flex="1 1 300px", min_width="240px", height=f"{height}px"),
    )
