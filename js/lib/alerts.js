// Pure helpers of the alerts panel and the header's alert count (no DOM), tested with node --test.
import { DASH, fmtCost, fmtCount, fmtDuration, fmtGauge, fmtMillis, fmtPercent } from "./format.js";

export const SEVERITIES = ["info", "warning", "critical"];

/** The colour level of a severity: critical -> err, warning -> warn, info -> info. */
export function severityLevel(severity) {
  return { critical: "err", warning: "warn", info: "info" }[severity] ?? "";
}

/** The header's badge from the alerts summary {firing, unacked, severity}: {text, level}. */
export function alertsBadge(summary) {
  const s = summary ?? {};
  const firing = Number(s.firing) || 0;
  const unacked = Number(s.unacked) || 0;
  if (!firing) return { text: "none", level: "" };
  const acked = firing - unacked;
  const text = `${firing} firing${acked ? ` (${acked} acknowledged)` : ""}`;
  return { text, level: unacked ? severityLevel(s.severity) : "muted" };
}

/** A metric value in its unit: $5.02, 12%, 340 ms, 1m 05s, 12.3k. */
export function fmtMetric(value, unit) {
  if (typeof value !== "number" || !Number.isFinite(value)) return DASH;
  switch (unit) {
    case "USD":
      return fmtCost(value);
    case "ratio":
      return fmtPercent(value * 100);
    case "ms":
      return fmtMillis(value);
    case "s":
      return fmtDuration(value);
    case "tokens":
    case "tokens/min":
      return fmtCount(value);
    default:
      return fmtGauge(value);
  }
}

/** 3600 -> "1 h", 300 -> "5 min", 45 -> "45 s"; "" for none. */
export function fmtWindow(seconds) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds)) return "";
  if (seconds >= 3600 && seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds >= 60 && seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

/** "> $5.00 over 1 h": an alert's (or rule's) threshold in words, in the metric's unit. */
export function thresholdText(item, unit) {
  const x = item ?? {};
  const sign = x.op === "below" ? "<" : ">";
  const win = fmtWindow(x.window);
  return `${sign} ${fmtMetric(x.threshold, unit)}${win ? ` over ${win}` : ""}`;
}

/** The unit of a metric from the options' metric list ("" when unknown or a function). */
export function unitOf(metrics, name) {
  const m = (metrics ?? []).find((x) => x.name === name);
  return m ? m.unit : "";
}

/** Sort firing alerts: unacknowledged first, then worst severity, then newest. */
export function sortFiring(alerts) {
  const rank = (s) => SEVERITIES.indexOf(s);
  return [...(alerts ?? [])].sort(
    (a, b) => Number(Boolean(a.acked)) - Number(Boolean(b.acked)) || rank(b.severity) - rank(a.severity) || (b.fired_at ?? 0) - (a.fired_at ?? 0),
  );
}

/** The form's fields as the request the kernel checks: text trimmed, blanks as null. */
export function formRequest(fields) {
  const f = fields ?? {};
  const text = (v) => (typeof v === "string" ? v.trim() : v == null ? "" : String(v));
  const num = (v) => {
    const t = text(v);
    return t === "" ? null : t; // numbers are parsed (and refused with a reason) by the kernel
  };
  return {
    name: text(f.name),
    metric: text(f.metric),
    scope: text(f.scope) || "hub",
    op: f.op === "below" ? "below" : "above",
    threshold: num(f.threshold),
    window: num(f.window),
    for: num(f.for),
    severity: text(f.severity) || "warning",
    action: text(f.action) || "show",
  };
}

/** A rule's state for its row: [text, level]. */
export function ruleState(rule) {
  const r = rule ?? {};
  if (r.broken) return [`broken: ${r.broken}`, "err"];
  if (!r.enabled) return ["disabled", "muted"];
  if (r.state === "firing") return [`firing${r.firing > 1 ? ` (${r.firing})` : ""}`, severityLevel(r.severity)];
  if (r.state === "pending") return ["pending", "warn"];
  return ["ok", "ok"];
}
