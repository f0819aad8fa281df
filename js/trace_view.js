// TraceView: recent traces (a list) and the selected one's spans as a live waterfall.
// Model traits: traces (summaries, newest first, already filtered in Python), counts (per status),
// agents (filter options), now (hub time of the frame), status / agent / text (filters, edited
// here), selected (trace id, edited here or by other panels), patch (the selected trace's rows:
// everything on a reset, then only what changed; see lib/traces.js), span (the clicked span's
// index, edited here), detail (that span with its content), height.
// Open spans grow to "now" in the browser (requestAnimationFrame while any is open): the kernel
// sends nothing while a call is merely running. Agent text reaches the DOM as text only.
import { clockOffset, every, hubTime } from "./lib/clock.js";
import { debounce, h, setAttr, setOptions, setText, style } from "./lib/dom.js";
import { DASH, ellipsis, fmtClock, fmtCost, fmtCount, fmtDuration, fmtInt } from "./lib/format.js";
import { THEME_CSS } from "./lib/theme.js";
import {
  applyPatch,
  axisEnd,
  colourBook,
  costText,
  criticalPath,
  earliest,
  emptyTrace,
  endOf,
  extent,
  kindLabel,
  layout,
  ticks,
} from "./lib/traces.js";

const STATUSES = ["running", "ok", "failed", "cancelled"];

// One colour per agent for the whole page (every view, every trace), in the order first drawn.
const agentColour = colourBook();

const CSS = `
.cw-tr-list { max-height: 190px; overflow-y: auto; border-top: 1px solid var(--cw-border); font-size: var(--cw-size-small); }
.cw-tr-item { display: grid; grid-template-columns: 14px minmax(8em, 1.3fr) 5.5em minmax(6em, 1.6fr) 6em 7.5em 4.5em;
  gap: 0 8px; align-items: center; padding: 2px 4px; cursor: pointer; border-bottom: 1px solid var(--cw-border); }
.cw-tr-item:hover { background: var(--cw-bg2); }
.cw-tr-item[data-selected="true"] { background: color-mix(in srgb, var(--cw-accent) 16%, transparent); }
.cw-tr-item > span { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.cw-tr-item .cw-num { text-align: right; }
.cw-tr-item[data-status="running"] .cw-dot { background: var(--cw-info); }
.cw-tr-item[data-status="ok"] .cw-dot { background: var(--cw-ok); }
.cw-tr-item[data-status="failed"] .cw-dot { background: var(--cw-err); }
.cw-tr-item[data-status="cancelled"] .cw-dot { background: var(--cw-muted); }
.cw-tr-item[data-status="running"] .cw-dot { animation: cw-tr-pulse 1.2s ease-in-out infinite; }
@keyframes cw-tr-pulse { 50% { opacity: 0.35; } }
.cw-tr-errs { color: var(--cw-err); }
.cw-tr-empty { color: var(--cw-fg2); padding: 8px 4px; }
.cw-tr-main { display: grid; grid-template-columns: minmax(0, 2.2fr) minmax(240px, 1fr); gap: 8px; margin-top: 8px; }
@media (max-width: 800px) { .cw-tr-main { grid-template-columns: minmax(0, 1fr); } }
.cw-tr-head { grid-column: 1 / -1; display: flex; flex-wrap: wrap; gap: 2px 14px; font-size: var(--cw-size-small); align-items: baseline; }
.cw-tr-head .cw-tr-title { font-weight: 600; font-size: var(--cw-size); }
.cw-tr-head [data-status="failed"] { color: var(--cw-err); font-weight: 600; }
.cw-tr-head [data-status="running"] { color: var(--cw-info); font-weight: 600; }
.cw-tr-legend { display: inline-flex; gap: 10px; color: var(--cw-fg2); }
.cw-tr-legend i { display: inline-block; width: 14px; height: 8px; border-radius: 2px; vertical-align: 0; margin-right: 3px; }
.cw-tr-fall { min-width: 0; border: 1px solid var(--cw-border); border-radius: 4px; }
.cw-tr-axis, .cw-tr-row { display: grid; grid-template-columns: minmax(9em, 34%) 1fr; }
.cw-tr-axis { font-size: var(--cw-size-small); color: var(--cw-fg3); border-bottom: 1px solid var(--cw-border); height: 18px; }
.cw-tr-ticks { position: relative; }
.cw-tr-ticks span { position: absolute; top: 1px; transform: translateX(-50%); white-space: nowrap; }
.cw-tr-ticks span:first-child { transform: none; }
.cw-tr-ticks span:last-child { transform: translateX(-100%); }
.cw-tr-rows { max-height: var(--cw-tr-height, 420px); overflow-y: auto; position: relative; }
.cw-tr-row { height: 20px; align-items: center; font-size: var(--cw-size-small); cursor: pointer; }
.cw-tr-row:hover { background: var(--cw-bg2); }
.cw-tr-row[data-selected="true"] { background: color-mix(in srgb, var(--cw-accent) 18%, transparent); }
.cw-tr-label { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; padding-right: 6px; }
.cw-tr-label::before { content: attr(data-kind); display: inline-block; min-width: 3.2em; margin-right: 4px;
  font-size: 9px; font-weight: 700; letter-spacing: 0.03em; color: var(--cw-fg2); font-family: var(--cw-mono); }
.cw-tr-row[data-status="error"] .cw-tr-label { color: var(--cw-err); }
.cw-tr-lane { position: relative; height: 100%; border-left: 1px solid var(--cw-border); }
.cw-tr-bar { position: absolute; top: 4px; height: 12px; min-width: 2px; border-radius: 2px; opacity: 0.9; }
.cw-tr-row[data-status="error"] .cw-tr-bar { background: var(--cw-err) !important; }
.cw-tr-row[data-status="cancelled"] .cw-tr-bar { opacity: 0.45; }
.cw-tr-row[data-open="true"] .cw-tr-bar { background-image: repeating-linear-gradient(135deg,
  rgba(255,255,255,0.35) 0 4px, transparent 4px 8px); border-right: 2px solid var(--cw-fg); }
.cw-tr-row[data-critical="false"] .cw-tr-bar { opacity: 0.5; }
.cw-tr-row[data-critical="true"] .cw-tr-bar { box-shadow: 0 0 0 1.5px var(--cw-fg); opacity: 1; }
.cw-tr-dur { position: absolute; top: 3px; font-size: 10px; color: var(--cw-fg2); white-space: nowrap; pointer-events: none; }
.cw-tr-detail { min-width: 0; font-size: var(--cw-size-small); border: 1px solid var(--cw-border); border-radius: 4px;
  padding: 6px 8px; max-height: calc(var(--cw-tr-height, 420px) + 20px); overflow-y: auto; }
.cw-tr-detail h4 { margin: 0 0 4px; font-size: var(--cw-size); overflow-wrap: anywhere; }
.cw-tr-kv { display: grid; grid-template-columns: max-content 1fr; gap: 1px 10px; }
.cw-tr-kv > span:nth-child(odd) { color: var(--cw-fg2); }
.cw-tr-kv > span { overflow-wrap: anywhere; }
.cw-tr-error { color: var(--cw-err); border-left: 3px solid var(--cw-err); padding: 2px 6px; margin: 6px 0;
  white-space: pre-wrap; overflow-wrap: anywhere; }
.cw-tr-sec { margin-top: 8px; font-weight: 600; color: var(--cw-fg2); }
.cw-tr-msg { margin: 3px 0; border-left: 3px solid var(--cw-border); padding-left: 6px; }
.cw-tr-role { font-weight: 600; font-size: 10px; text-transform: uppercase; color: var(--cw-fg2); }
.cw-tr-pre { margin: 1px 0; white-space: pre-wrap; overflow-wrap: anywhere; font-family: var(--cw-mono);
  font-size: var(--cw-size-small); max-height: 240px; overflow-y: auto; }
.cw-tr-hint { color: var(--cw-fg3); }
`;

function listItem(onPick) {
  const dot = h("span", { class: "cw-dot" });
  const job = h("span", { class: "cw-tr-job" });
  const dur = h("span", { class: "cw-num cw-tr-tdur" });
  const agents = h("span", { class: "cw-muted" });
  const tokens = h("span", { class: "cw-num" });
  const cost = h("span", { class: "cw-num" });
  const errs = h("span", { class: "cw-num cw-tr-errs" });
  const root = h(
    "div",
    {
      class: "cw-tr-item",
      role: "option",
      tabindex: "0",
      on: {
        click: () => onPick(root.dataset.id),
        keydown: (e) => {
          if (e.key === "Enter" || e.key === " ") {
            e.preventDefault();
            onPick(root.dataset.id);
          }
        },
      },
    },
    dot, job, dur, agents, tokens, cost, errs,
  );
  return { root, job, dur, agents, tokens, cost, errs, summary: null };
}

function fillItem(item, t) {
  item.summary = t;
  item.root.dataset.id = t.id;
  setAttr(item.root, "data-status", t.status);
  const label = t.job && t.job !== t.id ? t.job : t.id;
  setText(item.job, t.name ? `${label} \u00b7 ${t.name}` : label);
  setAttr(item.job, "title", `${t.id}${t.name ? ` (${t.name})` : ""}`);
  const agents = (t.agents ?? []).join(", ") + (t.more_agents ? ` +${t.more_agents}` : "");
  setText(item.agents, agents || DASH);
  setAttr(item.agents, "title", agents);
  setText(item.tokens, `${fmtCount((t.prompt_tokens ?? 0) + (t.completion_tokens ?? 0))} tok`);
  setText(item.cost, costText(t.cost_usd, t.cost_unknown ?? 0, fmtCost));
  setText(item.errs, t.errors ? `${fmtInt(t.errors)} err` : "");
  setAttr(item.errs, "title", t.error ?? "");
}

function ageItem(item, now) {
  const t = item.summary;
  if (!t || typeof t.start !== "number") return setText(item.dur, DASH);
  const end = typeof t.end === "number" ? t.end : now;
  setText(item.dur, fmtDuration(Math.max(0, end - t.start)));
}

/** Key/value rows (empty values left out); `out.values[key]` is the element showing a value. */
function kv(pairs) {
  const out = h("div", { class: "cw-tr-kv" });
  out.values = {};
  for (const [k, v] of pairs) {
    if (v === null || v === undefined || v === "") continue;
    const value = h("span", { text: String(v) });
    out.values[k] = value;
    out.append(h("span", { text: k }), value);
  }
  return out;
}

/** Chat messages, a message, a string or any JSON value, as text blocks. */
function contentBlock(value) {
  const block = h("div");
  const messages = Array.isArray(value) && value.every((m) => m && typeof m === "object" && "role" in m)
    ? value
    : value && typeof value === "object" && !Array.isArray(value) && "role" in value
      ? [value]
      : null;
  if (messages) {
    for (const m of messages) {
      const body = typeof m.content === "string" ? m.content : JSON.stringify(m.content, null, 2);
      const extra = m.tool_calls ? `\n${JSON.stringify(m.tool_calls, null, 2)}` : "";
      block.append(
        h("div", { class: "cw-tr-msg" }, h("div", { class: "cw-tr-role", text: String(m.role ?? "") }),
          h("pre", { class: "cw-tr-pre", text: `${body ?? ""}${extra}` })),
      );
    }
  } else {
    const text = typeof value === "string" ? value : JSON.stringify(value, null, 2);
    block.append(h("pre", { class: "cw-tr-pre", text }));
  }
  return block;
}

function render({ model, el }) {
  const statusSel = h("select", { "aria-label": "status" });
  const agentSel = h("select", { "aria-label": "agent" });
  const text = h("input", { type: "text", placeholder: "search\u2026", "aria-label": "search traces" });
  text.value = model.get("text") ?? "";
  const counts = h("span", { class: "cw-muted cw-small cw-num" });
  const list = h("div", { class: "cw-tr-list", role: "listbox", "aria-label": "traces" });
  const empty = h("div", { class: "cw-tr-empty", text: "No traces yet." });
  const headTitle = h("span", { class: "cw-tr-title" });
  const headStatus = h("span");
  const headInfo = h("span", { class: "cw-muted cw-num" });
  const legend = h("span", { class: "cw-tr-legend" });
  const head = h("div", { class: "cw-tr-head" }, headTitle, headStatus, headInfo, legend);
  const tickBox = h("div", { class: "cw-tr-ticks" });
  const axis = h("div", { class: "cw-tr-axis" }, h("span", { class: "cw-tr-hint", text: "span" }), tickBox);
  const rowsEl = h("div", { class: "cw-tr-rows", role: "tree" });
  const fall = h("div", { class: "cw-tr-fall" }, axis, rowsEl);
  const detail = h("div", { class: "cw-tr-detail", "aria-live": "polite" });
  const main = h("div", { class: "cw-tr-main" }, head, fall, detail);
  const root = h(
    "div",
    { class: "cw cw-trace-view" },
    h("div", { class: "cw-toolbar" }, h("span", { class: "cw-title", text: "Traces" }), statusSel, agentSel, text,
      h("span", { class: "cw-spacer" }), counts),
    list,
    empty,
    main,
  );
  el.replaceChildren(style(THEME_CSS + CSS), root);
  root.dataset.renderedAt = performance.now().toFixed(1);

  const save = (key, value) => {
    model.set(key, value);
    model.save_changes();
  };
  statusSel.addEventListener("change", () => save("status", statusSel.value));
  agentSel.addEventListener("change", () => save("agent", agentSel.value));
  const sendText = debounce(() => save("text", text.value), 250);
  text.addEventListener("input", sendText);

  // -- the list --------------------------------------------------------------------------------
  const items = new Map(); // trace id -> list item
  let listOffset = 0;
  function pick(id) {
    if (!id) return;
    save("selected", model.get("selected") === id ? "" : id);
  }
  function updateList() {
    const traces = model.get("traces") ?? [];
    listOffset = clockOffset(model.get("now"));
    const keep = new Set();
    const order = [];
    for (const t of traces) {
      let item = items.get(t.id);
      if (!item) {
        item = listItem(pick);
        items.set(t.id, item);
      }
      fillItem(item, t);
      keep.add(t.id);
      order.push(item.root);
    }
    for (const [id, item] of items) if (!keep.has(id)) { item.root.remove(); items.delete(id); }
    const same = order.length === list.children.length && order.every((node, k) => list.children[k] === node);
    if (!same) list.replaceChildren(...order);
    empty.hidden = traces.length > 0;
    const c = model.get("counts") ?? {};
    setText(empty, Object.values(c).some((n) => n > 0) ? "No trace matches the filter." : "No traces yet.");
    setText(counts, STATUSES.map((s) => `${fmtInt(c[s] ?? 0)} ${s}`).join(" \u00b7 "));
    updateFilters();
    markSelected();
    ageList();
  }
  function ageList() {
    const now = hubTime(listOffset);
    for (const item of items.values()) ageItem(item, now);
  }
  function updateFilters() {
    const c = model.get("counts") ?? {};
    setOptions(statusSel, [["", "all statuses"], ...STATUSES.map((s) => [s, `${s} (${fmtInt(c[s] ?? 0)})`])],
      model.get("status") ?? "");
    const agent = model.get("agent") ?? "";
    const agents = model.get("agents") ?? [];
    const opts = [["", "all agents"], ...agents.map((a) => [a, a])];
    if (agent && !agents.includes(agent)) opts.push([agent, agent]);
    setOptions(agentSel, opts, agent);
    if (document.activeElement !== text && text.value !== (model.get("text") ?? "")) text.value = model.get("text") ?? "";
  }
  function markSelected() {
    const sel = model.get("selected") ?? "";
    for (const [id, item] of items) setAttr(item.root, "data-selected", id === sel ? "true" : "false");
    main.hidden = !sel;
  }

  // -- the waterfall ---------------------------------------------------------------------------
  const rows = new Map(); // span index -> {root, label, bar, dur, span}
  let state = emptyTrace();
  let order = []; // span indices in display order
  let axisMs = 1000;
  let lo = 0; // ms of the axis' left edge (an early span may start before t0)
  let offset = 0; // wall - hub, from the last patch
  let critical = new Set();
  let raf = null;
  let lastCritical = 0;

  const nowMs = () => (state.t0 === null ? 0 : (hubTime(offset) - state.t0) * 1000);

  function makeRow(i) {
    const label = h("span", { class: "cw-tr-label" });
    const bar = h("div", { class: "cw-tr-bar" });
    const dur = h("span", { class: "cw-tr-dur" });
    const row = h("div", { class: "cw-tr-row", role: "treeitem", "data-i": i, on: { click: () => save("span", i) } },
      label, h("div", { class: "cw-tr-lane" }, bar, dur));
    return { root: row, label, bar, dur, span: null, depth: -1, status: null, d: undefined, colour: null, placed: null };
  }

  function fillRow(r, sp, depth) {
    if (r.span === sp && r.depth === depth && r.status === sp.status && r.d === sp.d) return; // unchanged
    r.span = sp;
    r.status = sp.status;
    r.d = sp.d;
    setText(r.label, sp.name);
    setAttr(r.label, "data-kind", kindLabel(sp.kind));
    if (r.depth !== depth) r.label.style.paddingLeft = `${Math.min(depth, 24) * 12}px`;
    r.depth = depth;
    setAttr(r.label, "title", `${sp.name}${sp.agent ? ` \u00b7 ${sp.agent}` : ""}`);
    setAttr(r.root, "data-status", sp.status);
    setAttr(r.root, "data-kind", sp.kind);
    setAttr(r.root, "data-open", sp.d === null && sp.status === "running" ? "true" : "false");
    const colour = agentColour(sp.agent);
    if (r.colour !== colour) r.bar.style.background = colour;
    r.colour = colour;
    r.placed = null; // its bar must be placed again
  }

  function place(r, now) {
    const sp = r.span;
    if (!sp) return;
    const start = sp.s ?? endOf(sp, now);
    const end = endOf(sp, now);
    const width = axisMs - lo;
    const left = ((start - lo) / width) * 100;
    const w = ((end - start) / width) * 100;
    const key = `${left.toFixed(3)} ${w.toFixed(3)}`;
    if (r.placed !== key) {
      r.placed = key;
      r.bar.style.left = `${left.toFixed(3)}%`;
      r.bar.style.width = `${Math.max(0, w).toFixed(3)}%`;
      r.dur.style.left = `calc(${Math.min(left + w, 92).toFixed(3)}% + 4px)`;
    }
    setText(r.dur, sp.s === null ? "start unknown" : fmtDuration((end - start) / 1000));
  }

  /** Sets the axis for `now`; returns whether it changed (every bar must then move). */
  function rescale(now) {
    const hi = Math.max(extent(state.spans, now), now);
    const nextLo = Math.min(0, earliest(state.spans));
    const nextAxis = axisEnd(hi - nextLo) + nextLo;
    if (nextLo === lo && nextAxis === axisMs && tickBox.childElementCount) return false;
    lo = nextLo;
    axisMs = nextAxis;
    tickBox.replaceChildren(
      ...ticks(axisMs - lo).map((t) => {
        const tick = h("span", { text: fmtDuration(t / 1000) });
        tick.style.left = `${(t / (axisMs - lo)) * 100}%`;
        return tick;
      }),
    );
    return true;
  }

  function markCritical(now) {
    critical = criticalPath(state.spans, now);
    for (const [i, r] of rows) setAttr(r.root, "data-critical", critical.has(i) ? "true" : "false");
    lastCritical = performance.now();
  }

  function updateHead(now) {
    const t = state.summary;
    if (!t) {
      setText(headTitle, state.missing ? "trace no longer kept" : "");
      setText(headStatus, "");
      setText(headInfo, "");
      return;
    }
    setText(headTitle, t.job && t.job !== t.id ? `${t.job}` : t.id);
    setAttr(headTitle, "title", t.id);
    setText(headStatus, t.status);
    setAttr(headStatus, "data-status", t.status);
    const dur = typeof t.start === "number" ? (typeof t.end === "number" ? t.end : hubTime(offset)) - t.start : null;
    const parts = [
      t.name ?? "",
      fmtDuration(dur),
      `${fmtInt(t.spans ?? 0)} spans${t.open ? ` (${fmtInt(t.open)} open)` : ""}`,
      `${fmtCount(t.prompt_tokens ?? 0)} in / ${fmtCount(t.completion_tokens ?? 0)} out`,
      costText(t.cost_usd, t.cost_unknown ?? 0, fmtCost),
      t.errors ? `${fmtInt(t.errors)} errors` : "",
      t.omitted ? `${fmtInt(t.omitted)} spans not kept` : "",
    ].filter((x) => x);
    setText(headInfo, parts.join(" \u00b7 "));
  }

  function legendFor() {
    const agents = [...new Set(state.spans.filter(Boolean).map((s) => s.agent).filter((a) => a))].slice(0, 8);
    const key = agents.join("\u0000");
    if (legend.dataset.key === key) return;
    legend.dataset.key = key;
    const swatch = (colour, label, extra = {}) => {
      const i = h("i", extra);
      i.style.background = colour;
      return h("span", {}, i, label);
    };
    const crit = h("i");
    crit.style.boxShadow = "0 0 0 1.5px var(--cw-fg)";
    legend.replaceChildren(...agents.map((a) => swatch(agentColour(a), a)), swatch("var(--cw-err)", "failed"),
      h("span", {}, crit, "critical path"));
  }

  // Drawing costs, on the root as data attributes (the benchmark reads them): draws since the
  // last new trace, their total and last time in ms.
  let draws = 0;
  let drawMs = 0;

  function drawTrace() {
    const began = performance.now();
    drawTraceNow();
    const took = performance.now() - began;
    draws += 1;
    drawMs += took;
    root.dataset.draws = String(draws);
    root.dataset.drawMs = drawMs.toFixed(1);
    root.dataset.lastDrawMs = took.toFixed(1);
    root.dataset.lastDrawAt = performance.now().toFixed(1);
  }

  function drawTraceNow() {
    const now = nowMs();
    const laid = layout(state.spans);
    const nextOrder = laid.map(({ span }) => span.i);
    for (const { span, depth } of laid) {
      let r = rows.get(span.i);
      if (!r) {
        r = makeRow(span.i);
        rows.set(span.i, r);
      }
      fillRow(r, span, depth);
    }
    for (const [i, r] of rows) if (!state.spans[i]) { r.root.remove(); rows.delete(i); }
    // Put the rows in order, moving only those out of place (new spans land among the old).
    const kids = rowsEl.children;
    for (let k = 0; k < nextOrder.length; k += 1) {
      const node = rows.get(nextOrder[k]).root;
      if (kids[k] !== node) rowsEl.insertBefore(node, kids[k] ?? null);
    }
    order = nextOrder;
    const moved = rescale(now);
    for (const r of rows.values()) if (moved || r.placed === null || (r.span && r.span.d === null)) place(r, now);
    markCritical(now);
    markSpan();
    updateHead(now);
    legendFor();
    animate();
  }

  function hasOpen() {
    return state.spans.some((s) => s && s.d === null && s.status === "running");
  }

  // Open spans grow every animation frame; nothing is asked of the kernel for it.
  function frame() {
    raf = null;
    if (!root.isConnected || !state.trace) return;
    const now = nowMs();
    const moved = now > axisMs && rescale(now);
    for (const r of rows.values()) if (moved || (r.span && r.span.d === null)) place(r, now);
    if (performance.now() - lastCritical > 1000) markCritical(now);
    updateHead(now);
    if (hasOpen() || state.summary?.status === "running") raf = requestAnimationFrame(frame);
  }
  function animate() {
    if (raf === null && (hasOpen() || state.summary?.status === "running")) raf = requestAnimationFrame(frame);
  }

  const tracker = traceTracker(model);

  function onPatch() {
    const p = model.get("patch");
    state = tracker.current();
    if (p && typeof p.now === "number") offset = clockOffset(p.now);
    if (p && p.reset) {
      draws = 0;
      drawMs = 0;
      for (const r of rows.values()) r.root.remove();
      rows.clear();
      order = [];
      rowsEl.replaceChildren();
      rowsEl.scrollTop = 0;
    }
    drawTrace();
  }

  // -- the span's details -----------------------------------------------------------------------
  function markSpan() {
    const sel = model.get("span");
    for (const [i, r] of rows) setAttr(r.root, "data-selected", i === sel ? "true" : "false");
  }

  function showDetail() {
    markSpan();
    const d = model.get("detail") ?? {};
    if (!d || d.i === undefined || d.i === null) {
      detail.replaceChildren(h("div", { class: "cw-tr-hint", text: "Click a span to see its details." }));
      return;
    }
    const parts = [h("h4", { text: `${kindLabel(d.kind)} \u00b7 ${d.name ?? ""}` })];
    const duration = openDuration(d);
    const tokens = d.prompt_tokens || d.completion_tokens
      ? `${fmtInt(d.prompt_tokens ?? 0)} in \u2192 ${fmtInt(d.completion_tokens ?? 0)} out`
      : null;
    const facts = kv([
        ["status", d.status === "running" ? "running (open)" : d.status],
        ["agent", d.agent],
        ["model", d.model],
        ["started", typeof d.start === "number" ? fmtClock(d.start) : "unknown"],
        ["duration", d.end === null ? `${fmtDuration(duration)} so far` : fmtDuration(duration)],
        ["time to first token", d.ttft === null || d.ttft === undefined ? null : fmtDuration(d.ttft)],
        ["tokens", tokens],
        ["tokens/s", typeof d.tokens_per_s === "number" ? d.tokens_per_s.toFixed(1) : null],
        ["cost", d.cost_unknown ? "cost unknown" : typeof d.cost_usd === "number" ? fmtCost(d.cost_usd) : null],
        ["span id", d.span_id],
        ["parent", d.parent_id],
        ["job", d.job_id],
    ]);
    detailDuration = d.end === null ? facts.values.duration ?? null : null;
    parts.push(facts);
    if (d.error || d.error_type) {
      parts.push(h("div", { class: "cw-tr-error", text: `${d.error_type ?? "Error"}: ${d.error ?? ""}` }));
    }
    const attrs = Object.entries(d.attributes ?? {});
    if (attrs.length) {
      parts.push(h("div", { class: "cw-tr-sec", text: "attributes" }), kv(attrs.map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)])));
    }
    const inputLabel = d.kind === "tool" ? "arguments" : d.kind === "llm" ? "messages" : "input";
    const outputLabel = d.kind === "tool" ? "result" : d.kind === "llm" ? "answer" : "output";
    if (d.input !== null && d.input !== undefined) parts.push(h("div", { class: "cw-tr-sec", text: inputLabel }), contentBlock(d.input));
    if (d.output !== null && d.output !== undefined) parts.push(h("div", { class: "cw-tr-sec", text: outputLabel }), contentBlock(d.output));
    if ((d.input === null || d.input === undefined) && (d.output === null || d.output === undefined) && d.kind !== "task") {
      parts.push(h("div", { class: "cw-tr-hint", text: "content not captured" }));
    }
    const links = d.links ?? [];
    if (links.length) {
      parts.push(h("div", { class: "cw-tr-sec", text: "messages" }),
        h("div", {}, ...links.map((l) => h("div", { text: `${l.direction === "out" ? "\u2192" : "\u2190"} ${l.agent ?? "?"} (${l.kind})` }))));
    }
    detail.replaceChildren(...parts);
  }

  let detailDuration = null; // the element showing an open span's duration (it ages)
  function openDuration(d) {
    return d.duration ?? (typeof d.start === "number" ? hubTime(offset) - d.start : null);
  }

  const updateHeight = () => root.style.setProperty("--cw-tr-height", `${model.get("height") || 420}px`);

  model.on("change:traces change:counts change:agents", updateList);
  model.on("change:status change:agent change:text", updateFilters);
  model.on("change:selected", markSelected);
  model.on("change:patch", onPatch);
  model.on("change:detail change:span", showDetail);
  model.on("change:height", updateHeight);
  updateHeight();
  updateList();
  state = tracker.current();
  const p0 = model.get("patch");
  if (p0 && typeof p0.now === "number") offset = clockOffset(p0.now);
  drawTrace();
  showDetail();
  const stopAging = every(1000, () => {
    ageList();
    const d = model.get("detail");
    if (detailDuration && d && d.end === null) setText(detailDuration, `${fmtDuration(openDuration(d))} so far`);
  });

  return () => {
    sendText.cancel();
    stopAging();
    if (raf !== null) cancelAnimationFrame(raf);
    raf = null;
    model.off("change:traces change:counts change:agents", updateList);
    model.off("change:status change:agent change:text", updateFilters);
    model.off("change:selected", markSelected);
    model.off("change:patch", onPatch);
    model.off("change:detail change:span", showDetail);
    model.off("change:height", updateHeight);
  };
}

// The trace state after each patch, keyed by the patch object (the model replaces it on every
// message, so old ones are dropped), shared by the model's views and kept up to date by
// `initialize` while none is shown: patches are deltas, and each must be applied exactly once to
// a state (its strings extend a table), whoever sees it first.
const states = new WeakMap();

/** A tracker of one listener's trace state: `current()` gives the state for the model's patch. */
export function traceTracker(model, store = states) {
  let last = null;
  return {
    current() {
      const patch = model.get("patch");
      if (!patch || typeof patch !== "object") return last ?? emptyTrace();
      let st = store.get(patch);
      if (st === undefined) {
        st = applyPatch(last ?? emptyTrace(), patch);
        store.set(patch, st);
      }
      last = st;
      return st;
    },
  };
}

function initialize({ model }) {
  const tracker = traceTracker(model);
  tracker.current();
  const apply = () => tracker.current();
  model.on("change:patch", apply);
  return () => model.off("change:patch", apply);
}

export default { initialize, render };
