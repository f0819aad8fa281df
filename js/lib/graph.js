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

/** The interval between animation steps for `n` animated edges. */
export function frameInterval(n) {
  return n > BUSY_EDGES ? BUSY_FRAME_MS : FRAME_MS;
}
