// SystemMetrics number panel: the latest sample as numbers, the window selector and collector
// health. The plots beside it are bqplot figures driven from Python.
// Model traits: data ({now, interval, latest, collectors} of the `system` snapshot), window (s).
import { clockOffset, every, hubTime } from "./lib/clock.js";
import { h, setAttr, setText, style } from "./lib/dom.js";
import { DASH, fmtAge, fmtBytes, fmtInt, fmtPercent } from "./lib/format.js";
import { THEME_CSS } from "./lib/theme.js";

const CSS = `
.cw-sys-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 6px; }
.cw-sys-item { background: var(--cw-bg2); border-radius: 5px; padding: 3px 8px; min-width: 0; }
.cw-sys-value { font-size: calc(var(--cw-size) * 1.3); font-weight: 600; font-variant-numeric: tabular-nums;
  overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
/* Labels carry numbers too ("1.1 GiB of 15.6 GiB"): they wrap between words, never cut a number. */
.cw-sys-label { font-size: var(--cw-size-small); color: var(--cw-fg2); overflow-wrap: anywhere; }
.cw-sys-gpu { margin-top: 6px; font-size: var(--cw-size-small); font-variant-numeric: tabular-nums; }
.cw-sys-gpu td, .cw-sys-gpu th { padding: 1px 8px 1px 0; text-align: left; }
.cw-sys-gpu th { color: var(--cw-fg2); font-weight: normal; }
.cw-sys-issues { color: var(--cw-warn); font-size: var(--cw-size-small); margin-top: 4px; }
.cw.cw-system-metrics { border: none; }
/* The bqplot figures beside this panel (SystemMetrics.plots has this class): bqplot's own theme
   variables, pointed at the notebook theme's colours (bqplot paints titles and axis labels
   orange in dark mode otherwise). */
.cw-sys-plots {
  --bq-content-font-color: var(--jp-ui-font-color1, #222);
  --bq-axis-tick-text-fill: var(--jp-ui-font-color2, #555);
}
`;

export const WINDOWS = [
  [60, "1 min"],
  [300, "5 min"],
  [900, "15 min"],
  [3600, "1 h"],
];

function item(label) {
  const value = h("div", { class: "cw-sys-value", text: DASH });
  const sub = h("div", { class: "cw-sys-label", text: label });
  return { root: h("div", { class: "cw-sys-item" }, value, sub), value, sub, label };
}

/** Sets a tile's value and label; both also go in its tooltip (in case a narrow tile cuts). */
function fill(it, value, label = it.label) {
  setText(it.value, value);
  setText(it.sub, label);
  setAttr(it.root, "title", `${label}: ${value}`);
}

function render({ model, el }) {
  const items = {
    cpu: item("CPU"),
    mem: item("memory"),
    swap: item("swap"),
    rss: item("process RSS"),
    threads: item("threads"),
    proc: item("process CPU"),
  };
  const buttons = WINDOWS.map(([secs, label]) => {
    const b = h("button", { text: label, "data-window": secs });
    b.addEventListener("click", () => {
      model.set("window", secs);
      model.save_changes();
    });
    return b;
  });
  const age = h("span", { class: "cw-muted cw-small" });
  const gpuBody = h("tbody");
  const gpu = h(
    "table",
    { class: "cw-sys-gpu" },
    h("thead", {}, h("tr", {}, ...["GPU", "load", "memory", "temperature"].map((t) => h("th", { text: t })))),
    gpuBody,
  );
  const issues = h("div", { class: "cw-sys-issues" });
  const root = h(
    "div",
    { class: "cw cw-system-metrics" },
    h("div", { class: "cw-toolbar" }, h("span", { class: "cw-title", text: "System" }), age,
      h("span", { class: "cw-spacer" }), ...buttons),
    h("div", { class: "cw-sys-grid" }, ...Object.values(items).map((i) => i.root)),
    gpu,
    issues,
  );
  el.replaceChildren(style(THEME_CSS + CSS), root);
  let offset = 0;

  function update() {
    const d = model.get("data") ?? {};
    offset = clockOffset(d.now);
    const l = d.latest ?? {};
    const cores = Array.isArray(l.per_core) ? l.per_core.length : 0;
    const freq = typeof l.freq_mhz === "number" && l.freq_mhz > 0 ? ` \u00b7 ${(l.freq_mhz / 1000).toFixed(1)} GHz` : "";
    fill(items.cpu, fmtPercent(l.cpu), cores ? `CPU \u00b7 ${cores} core${cores === 1 ? "" : "s"}${freq}` : "CPU");
    fill(items.mem, fmtPercent(l.mem_percent), `memory \u00b7 ${fmtBytes(l.mem_used)} of ${fmtBytes(l.mem_total)}`);
    fill(items.swap, fmtPercent(l.swap_percent));
    fill(items.rss, fmtBytes(l.rss));
    fill(items.threads, fmtInt(l.threads));
    fill(items.proc, fmtPercent(l.proc_cpu));
    const gpus = Array.isArray(l.gpus) ? l.gpus : [];
    gpu.hidden = gpus.length === 0;
    gpuBody.replaceChildren(
      ...gpus.map((g) =>
        h(
          "tr",
          {},
          h("td", { text: `${g.index ?? ""} ${g.name ?? ""}`.trim() }),
          h("td", { text: fmtPercent(g.load) }),
          h("td", { text: `${fmtBytes(g.mem_used)} / ${fmtBytes(g.mem_total)}` }),
          h("td", { text: typeof g.temperature === "number" ? `${Math.round(g.temperature)} \u00b0C` : DASH }),
        ),
      ),
    );
    const bad = Object.entries(d.collectors ?? {}).filter(([, c]) => c && (c.ok === false || c.last_error));
    setText(issues, bad.map(([k, c]) => `${k}: ${c.errors ?? 0} errors${c.last_error ? ` (${c.last_error})` : ""}`).join("; "));
    issues.hidden = bad.length === 0;
    tick();
  }

  function updateWindow() {
    const w = model.get("window");
    for (const b of buttons) setAttr(b, "aria-pressed", Number(b.dataset.window) === w ? "true" : "false");
  }

  function tick() {
    const ts = (model.get("data") ?? {}).latest?.ts;
    setText(age, typeof ts === "number" ? `sampled ${fmtAge(hubTime(offset) - ts)}` : "no sample yet");
  }

  model.on("change:data", update);
  model.on("change:window", updateWindow);
  update();
  updateWindow();
  const stop = every(1000, tick);
  return () => {
    stop();
    model.off("change:data", update);
    model.off("change:window", updateWindow);
  };
}

export default { render };
