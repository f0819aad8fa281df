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

/** The width an edge is drawn with: edgeWidth in half-pixel steps, so a decaying intensity
 * changes the drawing (a style update and a redraw of the edge) a few times, not every step. */
export function shownWidth(intensity) {
  return Math.round(edgeWidth(intensity) * 2) / 2;
}

/** At most this many edges carry a rate label, the busiest: more are unreadable, and every label
 * is redrawn with every animation step (hovering an edge still shows its rate). */
export const LABEL_MAX = 40;

/** Marching-ants speed in px/s for an intensity (capped: fast enough to read, not to blur). */
export function dashSpeed(intensity) {
  if (!(intensity > ACTIVE_THRESHOLD)) return 0;
  return Math.min(120, 15 + 25 * Math.log2(1 + intensity));
}

/**
 * The active edges of a `flows` frame at the frame's `now`, busiest first:
 * `[{id, intensity, rate, lastMinute}]`. The frame holds parallel arrays `edges`, `intensity`,
 * `last_minute`; `edges[i]` is an index into the topology's edge rows (`ids`, from
 * decodeTopology) in what the widget sends, or an edge id in a store's snapshot. An `edges`
 * object `{id: {intensity, rate, last_minute}}` (the older shape) is read too. `rate` is
 * `last_minute / 60` unless given.
 */
export function decodeFlows(flows, ids = []) {
  const out = [];
  const edges = flows?.edges;
  if (!edges) return out;
  if (!Array.isArray(edges)) {
    for (const [id, e] of Object.entries(edges)) {
      out.push({ id, intensity: Number(e?.intensity) || 0, rate: Number(e?.rate) || 0, lastMinute: Number(e?.last_minute) || 0 });
    }
    return out;
  }
  const levels = Array.isArray(flows.intensity) ? flows.intensity : [];
  const counts = Array.isArray(flows.last_minute) ? flows.last_minute : [];
  edges.forEach((key, i) => {
    const id = typeof key === "number" ? ids[key] : key;
    if (id == null || i >= levels.length) return;
    const lastMinute = Number(counts[i]) || 0;
    out.push({ id: String(id), intensity: Number(levels[i]) || 0, rate: lastMinute / 60, lastMinute });
  });
  return out;
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
