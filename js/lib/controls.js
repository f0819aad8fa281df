// Pure helpers of the Dashboard controls (js/dashboard_controls.js), unit-tested in node.

const pad = (n) => String(n).padStart(2, "0");

/** Unix seconds -> the value of an <input type="datetime-local" step="1"> in local time. */
export function toLocalInput(ts) {
  if (typeof ts !== "number" || !Number.isFinite(ts)) return "";
  const d = new Date(ts * 1000);
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}` +
    `T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  );
}

/** The value of a datetime-local input (local time) -> unix seconds, or null if empty/invalid. */
export function fromLocalInput(text) {
  if (typeof text !== "string" || !text) return null;
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(text);
  if (!m) return null;
  const [, y, mo, d, h, mi, s] = m.map((v) => (v === undefined ? 0 : Number(v)));
  const t = new Date(y, mo - 1, d, h, mi, s).getTime();
  return Number.isFinite(t) ? t / 1000 : null;
}

/**
 * Unix seconds -> {date, time} for the range inputs: an <input type="date"> value (its calendar
 * picker) and a 24-hour "HH:MM:SS" text (a time input would follow the browser's locale, e.g.
 * 12-hour AM/PM in en-US, while the rest of the dashboard is 24-hour).
 */
export function toLocalParts(ts) {
  const full = toLocalInput(ts);
  if (!full) return { date: "", time: "" };
  const [date, time] = full.split("T");
  return { date, time };
}

/** A date input's value and a 24-hour "H:MM[:SS]" text -> unix seconds, or null if invalid. */
export function fromLocalParts(date, time) {
  if (typeof date !== "string" || typeof time !== "string") return null;
  const m = /^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$/.exec(time);
  if (!m) return null;
  const [hh, mm, ss] = [Number(m[1]), Number(m[2]), m[3] === undefined ? 0 : Number(m[3])];
  if (hh > 23 || mm > 59 || ss > 59) return null;
  return fromLocalInput(`${date}T${String(hh).padStart(2, "0")}:${m[2]}:${String(ss).padStart(2, "0")}`);
}

function clock(ts) {
  const d = new Date(ts * 1000);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** "live · last 5 min" or "past · 10:01:02 – 10:06:02" for the range trait. */
export function rangeLabel(range) {
  const r = range ?? {};
  if (r.mode === "past" && Number.isFinite(r.since) && Number.isFinite(r.until)) {
    return `past · ${clock(r.since)} – ${clock(r.until)}`;
  }
  const w = Number(r.window) || 300;
  return `live · last ${windowLabel(w)}`;
}

/** 300 -> "5 min", 3600 -> "1 h". */
export function windowLabel(seconds) {
  return seconds >= 3600 && seconds % 3600 === 0 ? `${seconds / 3600} h` : `${Math.round(seconds / 60)} min`;
}

/** Actions that change or lose something: they ask for confirmation first. */
export const DESTRUCTIVE = new Set(["cancel", "restart", "mark_offline", "forget", "reset_counters", "simulator_stop"]);

/** The confirmation question for a destructive action (agent names are shown as text). */
export function confirmText(action, agent) {
  switch (action) {
    case "cancel":
      return `Cancel the task ${agent} is working on?`;
    case "restart":
      return `Restart ${agent}? Its current task is cancelled.`;
    case "mark_offline":
      return `Mark ${agent} offline?`;
    case "forget":
      return `Forget ${agent}? Its card and counters are removed until it is heard from again.`;
    case "reset_counters":
      return "Reset every agent's task, token, cost and error counters?";
    case "simulator_stop":
      return "Stop the simulator? Jobs in flight are cancelled.";
    default:
      return `${action}?`;
  }
}

/** The past range offered by default: the last `seconds` of history (or null without history). */
export function defaultPastRange(history, seconds = 300) {
  const h = history ?? {};
  if (!h.enabled || !Number.isFinite(h.last)) return null;
  const first = Number.isFinite(h.first) ? h.first : h.last - seconds;
  return { since: Math.max(first, h.last - seconds), until: h.last };
}
