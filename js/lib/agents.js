// Agent-card logic without the DOM: statuses, filters and the values that age in the browser.

/** Known statuses in display order; colour names refer to CSS classes in agent_cards.js. */
export const STATUSES = ["initializing", "idle", "active", "error", "offline"];

export const STATUS_LABELS = {
  initializing: "starting",
  idle: "idle",
  active: "working",
  error: "error",
  offline: "offline",
  stale: "stale",
};

/** The status label shown on a card (unknown statuses are shown as they are). */
export function statusLabel(status) {
  return STATUS_LABELS[status] ?? String(status ?? "unknown");
}

/**
 * True when the agent has missed its heartbeats: either the hub said so, or its last heartbeat
 * has become older than `staleAfter` since (the browser notices without a new frame).
 */
export function isStale(agent, hubNow, staleAfter) {
  if (agent.stale) return true;
  if (agent.status === "offline") return false; // offline is already the stronger statement
  const beat = agent.last_heartbeat;
  if (typeof beat !== "number" || typeof staleAfter !== "number" || staleAfter <= 0) return false;
  return hubNow - beat > staleAfter;
}

/**
 * Seconds since the current task started, or null when the agent has no task. A paused agent's
 * time stands still at the moment it was paused (its task does not move while it is held).
 */
export function taskElapsed(agent, hubNow) {
  if (!(typeof agent.task_started === "number" && agent.task)) return null;
  const until = agent.paused && typeof agent.paused_at === "number" ? Math.min(hubNow, agent.paused_at) : hubNow;
  return Math.max(0, until - agent.task_started);
}

/** Seconds a note is shown on a card after its admin command (forget, mark offline, cancel…). */
export const NOTE_SECONDS = 15;

const NOTE_TEXT = {
  pause: "paused by admin",
  resume: "resumed by admin",
  cancel: "task cancelled by admin",
  restart: "restarted by admin",
  mark_offline: "marked offline by admin",
  forget: "forgotten by admin, then heard from again",
};

/** The feedback line of an agent's last admin command while it is recent, else "". */
export function noteText(agent, hubNow, seconds = NOTE_SECONDS) {
  const note = agent?.note;
  if (!note || typeof note.ts !== "number") return "";
  const age = hubNow - note.ts;
  if (!(age <= seconds)) return "";
  return NOTE_TEXT[note.command] ?? `${String(note.command)} by admin`;
}

/** Seconds since the last heartbeat, or null if the agent never sent one. */
export function heartbeatAge(agent, hubNow) {
  return typeof agent.last_heartbeat === "number" ? Math.max(0, hubNow - agent.last_heartbeat) : null;
}

/**
 * Does an agent pass the filter? `status` is "" (all), a status name, or "stale";
 * `role` is "" (all) or a role name.
 */
export function matchesFilter(agent, { status = "", role = "" } = {}, hubNow = 0, staleAfter = 0) {
  if (role && (agent.role ?? "") !== role) return false;
  if (!status) return true;
  if (status === "stale") return isStale(agent, hubNow, staleAfter);
  return agent.status === status;
}

/** The agents passing the filter, in the snapshot's (stable) order. */
export function filterAgents(agents, filter, hubNow = 0, staleAfter = 0) {
  return (agents ?? []).filter((a) => matchesFilter(a, filter, hubNow, staleAfter));
}

/** Sorted distinct roles (for the role filter's options). */
export function rolesOf(agents) {
  return [...new Set((agents ?? []).map((a) => a.role).filter((r) => r))].sort();
}

/**
 * "3 idle · 2 working · 1 stale · 1 paused" from the snapshot's counts and the locally computed
 * stale and paused counts.
 */
export function countsLine(counts, staleCount = 0, pausedCount = 0) {
  const parts = STATUSES.filter((s) => (counts?.[s] ?? 0) > 0).map((s) => `${counts[s]} ${statusLabel(s)}`);
  if (staleCount > 0) parts.push(`${staleCount} stale`);
  if (pausedCount > 0) parts.push(`${pausedCount} paused`);
  return parts.length ? parts.join(" \u00b7 ") : "no agents yet";
}

/**
 * The counts line of an `agents` snapshot at hub time `hubNow`: what the cards' toolbar and the
 * dashboard header both show, computed by this one function from the same frame.
 */
export function agentsLine(data, hubNow) {
  const d = data ?? {};
  let stale = 0;
  let paused = 0;
  for (const a of d.agents ?? []) {
    if (isStale(a, hubNow, d.stale_after ?? 0)) stale += 1;
    if (a.paused) paused += 1;
  }
  return countsLine(d.counts ?? {}, stale, paused);
}
