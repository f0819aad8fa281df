// AlertsPanel: firing alerts (acknowledge), recently resolved ones, the rules and a form that adds
// a threshold rule. Model traits: data (the `alerts` snapshot), options, status, live.
// The page only sends requests ({action, ...}); the kernel checks and carries them out and answers
// in `status`. Ages advance here every second from the frame's `now`. Text goes in as textContent.
import { alertsBadge, formRequest, fmtMetric, fmtWindow, ruleState, severityLevel, sortFiring, thresholdText, unitOf } from "./lib/alerts.js";
import { clockOffset, every, hubTime } from "./lib/clock.js";
import { h, setAttr, setOptions, setText, style } from "./lib/dom.js";
import { fmtAge, fmtClock, fmtDuration } from "./lib/format.js";
import { THEME_CSS } from "./lib/theme.js";

const CSS = `
.cw-alerts .cw-al-section { margin-top: 8px; }
.cw-alerts .cw-al-head { font-size: var(--cw-size-small); color: var(--cw-fg2); font-weight: 600; margin-bottom: 2px; }
.cw-alerts table { border-collapse: collapse; width: 100%; font-size: var(--cw-size-small); font-variant-numeric: tabular-nums; }
.cw-alerts td, .cw-alerts th { text-align: left; padding: 2px 6px; border-bottom: 1px solid var(--cw-border); vertical-align: top; }
.cw-alerts th { color: var(--cw-fg2); font-weight: 500; }
.cw-alerts .cw-al-name { font-weight: 600; }
.cw-alerts tr[data-acked="true"] { opacity: 0.7; }
.cw-alerts .cw-dot[data-level="err"] { background: var(--cw-err); }
.cw-alerts .cw-dot[data-level="warn"] { background: var(--cw-warn); }
.cw-alerts .cw-dot[data-level="info"] { background: var(--cw-info); }
.cw-alerts [data-level="err"] .cw-al-value, .cw-alerts .cw-al-state[data-level="err"] { color: var(--cw-err); }
.cw-alerts [data-level="warn"] .cw-al-value, .cw-alerts .cw-al-state[data-level="warn"] { color: var(--cw-warn); }
.cw-alerts .cw-al-state[data-level="ok"] { color: var(--cw-ok); }
.cw-alerts .cw-al-state[data-level="muted"] { color: var(--cw-fg3); }
.cw-alerts .cw-al-badge[data-level="err"] { color: var(--cw-err); font-weight: 600; }
.cw-alerts .cw-al-badge[data-level="warn"] { color: var(--cw-warn); font-weight: 600; }
.cw-alerts .cw-al-badge[data-level="info"] { color: var(--cw-info); font-weight: 600; }
.cw-alerts .cw-al-empty { color: var(--cw-fg2); padding: 4px 6px; font-size: var(--cw-size-small); }
.cw-alerts .cw-al-resolved td { color: var(--cw-fg2); }
.cw-alerts details > summary { cursor: pointer; font-size: var(--cw-size-small); color: var(--cw-fg2); font-weight: 600; }
.cw-alerts form { display: flex; flex-wrap: wrap; gap: 4px 8px; align-items: center; margin-top: 4px; }
.cw-alerts form label { display: inline-flex; gap: 4px; align-items: center; font-size: var(--cw-size-small); color: var(--cw-fg2); }
.cw-alerts form input { width: 7em; }
.cw-alerts form input[data-field="name"], .cw-alerts form input[data-field="scope"] { width: 11em; }
.cw-alerts .cw-status { margin-top: 4px; font-size: var(--cw-size-small); }
.cw-alerts .cw-status[data-level="err"] { color: var(--cw-err); }
.cw-alerts .cw-status[data-level="ok"] { color: var(--cw-ok); }
.cw-alerts [hidden] { display: none !important; }
`;

const cell = (text, cls) => h("td", { class: cls ?? null, text });

function render({ model, el }) {
  const send = (action, extra = {}) => model.send({ action, ...extra });
  let offset = 0;
  const ages = []; // [element, ts, suffix] refreshed every second

  const badge = h("span", { class: "cw-al-badge", "data-role": "badge", role: "status" });
  const pastNote = h("span", { class: "cw-muted cw-small", text: "past range: read only", hidden: "" });
  const head = h("div", { class: "cw-toolbar" }, h("span", { class: "cw-title", text: "Alerts" }), badge, h("span", { class: "cw-spacer" }), pastNote);

  const firingBody = h("tbody");
  const firingEmpty = h("div", { class: "cw-al-empty", text: "nothing is firing" });
  const firingTable = h(
    "table",
    { "data-role": "firing" },
    h("thead", {}, h("tr", {}, ...["", "alert", "scope", "value", "now", "threshold", "since", "last seen", ""].map((t) => h("th", { text: t })))),
    firingBody,
  );
  const firing = h("div", { class: "cw-al-section" }, firingTable, firingEmpty);

  const resolvedBody = h("tbody");
  const resolvedTable = h(
    "table",
    { "data-role": "resolved", class: "cw-al-resolved" },
    h("thead", {}, h("tr", {}, ...["alert", "scope", "value", "threshold", "resolved", "lasted", "why"].map((t) => h("th", { text: t })))),
    resolvedBody,
  );
  const resolved = h("div", { class: "cw-al-section" }, h("div", { class: "cw-al-head", text: "Recently resolved" }), resolvedTable);

  const rulesBody = h("tbody");
  const rulesTable = h(
    "table",
    { "data-role": "rules" },
    h("thead", {}, h("tr", {}, ...["rule", "condition", "scope", "severity", "actions", "state", ""].map((t) => h("th", { text: t })))),
    rulesBody,
  );
  const rulesSummary = h("summary", { text: "Rules" });
  const rules = h("details", { class: "cw-al-section", "data-role": "rules-box" }, rulesSummary, rulesTable);

  // -- the form ---------------------------------------------------------------------------------
  const fields = {
    name: h("input", { type: "text", "data-field": "name", placeholder: "coder budget", "aria-label": "rule name" }),
    metric: h("select", { "data-field": "metric", "aria-label": "metric" }),
    scope: h("input", { type: "text", "data-field": "scope", value: "hub", "aria-label": "scope", placeholder: "hub, agent:coding_agent, agent:*" }),
    op: h("select", { "data-field": "op", "aria-label": "above or below" }),
    threshold: h("input", { type: "text", "data-field": "threshold", inputmode: "decimal", "aria-label": "threshold", placeholder: "5" }),
    window: h("input", { type: "text", "data-field": "window", inputmode: "decimal", "aria-label": "window in seconds" }),
    for: h("input", { type: "text", "data-field": "for", inputmode: "decimal", "aria-label": "for seconds", placeholder: "0" }),
    severity: h("select", { "data-field": "severity", "aria-label": "severity" }),
    action: h("select", { "data-field": "action", "aria-label": "action" }),
  };
  setOptions(fields.op, [["above", "above"], ["below", "below"]], "above");
  const metricHelp = h("span", { class: "cw-muted cw-small", "data-role": "metric-help" });
  const add = h("button", { type: "submit", text: "Add rule", "data-action": "add-rule" });
  const label = (text, input) => h("label", {}, text, input);
  const form = h(
    "form",
    { "data-role": "add-rule" },
    label("name", fields.name),
    label("metric", fields.metric),
    label("scope", fields.scope),
    fields.op,
    label("threshold", fields.threshold),
    label("window (s)", fields.window),
    label("for (s)", fields.for),
    label("severity", fields.severity),
    label("then", fields.action),
    add,
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const values = Object.fromEntries(Object.entries(fields).map(([k, input]) => [k, input.value]));
    send("add_rule", { rule: formRequest(values) });
  });
  const formBox = h("div", { class: "cw-al-section" }, h("div", { class: "cw-al-head", text: "Add a threshold rule" }), form, metricHelp);
  const status = h("div", { class: "cw-status", role: "status", "data-role": "status" });

  const root = h("div", { class: "cw cw-alerts" }, head, firing, resolved, rules, formBox, status);
  el.replaceChildren(style(THEME_CSS + CSS), root);

  function metrics() {
    return model.get("options")?.metrics ?? [];
  }

  function showMetricHelp() {
    const m = metrics().find((x) => x.name === fields.metric.value);
    if (!m) {
      setText(metricHelp, "");
      return;
    }
    const win = m.window === "none" ? "no window" : m.window === "required" ? `window default ${fmtWindow(m.default_window)}` : "window optional (blank: since the start)";
    setText(metricHelp, `${m.name} (${m.unit || "value"}): ${m.help}. Scopes: ${m.scopes.join(", ")}; ${win}.`);
    setAttr(fields.window, "placeholder", m.window === "required" ? String(m.default_window) : m.window === "none" ? "none" : "all");
  }
  fields.metric.addEventListener("change", showMetricHelp);

  function updateOptions() {
    const o = model.get("options") ?? {};
    setOptions(fields.metric, metrics().map((m) => [m.name, m.name]), fields.metric.value || "cost_usd");
    setOptions(fields.severity, (o.severities ?? ["warning"]).map((s) => [s, s]), fields.severity.value || "warning");
    const labels = { show: "show only", log: "log a warning", pause: "pause the agent", cancel: "cancel its task", stop_simulator: "stop the simulator" };
    setOptions(fields.action, (o.actions ?? ["show"]).map((a) => [a, labels[a] ?? a]), fields.action.value || "show");
    showMetricHelp();
  }

  function refreshAges() {
    const now = hubTime(offset);
    for (const [node, ts, suffix] of ages) setText(node, typeof ts === "number" ? (suffix ? fmtClock(ts) : fmtAge(now - ts)) : "");
  }

  function firingRow(a) {
    const level = severityLevel(a.severity);
    const unit = unitOf(metrics(), a.metric);
    const since = cell("");
    const seen = cell("");
    ages.push([since, a.since ?? a.fired_at, false], [seen, a.last_seen, false]);
    const action = a.acked
      ? cell(`acknowledged${a.acked_by ? ` by ${a.acked_by}` : ""}`, "cw-muted")
      : h("td", {}, h("button", { text: "Acknowledge", "data-action": "ack", on: { click: () => send("ack", { id: a.id }) } }));
    const row = h(
      "tr",
      { "data-alert": a.id, "data-level": level, "data-acked": a.acked ? "true" : "false", title: a.message ?? "" },
      h("td", {}, h("span", { class: "cw-dot", "data-level": level, title: a.severity ?? "" })),
      cell(a.rule, "cw-al-name"),
      cell(a.scope),
      cell(fmtMetric(a.value, unit), "cw-al-value"),
      cell(fmtMetric(a.current, unit)),
      cell(thresholdText(a, unit)),
      since,
      seen,
      action,
    );
    return row;
  }

  function resolvedRow(a) {
    const unit = unitOf(metrics(), a.metric);
    const at = cell("");
    ages.push([at, a.resolved_at, true]);
    const lasted = typeof a.resolved_at === "number" && typeof a.fired_at === "number" ? fmtDuration(a.resolved_at - a.fired_at) : "";
    return h("tr", { "data-alert": a.id }, cell(a.rule, "cw-al-name"), cell(a.scope), cell(fmtMetric(a.value, unit)), cell(thresholdText(a, unit)), at, cell(lasted), cell(a.reason ?? ""));
  }

  function ruleRow(r) {
    const unit = unitOf(metrics(), r.metric);
    const [text, level] = ruleState(r);
    const buttons = h("td");
    if (r.broken || !r.enabled) buttons.append(h("button", { text: "Enable", "data-action": "enable-rule", on: { click: () => send("enable_rule", { name: r.name }) } }));
    buttons.append(h("button", { text: "Remove", "data-action": "remove-rule", on: { click: () => send("remove_rule", { name: r.name }) } }));
    const extra = r.last_action_error ? ` · action failed: ${r.last_action_error}` : "";
    return h(
      "tr",
      { "data-rule": r.name, title: r.description ?? "" },
      cell(r.name, "cw-al-name"),
      cell(`${r.metric} ${thresholdText(r, unit)}${r.for ? ` for ${fmtWindow(r.for)}` : ""}`),
      cell(r.scope),
      cell(r.severity),
      cell([...(r.actions ?? []), ...(r.webhook ? [`webhook ${r.webhook}`] : [])].join(", ") || "show"),
      h("td", { class: "cw-al-state", "data-level": level, text: text + extra }),
      buttons,
    );
  }

  function update() {
    const d = model.get("data") ?? {};
    offset = clockOffset(d.now);
    ages.length = 0;
    const b = alertsBadge(d.summary);
    setText(badge, b.text);
    setAttr(badge, "data-level", b.level);
    const live = model.get("live") !== false;
    pastNote.hidden = live;
    formBox.hidden = !live;

    const list = sortFiring(d.firing);
    firingBody.replaceChildren(...list.map(firingRow));
    firingTable.hidden = list.length === 0;
    firingEmpty.hidden = list.length !== 0;
    const done = d.resolved ?? [];
    resolvedBody.replaceChildren(...done.map(resolvedRow));
    resolved.hidden = done.length === 0;
    const rs = d.rules ?? [];
    rulesBody.replaceChildren(...rs.map(ruleRow));
    const broken = rs.filter((r) => r.broken).length;
    setText(rulesSummary, `Rules (${rs.length}${broken ? `, ${broken} broken` : ""})`);
    if (broken) rules.open = true;
    refreshAges();
  }

  function showStatus() {
    const s = model.get("status") ?? {};
    setText(status, s.text ?? "");
    setAttr(status, "data-level", s.level ?? "");
  }

  model.on("change:data", update);
  model.on("change:live", update);
  model.on("change:options", updateOptions);
  model.on("change:status", showStatus);
  updateOptions();
  update();
  showStatus();
  const stop = every(1000, refreshAges);
  return () => {
    stop();
    model.off("change:data", update);
    model.off("change:live", update);
    model.off("change:options", updateOptions);
    model.off("change:status", showStatus);
  };
}

export default { render };
