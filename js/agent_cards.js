// AgentCards: one card per agent (status, current task, heartbeat, counters, tokens, last error).
// Model traits: data (the `agents` snapshot), status_filter, role_filter, selected.
// Elapsed times and heartbeat ages tick here every second from the frame's `now`; Python only
// sends a frame when the registry changed.
import {
  STATUSES,
  agentsLine,
  heartbeatAge,
  isStale,
  matchesFilter,
  noteText,
  rolesOf,
  statusLabel,
  taskElapsed,
} from "./lib/agents.js";
import { clockOffset, every, hubTime } from "./lib/clock.js";
import { h, setAttr, setOptions, setText, style } from "./lib/dom.js";
import { fmtAge, fmtCost, fmtCount, fmtDuration, fmtGauge, ellipsis } from "./lib/format.js";
import { THEME_CSS } from "./lib/theme.js";

const CSS = `
.cw-cards-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 8px; }
.cw-card { border: 1px solid var(--cw-border); border-left: 4px solid var(--cw-muted); border-radius: 5px;
  padding: 6px 8px; background: var(--cw-bg2); cursor: pointer; min-width: 0; }
.cw-card[data-selected="true"] { outline: 2px solid var(--cw-accent); outline-offset: 1px; }
.cw-card-head { display: flex; align-items: center; gap: 6px; min-width: 0; }
.cw-card-name { font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; flex: 1 1 auto; }
.cw-badge { font-size: var(--cw-size-small); padding: 0 6px; border-radius: 8px; border: 1px solid currentColor; white-space: nowrap; }
.cw-card-sub, .cw-card-row { font-size: var(--cw-size-small); color: var(--cw-fg2); overflow: hidden;
  text-overflow: ellipsis; white-space: nowrap; }
/* Rows of numbers wrap between their parts instead of cutting a number off. */
.cw-card-row.cw-parts { display: flex; flex-wrap: wrap; gap: 0 8px; white-space: normal; }
.cw-card-row.cw-parts > span { white-space: nowrap; }
.cw-card-note { font-size: var(--cw-size-small); color: var(--cw-warn); font-weight: 600; margin-top: 2px; }
.cw-card[data-paused="true"] { border-left-color: var(--cw-warn); border-left-style: double; }
.cw-st-paused { color: var(--cw-warn); } .cw-dot.cw-st-paused { background: var(--cw-warn); }
/* The task's name may be cut (its tooltip has it whole); its elapsed time never is. */
.cw-card-task { margin-top: 3px; display: flex; gap: 4px; white-space: nowrap; min-width: 0; }
.cw-card-task > .cw-task-name { overflow: hidden; text-overflow: ellipsis; flex: 0 1 auto; min-width: 0; }
.cw-card-task > .cw-task-time { flex: none; font-variant-numeric: tabular-nums; }
.cw-card-err { font-size: var(--cw-size-small); color: var(--cw-err); overflow: hidden; text-overflow: ellipsis;
  white-space: nowrap; margin-top: 2px; }
.cw-card-stale { font-weight: 600; color: var(--cw-warn); }
.cw-card[data-status="idle"] { border-left-color: var(--cw-info); }
.cw-card[data-status="active"] { border-left-color: var(--cw-ok); }
.cw-card[data-status="error"] { border-left-color: var(--cw-err); }
.cw-card[data-status="initializing"] { border-left-color: var(--cw-accent); }
.cw-card[data-status="offline"] { border-left-color: var(--cw-muted); opacity: 0.75; }
.cw-card[data-stale="true"] { border-left-style: dashed; border-left-color: var(--cw-warn); }
.cw-st-idle { color: var(--cw-info); } .cw-st-active { color: var(--cw-ok); } .cw-st-error { color: var(--cw-err); }
.cw-st-initializing { color: var(--cw-accent); } .cw-st-offline { color: var(--cw-fg3); } .cw-st-stale { color: var(--cw-warn); }
.cw-dot.cw-st-idle { background: var(--cw-info); } .cw-dot.cw-st-active { background: var(--cw-ok); }
.cw-dot.cw-st-error { background: var(--cw-err); } .cw-dot.cw-st-initializing { background: var(--cw-accent); }
.cw-dot.cw-st-offline { background: var(--cw-fg3); } .cw-dot.cw-st-stale { background: var(--cw-warn); }
.cw-empty { color: var(--cw-fg2); padding: 12px 4px; }
`;

/** The DOM of one card; `update` refreshes it from an agent dict (only changed text is touched). */
function makeCard(onClick) {
  const dot = h("span", { class: "cw-dot" });
  const name = h("span", { class: "cw-card-name" });
  const badge = h("span", { class: "cw-badge" });
  const sub = h("div", { class: "cw-card-sub" });
  const taskName = h("span", { class: "cw-task-name" });
  const taskTime = h("span", { class: "cw-task-time" });
  const task = h("div", { class: "cw-card-task" }, taskName, taskTime);
  const beat = h("div", { class: "cw-card-row" });
  const stats = h("div", { class: "cw-card-row cw-parts cw-num" });
  const tokens = h("div", { class: "cw-card-row cw-parts cw-num" });
  const metrics = h("div", { class: "cw-card-row cw-parts cw-num" });
  const note = h("div", { class: "cw-card-note", role: "status" });
  const err = h("div", { class: "cw-card-err" });
  const root = h(
    "div",
    {
      class: "cw-card",
      role: "listitem",
      tabindex: "0",
      on: {
        click: onClick,
        keydown: (e) => {
          if (e.key === "Enter" || e.key === " ") {
            e.preventDefault();
            onClick();
          }
        },
      },
    },
    h("div", { class: "cw-card-head" }, dot, name, badge),
    sub,
    task,
    beat,
    stats,
    tokens,
    metrics,
    note,
    err,
  );
  return { root, dot, name, badge, sub, task, taskName, taskTime, beat, stats, tokens, metrics, note, err, errText: "", agent: null };
}

/** Fills `row` with one span per part (reusing spans), so parts wrap but are never cut. */
function setParts(row, parts) {
  while (row.children.length > parts.length) row.lastChild.remove();
  while (row.children.length < parts.length) row.append(h("span"));
  parts.forEach((text, i) => setText(row.children[i], text));
  setAttr(row, "title", parts.join(" \u00b7 "));
}

function fillCard(card, a) {
  card.agent = a;
  setText(card.name, a.name);
  setAttr(card.name, "title", a.name);
  setAttr(card.root, "data-status", a.status ?? "");
  const sub = [a.role, a.model].filter((x) => x).join(" \u00b7 ") || "\u2013";
  setText(card.sub, sub);
  setAttr(card.sub, "title", sub); // an attribute value: agent text never becomes markup
  setParts(card.stats, [
    `${fmtCount(a.tasks_completed ?? 0)} done`,
    `${fmtCount(a.tasks_failed ?? 0)} failed`,
    `mean ${fmtDuration(a.duration_mean)}`,
    `p95 ${fmtDuration(a.duration_p95)}`,
  ]);
  const prompt = a.prompt_tokens ?? 0;
  const completion = a.completion_tokens ?? 0;
  // LLM calls of a model without a known price add tokens but no cost: said, never guessed.
  const unpriced = a.cost_unknown ? ` + ${fmtCount(a.cost_unknown)} unpriced` : "";
  setParts(card.tokens, [`tokens ${fmtCount(prompt)} in / ${fmtCount(completion)} out`, `${fmtCost(a.cost_usd ?? 0)}${unpriced}`]);
  const metricEntries = Object.entries(a.metrics ?? {}).slice(0, 6);
  setParts(
    card.metrics,
    metricEntries.map(([k, v]) => `${k} ${typeof v === "number" ? fmtGauge(v) : String(v)}`),
  );
  card.metrics.hidden = metricEntries.length === 0;
  const e = a.last_error;
  if (e && (e.type || e.message)) {
    const text = [e.type, e.message].filter((x) => x).join(": ");
    card.errText = ellipsis(text, 160);
    setAttr(card.err, "title", text);
    card.err.hidden = false;
  } else {
    card.err.hidden = true;
  }
}

/** The parts that age: task elapsed, heartbeat age, stale marking. Runs every second. */
function ageCard(card, now, staleAfter) {
  const a = card.agent;
  if (!a) return;
  const stale = isStale(a, now, staleAfter);
  const paused = Boolean(a.paused);
  const shown = stale ? "stale" : paused ? "paused" : a.status;
  setAttr(card.root, "data-stale", stale ? "true" : "false");
  setAttr(card.root, "data-paused", paused ? "true" : "false");
  setAttr(card.dot, "class", `cw-dot cw-st-${shown}`);
  setAttr(card.badge, "class", `cw-badge cw-st-${shown}`);
  let label = paused ? "paused" : statusLabel(a.status);
  if (stale) label = `stale \u00b7 ${label}`;
  setText(card.badge, label);
  const elapsed = taskElapsed(a, now);
  if (elapsed !== null) {
    const job = a.job_id ? ` [${a.job_id}]` : "";
    const mark = paused ? "\u2016" : "\u25b6";
    const held = paused ? " (paused)" : "";
    setText(card.taskName, `${mark} ${ellipsis(a.task, 90)}${job}`);
    setText(card.taskTime, `\u00b7 ${fmtDuration(elapsed)}${held}`);
    setAttr(card.task, "title", `${a.task}${job}`);
  } else {
    setText(card.taskName, paused ? "\u2016 paused, no task" : "no task");
    setText(card.taskTime, "");
    setAttr(card.task, "title", "");
  }
  const note = noteText(a, now);
  setText(card.note, note);
  card.note.hidden = !note;
  const age = heartbeatAge(a, now);
  setText(card.beat, age === null ? "no heartbeat yet" : `heartbeat ${fmtAge(age)}`);
  card.beat.classList.toggle("cw-card-stale", stale);
  const e = a.last_error;
  if (e && !card.err.hidden) {
    const when = typeof e.ts === "number" ? ` (${fmtAge(now - e.ts)})` : "";
    setText(card.err, `${card.errText}${when}`);
  }
}

function render({ model, el }) {
  const statusSel = h("select", { "aria-label": "filter by status" });
  const roleSel = h("select", { "aria-label": "filter by role" });
  const counts = h("span", { class: "cw-muted cw-small" });
  const grid = h("div", { class: "cw-cards-grid", role: "list" });
  const empty = h("div", { class: "cw-empty", text: "No agents yet." });
  const root = h(
    "div",
    { class: "cw cw-agent-cards" },
    h("div", { class: "cw-toolbar" }, h("span", { class: "cw-title", text: "Agents" }), counts,
      h("span", { class: "cw-spacer" }), statusSel, roleSel),
    grid,
    empty,
  );
  el.replaceChildren(style(THEME_CSS + CSS), root);

  const cards = new Map(); // agent name -> card
  let offset = 0;

  statusSel.addEventListener("change", () => {
    model.set("status_filter", statusSel.value);
    model.save_changes();
  });
  roleSel.addEventListener("change", () => {
    model.set("role_filter", roleSel.value);
    model.save_changes();
  });

  const select = (name) => {
    model.set("selected", model.get("selected") === name ? "" : name);
    model.save_changes();
  };

  function tick() {
    const data = model.get("data") ?? {};
    const now = hubTime(offset);
    const staleAfter = data.stale_after ?? 0;
    const filter = { status: model.get("status_filter") ?? "", role: model.get("role_filter") ?? "" };
    let visible = 0;
    for (const card of cards.values()) {
      ageCard(card, now, staleAfter);
      const show = matchesFilter(card.agent, filter, now, staleAfter);
      card.root.hidden = !show;
      if (show) visible += 1;
    }
    // The same line, from the same frame, as the dashboard header (lib/agents.js agentsLine).
    setText(counts, agentsLine(data, now));
    empty.hidden = visible > 0;
    setText(empty, cards.size ? "No agent matches the filter." : "No agents yet.");
  }

  function update() {
    const data = model.get("data") ?? {};
    offset = clockOffset(data.now);
    const agents = data.agents ?? [];
    const seen = new Set();
    let i = 0;
    for (const a of agents) {
      const name = String(a.name);
      seen.add(name);
      let card = cards.get(name);
      if (!card) {
        card = makeCard(() => select(name));
        cards.set(name, card);
      }
      fillCard(card, a);
      // Keep the snapshot's stable order; move a node only when it is out of place.
      if (grid.children[i] !== card.root) grid.insertBefore(card.root, grid.children[i] ?? null);
      i += 1;
    }
    for (const [name, card] of cards) {
      if (!seen.has(name)) {
        card.root.remove();
        cards.delete(name);
      }
    }
    const statuses = [["", "all statuses"], ...STATUSES.map((s) => [s, statusLabel(s)]), ["stale", "stale"]];
    setOptions(statusSel, statuses, model.get("status_filter") ?? "");
    const roles = rolesOf(agents);
    const role = model.get("role_filter") ?? "";
    if (role && !roles.includes(role)) roles.push(role);
    setOptions(roleSel, [["", "all roles"], ...roles.map((r) => [r, r])], role);
    updateSelected();
    tick();
  }

  function updateSelected() {
    const sel = model.get("selected") ?? "";
    for (const [name, card] of cards) setAttr(card.root, "data-selected", name === sel ? "true" : "false");
  }

  model.on("change:data", update);
  model.on("change:status_filter", update);
  model.on("change:role_filter", update);
  model.on("change:selected", updateSelected);
  update();
  const stop = every(1000, tick);

  return () => {
    stop();
    model.off("change:data", update);
    model.off("change:status_filter", update);
    model.off("change:role_filter", update);
    model.off("change:selected", updateSelected);
  };
}

export default { render };
