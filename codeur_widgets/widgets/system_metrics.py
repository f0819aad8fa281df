"""SystemMetrics: CPU, memory, process and GPU plots (bqplot) beside a panel of current values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anywidget
import bqplot
import ipywidgets
import numpy as np
import traitlets

from ._base import WatchedView, bring_to_life, close_models, resolve_hub, swap_watch, watch_hz
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
    Each time axis spans the whole window ending now (a gap point at its start; seconds shown
    for the 1- and 5-minute windows), so an empty or short series never repeats a label.

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
        bring_to_life(self._hub)
        self._plot_height = plot_height
        self._first_window = window
        self._snapshot: dict[str, Any] = self._hub.stores["system"].snapshot()
        self._custom: dict[str, Any] = self._hub.stores["custom"].snapshot()
        self._custom_lines: Any = None
        self._choosing = False
        self.selector: ipywidgets.SelectMultiple | None = None
        """Which custom series are plotted; created when there are more than MAX_LINES."""
        # Each line starts at the window's start (a gap point) so its time axis always spans the
        # window, never collapsing onto the few seconds sampled so far; with no sample at all it
        # is a hidden flat line across the window (see _set_line). Each mark has a time scale of
        # its own: bqplot redraws every mark of a scale when its domain moves, also one whose view
        # is still being created, which fails (undefined path generator) if the scale is shared.
        now = self._snapshot.get("now")
        end = float(now) if isinstance(now, (int, float)) else self._hub.clock()
        first = _Window(end - window, end)
        self.panel = _SystemPanel(data=_panel_data(self._snapshot), window=window)

        self._cpu = _line(COLOURS["cpu"], "CPU %", first)
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
        self._mem = _line(COLOURS["mem"], "memory %", first)
        # From 0 to a rounded ceiling above the largest value (set each frame): no negative
        # ticks, and a flat line sits below the top edge instead of on it.
        self._rss_scale = bqplot.LinearScale(min=0.0, max=1.0, allow_padding=False)
        self._threads_scale = bqplot.LinearScale(min=0.0, max=1.0, allow_padding=False)
        self._rss = _line(COLOURS["rss"], "RSS MiB", first, self._rss_scale)
        self._threads = _line(COLOURS["threads"], "threads", first, self._threads_scale)
        self._gpu_load: Any = None
        self._gpu_temp: Any = None
        self._time_axes: list[Any] = []
        h = plot_height
        cores_axes = [
            # The cores are named by the title; an axis label would be cut by the margin.
            bqplot.Axis(scale=self._cores.scales["x"], side="bottom", num_ticks=8),
            _value_axis(self._cores.scales["y"], tick_format="d"),
        ]
        # No legend over the lines: each axis is labelled in its line's colour.
        process_axes = [
            self._time_axis(self._rss),
            _value_axis(self._rss_scale, label="RSS MiB", label_color=COLOURS["rss"]),
            _value_axis(
                self._threads_scale,
                label="threads",
                side="right",
                tick_format="d",
                label_color=COLOURS["threads"],
            ),
        ]
        figures = [
            _figure("CPU %", [self._cpu], self._percent_axes(self._cpu), h),
            _figure("CPU % per core (now)", [self._cores], cores_axes, h),
            _figure("memory %", [self._mem], self._percent_axes(self._mem), h),
            _figure("process: RSS MiB and threads", [self._rss, self._threads], process_axes, h),
        ]
        self.plots = ipywidgets.Box(
            figures, layout=ipywidgets.Layout(display="flex", flex_flow="row wrap", width="100%")
        )
        # Titles, ticks and grid lines take the theme's colours (js/system_metrics.js styles
        # this class), so they read in dark mode too.
        self.plots.add_class("cw-sys-plots")
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

    def _time_axis(self, mark: Any) -> Any:
        axis = _time_axis(mark.scales["x"], self._first_window)
        self._time_axes.append(axis)
        return axis

    def _percent_axes(self, mark: Any) -> list[Any]:
        return [self._time_axis(mark), _value_axis(mark.scales["y"], tick_format="d")]

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
        end = snap.get("now")
        if end is None:
            end = float(series["ts"][-1]) if series.get("ts") else self._hub.clock()
        window = _Window(float(end) - self.window, float(end))
        tick_format = _tick_format(self.window)
        for axis in self._time_axes:
            axis.tick_format = tick_format  # sent only when the window changes it
        _set_line(self._cpu, window, times, _column(series, "cpu", cut))
        _set_line(self._mem, window, times, _column(series, "mem_percent", cut))
        rss = _column(series, "rss", cut) / (1024.0 * 1024.0)
        threads = _column(series, "threads", cut)
        self._rss_scale.max = _ceiling(rss)
        self._threads_scale.max = _ceiling(threads, whole=True)
        _set_line(self._rss, window, times, rss)
        _set_line(self._threads, window, times, threads)
        per_core = np.asarray(latest.get("per_core") or [], dtype=float)
        _set_xy(self._cores, np.arange(len(per_core)), per_core)

        gpus: Sequence[Mapping[str, Any]] = latest.get("gpus") or []
        load_rows = series.get("gpu_load") or []
        if gpus or any(len(r) for r in load_rows):
            self._draw_gpus(series, window, times, cut, len(gpus) or len(load_rows))

    def _draw_gpus(
        self,
        series: Mapping[str, Any],
        window: _Window,
        times: np.ndarray,
        cut: int,
        count: int,
    ) -> None:
        load = _rows(series.get("gpu_load"), cut, count, len(times))
        mem = _rows(series.get("gpu_mem_percent"), cut, count, len(times))
        temp = _rows(series.get("gpu_temp"), cut, count, len(times))
        # Load and memory share one mark (rows: load per GPU, then memory per GPU); each series
        # starts with a gap point at the window's start, like the other lines.
        x = window.with_start(times)
        load_mem = window.with_gap(np.vstack([load, mem]))
        temp = window.with_gap(temp)
        if self._gpu_load is None:
            self._add_gpu_figure(count, x, load_mem, temp)  # data travels with the comm-open
        else:
            _set_xy(self._gpu_load, x, load_mem)
            _set_xy(self._gpu_temp, x, temp)

    def _add_gpu_figure(
        self, count: int, times: np.ndarray, load_mem: np.ndarray, temp: np.ndarray
    ) -> None:
        pct = bqplot.LinearScale(min=0.0, max=100.0, allow_padding=False)
        temp_scale = bqplot.LinearScale(min=0.0, allow_padding=False)
        colours = [GPU_COLOURS[i % len(GPU_COLOURS)] for i in range(count)]
        labels = [f"GPU{i} load %" for i in range(count)] + [f"GPU{i} mem %" for i in range(count)]
        self._gpu_load = bqplot.Lines(
            x=times,
            y=load_mem,
            scales={"x": bqplot.DateScale(), "y": pct},
            colors=colours * 2,
            labels=labels,
            display_legend=count <= 2,
        )
        self._gpu_temp = bqplot.Lines(
            x=times,
            y=temp,
            scales={"x": bqplot.DateScale(), "y": temp_scale},
            colors=colours,
            line_style="dashed",
            labels=[f"GPU{i} °C" for i in range(count)],
        )
        fig = _figure(
            "GPU load / memory % (solid), temperature °C (dashed)",
            [self._gpu_load, self._gpu_temp],
            [
                self._time_axis(self._gpu_load),
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
                [self._time_axis(self._custom_lines), _value_axis(self._custom_lines.scales["y"])],
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


class _Window:
    """The plotted time window ``[start, end]`` (unix seconds) and the gap point that makes a
    line's time axis span it."""

    def __init__(self, start: float, end: float) -> None:
        self.start = _datetime(start)
        self.end = _datetime(end)

    def with_start(self, times: np.ndarray) -> np.ndarray:
        """``times`` after the window's start."""
        return np.concatenate([np.array([self.start], dtype="datetime64[ms]"), times])

    def with_gap(self, values: np.ndarray) -> np.ndarray:
        """``values`` (one row, or rows) after a NaN for the start: bqplot leaves a gap there."""
        if values.ndim == 1:
            return np.concatenate([[np.nan], values])
        return np.hstack([np.full((values.shape[0], 1), np.nan), values])

    def flat(self) -> tuple[np.ndarray, np.ndarray]:
        """A flat line across the window (the hidden placeholder of an empty series)."""
        return np.array([self.start, self.end], dtype="datetime64[ms]"), np.zeros(2)


def _set_line(mark: Any, window: _Window, times: np.ndarray, values: np.ndarray) -> None:
    """Plot ``values`` at ``times`` on a one-row line whose time axis spans ``window``.

    An empty series is drawn as a hidden flat line across the window: bqplot draws an empty
    line as the path "null" and places its label at ``translate(x, undefined)``, errors in the
    page on every render.
    """
    empty = values.size == 0 or not bool(np.isfinite(values).any())
    with mark.hold_sync():  # data and visibility in one message
        if empty:
            mark.x, mark.y = window.flat()
        else:
            mark.x, mark.y = window.with_start(times), window.with_gap(values)
        mark.visible = not empty


def _line(colour: str, label: str, window: _Window, y_scale: Any = None) -> Any:
    """A hidden placeholder line (see :func:`_set_line`) on a time scale of its own."""
    x, y = window.flat()
    return bqplot.Lines(
        x=x,
        y=y,
        scales={
            "x": bqplot.DateScale(),
            "y": y_scale or bqplot.LinearScale(min=0.0, max=100.0, allow_padding=False),
        },
        colors=[colour],
        labels=[label],
        visible=False,  # until the first sample
    )


def _tick_format(window: float) -> str:
    """Clock labels of the time axis. bqplot spreads the ticks evenly over the window, not on
    round minutes, so short windows (1 and 5 minutes: ticks 20 s and 100 s apart) show seconds,
    and longer ones (ticks 5 minutes or more apart) hours and minutes: never one label twice."""
    return "%H:%M:%S" if window <= 300 else "%H:%M"


def _time_axis(scale: Any, window: float) -> Any:
    # Every side is explicit: bqplot would otherwise send one more update after opening the axis.
    # Four ticks: room for "12:34:56" labels in the narrowest plot (240 px).
    return bqplot.Axis(scale=scale, side="bottom", tick_format=_tick_format(window), num_ticks=4)


def _datetime(ts: float) -> np.datetime64:
    """Unix seconds as the UTC datetime bqplot's DateScale bounds take (like the series' x)."""
    return np.datetime64(round(ts * 1000.0), "ms")


def _ceiling(values: np.ndarray, *, whole: bool = False) -> float:
    """A round upper bound about 15 % above the largest value (1 for an empty series), so that
    the axis's 5 ticks (``num_ticks=5``: 4 steps) fall on round numbers; ``whole``: whole steps
    (thread counts)."""
    finite = values[np.isfinite(values)] if values.size else values
    top = float(finite.max()) if finite.size else 0.0
    if top <= 0:
        return 4.0 if whole else 1.0
    step = top * 1.15 / 4
    scale = 10.0 ** np.floor(np.log10(step))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        nice = m * scale
        if nice >= step and (not whole or float(nice).is_integer()):
            return float(4 * nice)
    return float(4 * 10.0 * scale)


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
        fig_margin={"top": 28, "bottom": 30, "left": 48, "right": 48},
        animation_duration=0,
        legend_location=legend,
        layout=ipywidgets.Layout(flex="1 1 300px", min_width="240px", height=f"{height}px"),
    )
