// Graph logic without the DOM: flow decay between frames, edge widths, topology diffs, colours.

/** Intensity after `dt` seconds of exponential decay with the given half-life. */
export function decay(intensity, halfLife, dt) {
  if (!(intensity > 0)) return 0;
  if (!(halfLife > 0) || !(dt > 0)) return intensity;
  return intensity * 0.5 ** (dt / halfLife);
}

/** Below this decayed intensity an edge is drawn as idle (no animation, base width). */
export const ACTIVE_THRESHOLD = 0.05;

export const BASE_WIDTH = 1.5;
export const MAX_WIDTH = 6;

/** Stroke width for an intensity: logarithmic so one busy edge does not dwarf the others. */
export function edgeWidth(intensity) {
  if (!(intensity > ACTIVE_THRESHOLD)) return BASE_WIDTH;
  return Math.min(MAX_WIDTH, BASE_WIDTH + 1.2 * Math.log2(1 + intensity));
}

/** Marching-ants speed in px/s for an intensity (capped: fast enough to read, not to blur). */
export function dashSpeed(intensity) {
  if (!(intensity > ACTIVE_THRESHOLD)) return 0;
  return Math.min(120, 15 + 25 * Math.log2(1 + intensity));
}

/**
 * Decayed per-edge intensities at hub time `t` from a `flows` snapshot.
 * Returns Map(edgeId -> {intensity, rate, lastMinute}).
 */
export function edgeStates(flows, t) {
  const out = new Map();
  if (!flows || !flows.edges) return out;
  const dt = t - (flows.now ?? t);
  for (const [id, e] of Object.entries(flows.edges)) {
    out.set(id, {
      intensity: decay(e.intensity ?? 0, flows.half_life ?? 2, dt),
      rate: e.rate ?? 0,
      lastMinute: e.last_minute ?? 0,
    });
  }
  return out;
}

/** True while any edge is still visibly active at time t (the animation loop may stop otherwise). */
export function anyActive(states) {
  for (const s of states.values()) if (s.intensity > ACTIVE_THRESHOLD) return true;
  return false;
}

/**
 * What changed between the topology on screen and a new one. `prev` holds Maps of id -> item
 * (as last applied); positions of existing nodes are never touched, so nothing re-lays out.
 */
export function diffTopology(prev, next) {
  const nextNodes = new Map((next?.nodes ?? []).map((n) => [String(n.id), n]));
  const nextEdges = new Map((next?.edges ?? []).map((e) => [edgeId(e), e]));
  const out = { addNodes: [], updateNodes: [], removeNodes: [], addEdges: [], updateEdges: [], removeEdges: [] };
  for (const [id, n] of nextNodes) {
    const old = prev.nodes.get(id);
    if (!old) out.addNodes.push(n);
    else if (old.label !== n.label || old.role !== n.role) out.updateNodes.push(n);
  }
  for (const id of prev.nodes.keys()) if (!nextNodes.has(id)) out.removeNodes.push(id);
  for (const [id, e] of nextEdges) {
    const old = prev.edges.get(id);
    if (!old) out.addEdges.push(e);
    else if (old.type !== e.type || old.weight !== e.weight) out.updateEdges.push(e);
  }
  for (const id of prev.edges.keys()) if (!nextEdges.has(id)) out.removeEdges.push(id);
  return { ...out, nodes: nextNodes, edges: nextEdges };
}

/** An edge's id: the snapshot's, else "source->target" (the FlowTracker's key format). */
export function edgeId(e) {
  return e.id != null ? String(e.id) : `${e.source}->${e.target}`;
}

// Role colours are fixed hues that read on light and dark backgrounds alike.
const ROLE_COLOURS = {
  orchestrator: "#e0457b",
  planner: "#f0a202",
  executor: "#2bb673",
  service: "#9b7fe6",
  external: "#8a96a3",
  user: "#8a96a3",
  tool: "#3aa0d8",
};
const FALLBACK = ["#3aa0d8", "#d96c3a", "#6abf40", "#c061cb", "#d4b000", "#4db6ac", "#e57373", "#7986cb"];

/** The fill colour of a role; unknown roles get a stable colour from a small palette. */
export function roleColour(role) {
  const key = String(role ?? "").toLowerCase();
  if (ROLE_COLOURS[key]) return ROLE_COLOURS[key];
  if (!key) return ROLE_COLOURS.external;
  let h = 0;
  for (const ch of key) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return FALLBACK[h % FALLBACK.length];
}

/** The label of an edge: its messages/s when it carried traffic in the last minute. */
export function edgeLabel(rate) {
  if (!(rate > 0)) return "";
  if (rate < 0.1) return "<0.1/s";
  return `${rate < 10 ? rate.toFixed(1) : Math.round(rate)}/s`;
}

/** "a->b" as "a → b" for people. */
export function prettyEdge(id) {
  return id ? String(id).replace("->", " \u2192 ") : "\u2013";
}

/** The stats line under the graph. */
export function statsLine(stats) {
  const s = stats ?? {};
  const parts = [
    `${s.messages_last_minute ?? 0} messages last minute`,
    `${s.active_edges ?? 0} active edge${s.active_edges === 1 ? "" : "s"}`,
  ];
  if (s.busiest_edge) parts.push(`busiest: ${prettyEdge(s.busiest_edge)}`);
  return parts.join(" \u00b7 ");
}
