// The compact topology of a `graph` snapshot, decoded without the DOM.
// Edges travel as rows [source index, target index, type index, weight] into the snapshot's
// `nodes` and `types` (~15 bytes an edge); their ids are rebuilt here as "source->target".

const isIndex = (i, list) => Number.isInteger(i) && i >= 0 && i < list.length;

/**
 * Decodes a `graph` snapshot. Returns `{nodes, edges, ids}`: `nodes` as given, `edges` as
 * `{id, source, target, type, weight}`, and `ids[i]` the id of row `i` (null for a row that does
 * not decode), the index space of the flows' `edges`. Dict edges (the older shape) pass through.
 */
export function decodeTopology(topo) {
  const nodes = Array.isArray(topo?.nodes) ? topo.nodes : [];
  const types = Array.isArray(topo?.types) ? topo.types : [];
  const rows = Array.isArray(topo?.edges) ? topo.edges : [];
  const edges = [];
  const ids = new Array(rows.length).fill(null);
  rows.forEach((row, i) => {
    let edge = null;
    if (Array.isArray(row)) {
      const [s, t, k, w] = row;
      if (isIndex(s, nodes) && isIndex(t, nodes)) {
        const source = String(nodes[s]?.id);
        const target = String(nodes[t]?.id);
        const weight = Number(w);
        edge = {
          id: `${source}->${target}`,
          source,
          target,
          type: isIndex(k, types) ? String(types[k]) : "",
          weight: Number.isFinite(weight) ? weight : 1,
        };
      }
    } else if (row && row.source != null && row.target != null) {
      const source = String(row.source);
      const target = String(row.target);
      edge = {
        id: row.id != null ? String(row.id) : `${source}->${target}`,
        source,
        target,
        type: row.type ?? "",
        weight: Number(row.weight ?? 1),
      };
    }
    if (edge) {
      ids[i] = edge.id;
      edges.push(edge);
    }
  });
  return { nodes, edges, ids };
}

/** Above this many animated edges the animation runs at the lower rate. */
export const BUSY_EDGES = 300;
/** Milliseconds between animation steps: ~33 fps for a few edges, 15 fps for many. */
export const FRAME_MS = 30;
export const BUSY_FRAME_MS = 1000 / 15;
/**
 * Above this many animated edges the animation steps 6 times a second: each step redraws every
 * edge (cytoscape repaints its whole canvas), ~100 ms for 1,000 dashed curves on a 2-core
 * machine, so at 15 steps/s the page had no time left for its own frames (7 fps).
 */
export const CROWDED_EDGES = 600;
export const CROWDED_FRAME_MS = 1000 / 6;

/** The interval between animation steps for `n` animated edges. */
export function frameInterval(n) {
  if (n > CROWDED_EDGES) return CROWDED_FRAME_MS;
  return n > BUSY_EDGES ? BUSY_FRAME_MS : FRAME_MS;
}

/** The marching dashes' pattern in screen pixels: [dash, gap]. */
export const DASH = [8, 4];
/** Steps of one dash period an edge's dash offset can take (1 screen pixel each). */
export const DASH_PHASES = 12;
const DASH_PERIOD = DASH[0] + DASH[1];

/** A length in screen pixels as model units at scale `k` (1 / zoom), rounded as the stylesheet is. */
export function scaled(n, k = 1) {
  return Math.round(n * k * 100) / 100;
}

/**
 * The `line-dash-offset` values an edge can take at scale `k`: DASH_PHASES steps of one period
 * of the pattern (`[scaled(8, k), scaled(4, k)]`). Only these values ever reach cytoscape:
 * it caches every distinct parsed style value for the life of its stylesheet (`propCache`), so
 * an offset that moved continuously (any float) grew that cache by thousands of entries a second.
 */
export function dashOffsets(k = 1) {
  const period = scaled(DASH[0], k) + scaled(DASH[1], k);
  return Array.from({ length: DASH_PHASES }, (_, j) => (j === 0 ? 0 : -(j * period) / DASH_PHASES));
}

/** The furthest the dashes move in one step, under half a period: a longer jump would look
 * like a slower or backwards march (the animation steps only 6 times a second when crowded). */
export const DASH_STEP_MAX = 5;

/** An edge's dash phase (screen pixels in [0, period)) after `dt` seconds at `speed` px/s. */
export function advanceDash(phase, speed, dt) {
  const p = (phase || 0) + (speed > 0 && dt > 0 ? Math.min(DASH_STEP_MAX, speed * dt) : 0);
  return ((p % DASH_PERIOD) + DASH_PERIOD) % DASH_PERIOD;
}

/** The index into `dashOffsets` of a phase. */
export function dashIndex(phase) {
  const j = Math.floor(((phase || 0) / DASH_PERIOD) * DASH_PHASES);
  return Math.min(DASH_PHASES - 1, Math.max(0, j));
}

/** Smallest bend of an edge, in model pixels (opposite edges then lie 2 × BEND_MIN / 2 apart). */
export const BEND_MIN = 28;
/** Bend as a share of an edge's length, so long edges curve visibly too. */
export const BEND_SHARE = 0.14;
/** Distance an edge keeps from the centre of a node it passes (the node and its name below it). */
export const CLEARANCE = 46;

/**
 * The control-point distance of edge a → b (cytoscape's `unbundled-bezier`, one control point at
 * the middle): positive bends towards n = (-dy, dx)/len of the edge's own direction, so the two
 * edges a → b and b → a bend to opposite sides and never lie on each other. When the straight
 * line would pass through another node (or the name under it), the bend grows until the curve
 * clears it by CLEARANCE. `others` are the other nodes' positions {x, y}.
 * A quadratic curve with its control point at distance D from the chord's middle lies at
 * 2·t·(1 − t)·D from the chord at the fraction t of its length (D / 2 at the middle).
 */
export function edgeBend(a, b, others = []) {
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const len = Math.hypot(dx, dy);
  if (!(len > 1)) return 0; // a loop, or nodes on top of each other
  const ux = dx / len;
  const uy = dy / len;
  let bend = Math.max(BEND_MIN, BEND_SHARE * len);
  for (const p of others) {
    const t = ((p.x - a.x) * ux + (p.y - a.y) * uy) / len;
    if (!(t > 0.05 && t < 0.95)) continue;
    const d = -(p.x - a.x) * uy + (p.y - a.y) * ux; // + on the side the edge bends to
    if (Math.abs(d) >= CLEARANCE) continue;
    // Bending towards a node on our side means passing beyond it; away from one, just clearing it.
    const need = d > 0 ? d + CLEARANCE : CLEARANCE + d;
    bend = Math.max(bend, need / (2 * t * (1 - t)));
  }
  return Math.round(Math.min(bend, len) * 10) / 10;
}
