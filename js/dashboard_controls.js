// Dashboard controls: time range (live windows, a past range from history) and admin actions.
// Model traits: range, view_paused, sample_interval, agents, history, simulator, status, options.
// The page only sends requests ({action, ...}); the kernel validates and carries them out, and
// answers in `status`. Destructive actions are confirmed here first.
import { confirmText, defaultPastRange, DESTRUCTIVE, fromLocalParts, rangeLabel, toLocalParts, windowLabel } from "./lib/controls.js";
import { h, setAttr, setOptions, setText, style } from "./lib/dom.js";
import { THEME_CSS } from "./lib/theme.js";

const CSS = `
.cw.cw-controls { display: flex; flex-direction: column; gap: 6px; }
.cw-controls .cw-toolbar { margin: 0; }
.cw-controls .cw-group { display: inline-flex; align-items: center; gap: 4px; flex-wrap: wrap; }
.cw-controls .cw-group-label { color: var(--cw-fg2); font-size: var(--cw-size-small); margin-right: 2px; }
.cw-controls input[type="date"], .cw-controls input.cw-time { font: inherit; font-size: var(--cw-size-small); color: var(--cw-fg);
  background: var(--jp-input-background, var(--cw-bg)); border: 1px solid var(--jp-input-border-color, var(--cw-border));
  border-radius: 3px; padding: 1px 4px; }
.cw-controls input.cw-time { width: 6.5em; font-variant-numeric: tabular-nums; }
.cw-controls input.cw-time:invalid { border-color: var(--cw-err); }
.cw-controls .cw-mode { font-weight: 600; }
.cw-controls .cw-mode[data-mode="past"] { color: var(--cw-warn); }
.cw-controls .cw-mode[data-paused="true"]::after { content: " · paused"; color: var(--cw-warn); }
.cw-controls .cw-confirm { display: flex; gap: 8px; align-items: center; padding: 4px 6px;
  border: 1px solid var(--cw-warn); border-radius: 4px; }
.cw-controls .cw-confirm[hidden] { display: none; }
.cw-controls button.cw-danger { color: var(--cw-err); }
.cw-controls .cw-status[data-level="err"] { color: var(--cw-err); }
.cw-controls .cw-status[data-level="ok"] { color: var(--cw-ok); }
.cw-controls [hidden] { display: none !important; }
`;

const AGENT_LABELS = { pause: "Pause", resume: "Resume", cancel: "Cancel task", restart: "Restart" };

function render({ model, el }) {
  const send = (action, extra = {}) => model.send({ action, ...extra });
  let pending = null; // the destructive request waiting for confirmation

  // -- time range ------------------------------------------------------------------------------
  const mode = h("span", { class: "cw-mode", role: "status", "data-role": "mode" });
  const windowButtons = h("span", { class: "cw-group" });
  // Each end is a date (with the browser's calendar) and a 24-hour time typed as HH:MM:SS: a
  // time input would follow the browser's locale (12-hour in en-US), unlike the rest.
  const end = (role, label) => {
    const date = h("input", { type: "date", "aria-label": `${label} date`, "data-role": `${role}-date` });
    const time = h("input", {
      type: "text",
      class: "cw-time",
      inputmode: "numeric",
      placeholder: "HH:MM:SS",
      pattern: "([01]?\\d|2[0-3]):[0-5]\\d(:[0-5]\\d)?",
      "aria-label": `${label} time (24-hour)`,
      "data-role": `${role}-time`,
    });
    return { date, time, value: () => fromLocalParts(date.value, time.value) };
  };
  const since = end("since", "range start");
  const until = end("until", "range end");
  const showPast = h("button", {
    text: "Show range",
    "data-action": "range-past",
    on: {
      click: () => {
        const a = since.value();
        const b = until.value();
        if (a === null || b === null) {
          showStatus({ text: "choose both ends of the range (date, and time as HH:MM:SS)", level: "err" });
          return;
        }
        send("range", { range: { mode: "past", since: a, until: b } });
      },
    },
  });
  const past = h("span", { class: "cw-group", "data-role": "past" }, h("span", { class: "cw-group-label", text: "past" }),
    since.date, since.time, "–", until.date, until.time, showPast);
  const noHistory = h("span", { class: "cw-muted cw-small", text: "past ranges need Hub(history=…)" });
  const backLive = h("button", { text: "Back to live", "data-action": "range-live", on: { click: () => send("range", { range: { mode: "live", window: 300 } }) } });
  const liveGroup = h("span", { class: "cw-group" }, h("span", { class: "cw-group-label", text: "live" }), windowButtons);
  const rangeRow = h(
    "div",
    { class: "cw-toolbar" },
    h("span", { class: "cw-title", text: "Time range" }),
    mode,
    liveGroup,
    past,
    noHistory,
    backLive,
  );

  // -- view, sampling, simulator, whole-hub actions ----------------------------------------------
  const pauseView = h("button", { "data-action": "pause-view", on: { click: () => send(model.get("view_paused") ? "resume_view" : "pause_view") } });
  const interval = h("select", { "aria-label": "sampling interval", "data-role": "interval" });
  interval.addEventListener("change", () => send("sample_interval", { value: Number(interval.value) }));
  const simToggle = h("button", {
    "data-action": "simulator-toggle",
    on: { click: () => ask(model.get("simulator")?.running ? "simulator_stop" : "simulator_start") },
  });
  const speed = h("select", { "aria-label": "simulator speed", "data-role": "speed" });
  speed.addEventListener("change", () => send("simulator_speed", { value: Number(speed.value) }));
  const sim = h("span", { class: "cw-group", "data-role": "simulator" }, h("span", { class: "cw-group-label", text: "simulator" }), simToggle, speed);
  const reset = h("button", { text: "Reset counters", class: "cw-danger", "data-action": "reset-counters", on: { click: () => ask("reset_counters") } });
  const download = h("button", { text: "Download snapshot", "data-action": "snapshot", on: { click: () => send("snapshot") } });
  const viewRow = h(
    "div",
    { class: "cw-toolbar" },
    h("span", { class: "cw-group" }, h("span", { class: "cw-group-label", text: "view" }), pauseView),
    h("span", { class: "cw-group" }, h("span", { class: "cw-group-label", text: "sampling" }), interval),
    sim,
    reset,
    download,
  );

  // -- per agent ----------------------------------------------------------------------------------
  const agentSelect = h("select", { "aria-label": "agent", "data-role": "agent" });
  const agentButtons = h("span", { class: "cw-group" });
  const offline = h("button", { text: "Mark offline", class: "cw-danger", "data-action": "mark_offline", on: { click: () => ask("mark_offline") } });
  const forget = h("button", { text: "Forget", class: "cw-danger", "data-action": "forget", on: { click: () => ask("forget") } });
  const agentRow = h("div", { class: "cw-toolbar" }, h("span", { class: "cw-group-label", text: "agent" }), agentSelect, agentButtons, offline, forget);

  // -- confirmation and status --------------------------------------------------------------------
  const question = h("span", { "data-role": "question" });
  const yes = h("button", { text: "Confirm", class: "cw-danger", "data-action": "confirm", on: { click: () => confirm(true) } });
  const no = h("button", { text: "Cancel", "data-action": "dismiss", on: { click: () => confirm(false) } });
  const confirmBar = h("div", { class: "cw-confirm", role: "alertdialog", hidden: "" }, question, yes, no);
  const status = h("div", { class: "cw-status cw-small", role: "status", "data-role": "status" });

  const root = h("div", { class: "cw cw-controls" }, rangeRow, viewRow, agentRow, confirmBar, status);
  el.replaceChildren(style(THEME_CSS + CSS), root);

  function agentRequest(action) {
    const agent = agentSelect.value;
    if (action === "reset_counters" || action.startsWith("simulator_")) return { action };
    if (AGENT_LABELS[action]) return { action: "agent_command", agent, command: action };
    return { action, agent };
  }

  function ask(action) {
    const request = agentRequest(action);
    if ("agent" in request && !request.agent) {
      showStatus({ text: "choose an agent first", level: "err" });
      return;
    }
    if (!DESTRUCTIVE.has(action)) {
      model.send(request);
      return;
    }
    pending = request;
    setText(question, confirmText(action, request.agent ?? ""));
    confirmBar.hidden = false;
    yes.focus();
  }

  function confirm(ok) {
    const request = pending;
    pending = null;
    confirmBar.hidden = true;
    if (ok && request) model.send(request);
    else showStatus({ text: "nothing done", level: "" });
  }

  function showStatus(s) {
    setText(status, s?.text ?? "");
    setAttr(status, "data-level", s?.level ?? "");
  }

  function updateOptions() {
    const options = model.get("options") ?? {};
    const windows = options.windows ?? [300, 900, 3600];
    if (windowButtons.children.length !== windows.length) {
      windowButtons.replaceChildren(
        ...windows.map((w) =>
          h("button", { text: windowLabel(w), "data-window": w, on: { click: () => send("range", { range: { mode: "live", window: w } }) } }),
        ),
      );
    }
    const commands = options.commands ?? Object.keys(AGENT_LABELS);
    if (agentButtons.children.length !== commands.length) {
      agentButtons.replaceChildren(
        ...commands.map((c) =>
          h("button", { text: AGENT_LABELS[c] ?? c, "data-action": `agent-${c}`, class: DESTRUCTIVE.has(c) ? "cw-danger" : "", on: { click: () => ask(c) } }),
        ),
      );
    }
    setOptions(interval, (options.sample_intervals ?? [1]).map((s) => [String(s), `${s} s`]), String(model.get("sample_interval")));
    setOptions(speed, (options.speeds ?? [1]).map((s) => [String(s), `×${s}`]), String(model.get("simulator")?.time_scale ?? ""));
  }

  function update() {
    const range = model.get("range") ?? {};
    const paused = Boolean(model.get("view_paused"));
    setText(mode, rangeLabel(range));
    setAttr(mode, "data-mode", range.mode ?? "live");
    setAttr(mode, "data-paused", paused ? "true" : "false");
    for (const b of windowButtons.children) {
      setAttr(b, "aria-pressed", range.mode === "live" && Number(b.dataset.window) === range.window ? "true" : "false");
    }
    // A hub rebuilt from history (Dashboard(past)) has one range: nothing live to go back to.
    const fixed = Boolean(range.fixed);
    backLive.hidden = range.mode !== "past" || fixed;
    liveGroup.hidden = fixed;

    const history = model.get("history") ?? {};
    past.hidden = !history.enabled || fixed;
    noHistory.hidden = Boolean(history.enabled) || fixed;
    const editing = [since.date, since.time, until.date, until.time].includes(document.activeElement);
    if (history.enabled && range.mode !== "past" && !editing) {
      const d = defaultPastRange(history);
      for (const [which, ts] of [[since, d?.since], [until, d?.until]]) {
        if (!d || which.date.dataset.touched || which.time.dataset.touched) continue;
        const parts = toLocalParts(ts);
        which.date.value = parts.date;
        which.time.value = parts.time;
      }
    }
    setText(pauseView, paused ? "Resume view" : "Pause view");
    setAttr(pauseView, "aria-pressed", paused ? "true" : "false");

    const s = model.get("simulator") ?? {};
    sim.hidden = !s.attached;
    setText(simToggle, s.running ? "Stop" : "Start");

    const names = model.get("agents") ?? [];
    const current = agentSelect.value;
    setOptions(agentSelect, [["", "— choose —"], ...names.map((n) => [n, n])], names.includes(current) ? current : "");
    updateOptions();
    showStatus(model.get("status"));
  }

  // Once a person edits a range end, it is theirs: stop refreshing it from history.
  for (const input of [since.date, since.time, until.date, until.time]) {
    input.addEventListener("input", () => (input.dataset.touched = "1"));
  }

  function onMessage(msg) {
    if (!msg || msg.type !== "snapshot" || typeof msg.json !== "string") return;
    const blob = new Blob([msg.json], { type: "application/json" });
    const url = URL.createObjectURL(blob);
    const a = h("a", { href: url, download: `codeur-snapshot-${new Date().toISOString().replace(/[:.]/g, "-")}.json` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }

  const traits = ["range", "view_paused", "sample_interval", "agents", "history", "simulator", "status", "options"];
  for (const t of traits) model.on(`change:${t}`, update);
  model.on("msg:custom", onMessage);
  update();
  return () => {
    for (const t of traits) model.off(`change:${t}`, update);
    model.off("msg:custom", onMessage);
  };
}

export default { render };
