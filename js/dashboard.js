// Dashboard header: title, agent counts and the hub's live health line.
// Model traits: title, health (hub.health() subset), counts (agent status counts), cards (the
// model id of an AgentCards: when set, the counts are read from that widget's frames, the same
// snapshot its cards render, with the same function, so header and cards never disagree), alerts
// (the alerts summary: the count of firing alerts, coloured by the worst unacknowledged severity).
import { agentsLine, countsLine } from "./lib/agents.js";
import { alertsBadge } from "./lib/alerts.js";
import { clockOffset, every, hubTime } from "./lib/clock.js";
import { h, setAttr, setText, style } from "./lib/dom.js";
import { fmtClock, fmtInt, fmtMillis } from "./lib/format.js";
import { THEME_CSS } from "./lib/theme.js";

const CSS = `
.cw.cw-dashboard-header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 16px; }
.cw-dash-title { font-weight: 700; font-size: calc(var(--cw-size) * 1.25); }
.cw-dash-health { display: flex; flex-wrap: wrap; gap: 2px 12px; font-size: var(--cw-size-small); font-variant-numeric: tabular-nums; }
.cw-dash-health [data-level="warn"] { color: var(--cw-warn); font-weight: 600; }
.cw-dash-health [data-level="err"] { color: var(--cw-err); font-weight: 600; }
.cw-dash-run[data-running="true"] .cw-dot { background: var(--cw-ok); }
.cw-dash-run[data-running="false"] .cw-dot { background: var(--cw-err); }
.cw-dash-alerts { font-size: var(--cw-size-small); }
.cw-dash-alerts[data-level="err"] { color: var(--cw-err); font-weight: 700; }
.cw-dash-alerts[data-level="warn"] { color: var(--cw-warn); font-weight: 700; }
.cw-dash-alerts[data-level="info"] { color: var(--cw-info); font-weight: 600; }
.cw-dash-alerts[data-level=""], .cw-dash-alerts[data-level="muted"] { color: var(--cw-fg2); }
.cw-dash-run[data-running="past"] .cw-dot { background: var(--cw-warn); }
.cw-dash-run[data-running="false"] .cw-dash-hint { color: var(--cw-err); }
`;

/** [data-running value, text] of the header's run state: live, past (a rebuilt hub) or stopped. */
export function runState(health) {
  const hl = health ?? {};
  const past = hl.past;
  if (past && typeof past === "object") {
    const n = Number(past.events) || 0;
    return ["past", `past ${fmtClock(past.since)}\u2013${fmtClock(past.until)} \u00b7 ${fmtInt(n)} event${n === 1 ? "" : "s"}`];
  }
  if (hl.running) return ["true", "live"];
  return ["false", "stopped \u2014 call hub.start() in a notebook cell"];
}

/** [label, value text, level] triples for the health line ("" = normal). */
export function healthParts(health) {
  const hl = health ?? {};
  const stale = Array.isArray(hl.stale_agents) ? hl.stale_agents : [];
  const lag = hl.loop_lag_ms ?? 0;
  const parts = [
    ["events/s", (hl.events_per_second ?? 0).toFixed(1), ""],
    ["dropped", fmtInt(hl.dropped ?? 0), hl.dropped ? "err" : ""],
    ["rejected", fmtInt(hl.rejected ?? 0), hl.rejected ? "warn" : ""],
    ["loop lag", fmtMillis(lag), lag > 250 ? "err" : lag > 50 ? "warn" : ""],
    ["stale agents", stale.length ? stale.join(", ") : "none", stale.length ? "warn" : ""],
  ];
  const history = hl.history;
  if (history && typeof history === "object") {
    const text = history.degraded ? `degraded${history.error ? `: ${history.error}` : ""}` : `${fmtInt(history.written ?? 0)} stored`;
    parts.push(["history", text, history.degraded ? "err" : ""]);
  }
  const collectors = Object.entries(hl.collectors ?? {});
  if (collectors.length) parts.push(["collectors", collectors.map(([name, problem]) => `${name}: ${problem}`).join("; "), "warn"]);
  for (const src of Array.isArray(hl.sources) ? hl.sources : []) {
    const up = Boolean(src.connected);
    const what = up ? src.state || "connected" : `${src.state || "disconnected"}${src.last_error ? `: ${src.last_error}` : ""}`;
    parts.push([src.stream || src.url || "source", what, up ? "" : "err"]);
  }
  // Contained faults: shown only once one has happened, so a healthy header stays short.
  const faults = [];
  const views = (hl.render_errors ?? 0) + (hl.handler_errors ?? 0);
  if (views) faults.push(`${fmtInt(views)} errors`);
  if (hl.render_interrupts) faults.push(`${fmtInt(hl.render_interrupts)} interrupts`);
  const restarts = Object.values(hl.task_restarts ?? {}).reduce((a, b) => a + (Number(b) || 0), 0);
  if (restarts) faults.push(`${fmtInt(restarts)} task restarts`);
  if (faults.length) parts.push(["contained", faults.join(", "), "warn"]);
  return parts;
}

function render({ model, el }) {
  const title = h("span", { class: "cw-dash-title" });
  const run = h("span", { class: "cw-dash-run cw-small" }, h("span", { class: "cw-dot" }), " ", h("span", { class: "cw-dash-hint" }));
  const counts = h("span", { class: "cw-muted cw-small", "data-role": "counts" });
  const alerts = h("span", { class: "cw-dash-alerts", "data-role": "alerts" }, h("span", { class: "cw-muted", text: "alerts " }), h("span"));
  const line = h("span", { class: "cw-dash-health", role: "status" });
  const root = h("div", { class: "cw cw-dashboard-header" }, title, run, counts, alerts, line);
  el.replaceChildren(style(THEME_CSS + CSS), root);

  // The linked AgentCards model (its `data` trait is the agents snapshot the cards render). Its
  // frames are aged exactly as the cards age them: offset taken when a frame arrives.
  let cards = null;
  let cardsOffset = 0;
  let unlinked = false;
  const onCardsData = () => {
    cardsOffset = clockOffset((cards.get("data") ?? {}).now);
    updateCounts();
  };
  const linkedId = model.get("cards");
  if (linkedId && model.widget_manager?.get_model) {
    model.widget_manager
      .get_model(linkedId)
      .then((m) => {
        if (unlinked || !m) return;
        cards = m;
        cards.on("change:data", onCardsData);
        onCardsData();
      })
      .catch(() => {}); // the cards are gone (closed): keep the header's own counts
  }

  function updateCounts() {
    if (cards) setText(counts, agentsLine(cards.get("data") ?? {}, hubTime(cardsOffset)));
    else setText(counts, countsLine(model.get("counts") ?? {}));
  }

  function update() {
    setText(title, model.get("title") || "codeur-widgets");
    const health = model.get("health") ?? {};
    const [running, text] = runState(health);
    setAttr(run, "data-running", running);
    setText(run.lastChild, text);
    updateCounts();
    const badge = alertsBadge(model.get("alerts"));
    setText(alerts.lastChild, badge.text);
    setAttr(alerts, "data-level", badge.level);
    const parts = healthParts(health);
    if (line.children.length !== parts.length) {
      line.replaceChildren(...parts.map(() => h("span", {}, h("span", { class: "cw-muted" }), " ", h("span"))));
    }
    parts.forEach(([label, value, level], i) => {
      const cell = line.children[i];
      setText(cell.firstChild, label);
      setText(cell.lastChild, value);
      setAttr(cell, "data-level", level);
    });
  }

  model.on("change:health", update);
  model.on("change:counts", update);
  model.on("change:title", update);
  model.on("change:alerts", update);
  update();
  const stop = every(1000, updateCounts); // stale agents are noticed by ageing, as on the cards
  return () => {
    stop();
    unlinked = true;
    if (cards) cards.off("change:data", onCardsData);
    model.off("change:health", update);
    model.off("change:counts", update);
    model.off("change:title", update);
    model.off("change:alerts", update);
  };
}

export default { render };
