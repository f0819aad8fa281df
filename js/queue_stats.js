// QueueStats: job counts, wait/run percentiles, completions in the last hour and a throughput
// sparkline (inline SVG). Model trait: data (the `queue` snapshot).
import { h, s, setAttr, setText, style } from "./lib/dom.js";
import { fmtDuration, fmtInt } from "./lib/format.js";
import { sparkPaths } from "./lib/sparkline.js";
import { THEME_CSS } from "./lib/theme.js";

const CSS = `
.cw-q-tiles { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 6px; }
.cw-q-tile { background: var(--cw-bg2); border-radius: 5px; padding: 4px 8px; min-width: 0; }
.cw-q-value { font-size: calc(var(--cw-size) * 1.6); font-weight: 600; font-variant-numeric: tabular-nums; }
.cw-q-label { font-size: var(--cw-size-small); color: var(--cw-fg2); }
.cw-q-rows { display: grid; grid-template-columns: auto auto auto; justify-content: start; gap: 2px 16px; margin-top: 8px;
  font-size: var(--cw-size-small); font-variant-numeric: tabular-nums; }
.cw-q-rows .cw-q-head { color: var(--cw-fg2); }
/* In the Dashboard the queue sits beside the taller graph: it fills its grid cell, and the
   throughput chart takes the height left (at least 44 px on its own). */
.cw.cw-queue-stats { height: 100%; display: flex; flex-direction: column; }
.cw-q-spark { margin-top: 8px; flex: 1 1 auto; display: flex; flex-direction: column; min-height: 60px; }
.cw-q-spark svg { width: 100%; flex: 1 1 44px; min-height: 44px; display: block; }
.cw-q-spark .line { fill: none; stroke: var(--cw-accent); stroke-width: 1.5; vector-effect: non-scaling-stroke; }
.cw-q-spark .area { fill: var(--cw-accent); opacity: 0.15; stroke: none; }
.cw-q-tile[data-kind="failed"][data-nonzero="true"] .cw-q-value { color: var(--cw-err); }
.cw-q-tile[data-kind="processing"][data-nonzero="true"] .cw-q-value { color: var(--cw-ok); }
`;

const W = 300;
const H = 44;

function tile(kind, label) {
  const value = h("div", { class: "cw-q-value", text: "0" });
  const root = h("div", { class: "cw-q-tile", "data-kind": kind }, value, h("div", { class: "cw-q-label", text: label }));
  return { root, value };
}

function render({ model, el }) {
  const tiles = {
    queued: tile("queued", "queued"),
    processing: tile("processing", "processing"),
    completed: tile("completed", "completed"),
    failed: tile("failed", "failed"),
  };
  const cell = () => h("span", { class: "cw-num" });
  const waitP50 = cell();
  const waitP95 = cell();
  const runP50 = cell();
  const runP95 = cell();
  const lastHour = h("span", { class: "cw-muted cw-small" });
  const extra = h("span", { class: "cw-muted cw-small" });
  const area = s("path", { class: "area", d: "" });
  const line = s("path", { class: "line", d: "" });
  const svgTitle = s("title");
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img" });
  svg.append(svgTitle, area, line);
  const sparkLabel = h("div", { class: "cw-muted cw-small" });
  const root = h(
    "div",
    { class: "cw cw-queue-stats" },
    h("div", { class: "cw-toolbar" }, h("span", { class: "cw-title", text: "Job queue" }), lastHour,
      h("span", { class: "cw-spacer" }), extra),
    h("div", { class: "cw-q-tiles" }, ...Object.values(tiles).map((t) => t.root)),
    h(
      "div",
      { class: "cw-q-rows" },
      h("span", { class: "cw-q-head" }), h("span", { class: "cw-q-head", text: "p50" }),
      h("span", { class: "cw-q-head", text: "p95" }),
      h("span", { class: "cw-q-head", text: "wait" }), waitP50, waitP95,
      h("span", { class: "cw-q-head", text: "run" }), runP50, runP95,
    ),
    h("div", { class: "cw-q-spark" }, svg, sparkLabel),
  );
  el.replaceChildren(style(THEME_CSS + CSS), root);

  function update() {
    const d = model.get("data") ?? {};
    for (const [k, t] of Object.entries(tiles)) {
      const v = d[k] ?? 0;
      setText(t.value, fmtInt(v));
      setAttr(t.root, "data-nonzero", v > 0 ? "true" : "false");
    }
    setText(waitP50, fmtDuration(d.wait?.p50));
    setText(waitP95, fmtDuration(d.wait?.p95));
    setText(runP50, fmtDuration(d.run?.p50));
    setText(runP95, fmtDuration(d.run?.p95));
    setText(lastHour, `${fmtInt(d.completed_last_hour ?? 0)} completed in the last hour`);
    setText(extra, d.cancelled ? `${fmtInt(d.cancelled)} cancelled` : "");
    const values = recentMinutes(d.throughput?.values ?? []);
    const p = sparkPaths(values, W, H, 2);
    setAttr(line, "d", p.line);
    setAttr(area, "d", p.area);
    const last = values.length ? values[values.length - 1] : 0;
    const minutes = values.length;
    const label = `throughput: ${fmtInt(last)} jobs in the current minute \u00b7 peak ${fmtInt(p.max)}/min over ${minutes} min`;
    setText(sparkLabel, label);
    setText(svgTitle, label);
  }

  model.on("change:data", update);
  update();
  return () => model.off("change:data", update);
}

/** The hour's per-minute series from the first minute with a finished job on, and at least the
 * last MIN_MINUTES: a run that began 3 minutes ago fills the chart instead of being a spike at the
 * right edge of 57 empty minutes. */
const MIN_MINUTES = 10;
export function recentMinutes(values) {
  const first = values.findIndex((v) => v > 0);
  const from = first < 0 ? values.length : first;
  return values.slice(Math.max(0, Math.min(from, values.length - MIN_MINUTES)));
}

export default { render };
