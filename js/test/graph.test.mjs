import { test } from "node:test";
import assert from "node:assert/strict";
import { BUSY_EDGES, BUSY_FRAME_MS, CROWDED_EDGES, CROWDED_FRAME_MS, FRAME_MS, decodeTopology, frameInterval } from "../lib/graph.js";
import { decay, decodeFlows } from "../lib/flows.js";

const TOPO = {
  nodes: [{ id: "user", x: 0, y: 0 }, { id: "planner", x: 200, y: 0 }, { id: "coder", x: 400, y: 0 }],
  types: ["requests", "assigns"],
  edges: [[0, 1, 0, 1.0], [1, 2, 1, 0.5], [2, 1, 1, 0.25]],
  omitted: { nodes: 0, edges: 0 },
};

test("edge rows decode to ids source->target with their type and weight", () => {
  const { nodes, edges, ids } = decodeTopology(TOPO);
  assert.equal(nodes, TOPO.nodes);
  assert.deepEqual(ids, ["user->planner", "planner->coder", "coder->planner"]);
  assert.deepEqual(edges[1], { id: "planner->coder", source: "planner", target: "coder", type: "assigns", weight: 0.5 });
  assert.equal(edges[0].type, "requests");
});

test("bad rows are skipped but keep their index, so flows still line up", () => {
  const topo = { ...TOPO, edges: [[0, 9, 0, 1], "junk", [0, 1, 5, "x"], [1.5, 0, 0, 1], [2, 0, 0, 2]] };
  const { edges, ids } = decodeTopology(topo);
  assert.deepEqual(ids, [null, null, "user->planner", null, "coder->user"]);
  assert.deepEqual(edges.map((e) => [e.id, e.type, e.weight]), [["user->planner", "", 1], ["coder->user", "requests", 2]]);
  const flows = { now: 0, half_life: 2, edges: [0, 4, 2], intensity: [9, 2, 1], last_minute: [9, 6, 3] };
  assert.deepEqual(decodeFlows(flows, ids).map((f) => f.id), ["coder->user", "user->planner"]);
});

test("empty and older topologies decode", () => {
  assert.deepEqual(decodeTopology(undefined), { nodes: [], edges: [], ids: [] });
  assert.deepEqual(decodeTopology({}), { nodes: [], edges: [], ids: [] });
  const old = decodeTopology({ nodes: [], edges: [{ source: "a", target: "b", type: "t", weight: 2 }] });
  assert.deepEqual(old.ids, ["a->b"]);
  assert.equal(old.edges[0].type, "t");
});

test("indexed flows decode against the topology's ids, rate from last_minute", () => {
  const { ids } = decodeTopology(TOPO);
  const flows = { now: 100, half_life: 2, edges: [2, 0], intensity: [4, 0.5], last_minute: [30, 3] };
  assert.deepEqual(decodeFlows(flows, ids), [
    { id: "coder->planner", intensity: 4, rate: 0.5, lastMinute: 30 },
    { id: "user->planner", intensity: 0.5, rate: 0.05, lastMinute: 3 },
  ]);
  const at102 = new Map(decodeFlows(flows, ids).map((e) => [e.id, { ...e, intensity: decay(e.intensity, flows.half_life, 102 - flows.now) }]));
  assert.equal(at102.get("coder->planner").intensity, 2);
  assert.equal(at102.get("coder->planner").lastMinute, 30);
  assert.equal(at102.has("planner->coder"), false);
  // A store's snapshot names its edges by id instead; the older object shape still reads.
  const byId = { now: 100, edges: ["user->planner"], intensity: [1], last_minute: [6] };
  assert.deepEqual(decodeFlows(byId), [{ id: "user->planner", intensity: 1, rate: 0.1, lastMinute: 6 }]);
  const old = { edges: { "a->b": { intensity: 2, rate: 0.5, last_minute: 30 } } };
  assert.deepEqual(decodeFlows(old), [{ id: "a->b", intensity: 2, rate: 0.5, lastMinute: 30 }]);
  assert.deepEqual(decodeFlows(null), []);
  assert.deepEqual(decodeFlows({ edges: [5], intensity: [1], last_minute: [1] }, ids), []); // past the rows
});

test("1,000 edges: the compact forms decode in full", () => {
  const nodes = Array.from({ length: 200 }, (_, i) => ({ id: `agent_${String(i).padStart(3, "0")}` }));
  const edges = [];
  for (let i = 0; i < 200; i++) for (let k = 1; k <= 5; k++) edges.push([i, (i + k) % 200, 0, 1.0]);
  const topo = { nodes, types: ["call"], edges };
  assert.ok(JSON.stringify(topo.edges).length < 20_000);
  const { ids } = decodeTopology(topo);
  assert.equal(new Set(ids).size, 1000);
  assert.equal(ids[5], "agent_001->agent_002");
  const flows = { now: 0, edges: edges.map((_, i) => i), intensity: edges.map(() => 14.43), last_minute: edges.map(() => 300) };
  assert.ok(JSON.stringify(flows).length < 20_000);
  assert.equal(new Set(decodeFlows(flows, ids).map((e) => e.id)).size, 1000);
});

test("the animation steps at 15 steps/s above a few hundred edges, 6 above CROWDED_EDGES", () => {
  assert.equal(frameInterval(0), FRAME_MS);
  assert.equal(frameInterval(BUSY_EDGES), FRAME_MS);
  assert.equal(frameInterval(BUSY_EDGES + 1), BUSY_FRAME_MS);
  assert.equal(frameInterval(CROWDED_EDGES), BUSY_FRAME_MS);
  assert.equal(frameInterval(CROWDED_EDGES + 1), CROWDED_FRAME_MS);
  assert.equal(Math.round(1000 / frameInterval(1000)), 6);
  assert.ok(1000 / frameInterval(BUSY_EDGES + 1) >= 10 && 1000 / frameInterval(BUSY_EDGES + 1) <= 15);
  assert.ok(1000 / frameInterval(10) > 30);
});

test("edgeBend: opposite edges bend to opposite sides, by the same amount", async () => {
  const { edgeBend, BEND_MIN } = await import("../lib/graph.js");
  const a = { x: 0, y: 0 };
  const b = { x: 200, y: 0 };
  const ab = edgeBend(a, b);
  const ba = edgeBend(b, a);
  assert.equal(ab, ba); // same distance in each edge's own frame: opposite sides on screen
  assert.ok(ab >= BEND_MIN);
  assert.equal(edgeBend(a, a), 0); // loops keep cytoscape's own shape
});

test("edgeBend: an edge passing through another node bends around it and its name", async () => {
  const { edgeBend, CLEARANCE } = await import("../lib/graph.js");
  // Coding agent -> User along one row, through Code planner and Request planner.
  const bend = edgeBend({ x: 600, y: 150 }, { x: 0, y: 150 }, [{ x: 200, y: 150 }, { x: 400, y: 150 }]);
  const t = 1 / 3; // the nearest node on the chord
  assert.ok(2 * t * (1 - t) * bend >= CLEARANCE - 1e-9, `bend ${bend}`);
  // A node far from the line changes nothing.
  assert.equal(edgeBend({ x: 0, y: 0 }, { x: 200, y: 0 }, [{ x: 100, y: 300 }]), edgeBend({ x: 0, y: 0 }, { x: 200, y: 0 }));
});
