import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ACTIVE_THRESHOLD, BASE_WIDTH, MAX_WIDTH, dashSpeed, decay, decodeFlows, diffTopology, edgeId, edgeLabel,
  edgeWidth, prettyEdge, roleColour, statsLine,
} from "../lib/flows.js";

test("decay halves every half-life and never grows", () => {
  assert.equal(decay(8, 2, 2), 4);
  assert.equal(decay(8, 2, 4), 2);
  assert.equal(decay(8, 2, 0), 8);
  assert.equal(decay(8, 2, -1), 8); // a frame from the future is not amplified
  assert.equal(decay(0, 2, 1), 0);
  assert.equal(decay(5, 0, 1), 5);
});

// What the view's animation does per step: decay each listed edge from the frame's `now`.
function statesAt(flows, t, ids = []) {
  const dt = t - (flows?.now ?? t);
  return new Map(decodeFlows(flows, ids).map((e) => [e.id, { ...e, intensity: decay(e.intensity, flows.half_life ?? 2, dt) }]));
}
const anyActive = (states) => [...states.values()].some((s) => s.intensity > ACTIVE_THRESHOLD);

test("edge states decay from the snapshot's now", () => {
  const flows = {
    now: 100, half_life: 2,
    edges: { "a->b": { intensity: 4, rate: 0.5, last_minute: 30 }, "b->c": { intensity: 0.06, rate: 0.1, last_minute: 1 } },
  };
  const at100 = statesAt(flows, 100);
  assert.equal(at100.get("a->b").intensity, 4);
  assert.equal(at100.get("a->b").lastMinute, 30);
  const at104 = statesAt(flows, 104);
  assert.equal(at104.get("a->b").intensity, 1);
  assert.ok(anyActive(at104));
  assert.ok(!anyActive(statesAt(flows, 130)));
  assert.equal(statesAt(null, 0).size, 0);
});

test("widths and speeds grow with intensity, bounded", () => {
  assert.equal(edgeWidth(0), BASE_WIDTH);
  assert.equal(edgeWidth(ACTIVE_THRESHOLD / 2), BASE_WIDTH);
  assert.ok(edgeWidth(1) > BASE_WIDTH);
  assert.ok(edgeWidth(10) > edgeWidth(1));
  assert.equal(edgeWidth(1e9), MAX_WIDTH);
  assert.equal(dashSpeed(0), 0);
  assert.ok(dashSpeed(1e9) <= 120);
});

test("topology diff adds, updates and removes without touching positions", () => {
  const prev = {
    nodes: new Map([["a", { id: "a", label: "A", role: "planner", x: 0, y: 0 }], ["gone", { id: "gone" }]]),
    edges: new Map([["a->gone", { source: "a", target: "gone" }]]),
  };
  const next = {
    nodes: [{ id: "a", label: "A", role: "planner", x: 999, y: 999 }, { id: "b", label: "B", role: "executor", x: 10, y: 20 }],
    edges: [{ id: "a->b", source: "a", target: "b", type: "assigns" }],
  };
  const d = diffTopology(prev, next);
  assert.deepEqual(d.addNodes.map((n) => n.id), ["b"]);
  assert.deepEqual(d.updateNodes, []); // a moved in the snapshot, but positions are never re-applied
  assert.deepEqual(d.removeNodes, ["gone"]);
  assert.deepEqual(d.addEdges.map(edgeId), ["a->b"]);
  assert.deepEqual(d.removeEdges, ["a->gone"]);
  const again = diffTopology({ nodes: d.nodes, edges: d.edges }, { ...next, nodes: [{ ...next.nodes[0], label: "Alpha" }, next.nodes[1]] });
  assert.deepEqual(again.addNodes, []);
  assert.deepEqual(again.updateNodes.map((n) => n.label), ["Alpha"]);
  assert.equal(edgeId({ source: "x", target: "y" }), "x->y");
});

test("colours, labels, stats", () => {
  assert.equal(roleColour("executor"), roleColour("Executor"));
  assert.equal(roleColour("custom-role"), roleColour("custom-role"));
  assert.match(roleColour("custom-role"), /^#[0-9a-f]{6}$/);
  assert.match(roleColour(undefined), /^#[0-9a-f]{6}$/);
  assert.equal(edgeLabel(0), "");
  assert.equal(edgeLabel(0.5), "0.5/s");
  assert.equal(edgeLabel(0.01), "<0.1/s");
  assert.equal(edgeLabel(25.2), "25/s");
  assert.equal(prettyEdge("a->b"), "a \u2192 b");
  assert.equal(
    statsLine({ messages_last_minute: 120, active_edges: 1, busiest_edge: "a->b" }),
    "120 messages last minute \u00b7 1 active edge \u00b7 busiest: a \u2192 b",
  );
  assert.equal(statsLine(undefined), "0 messages last minute \u00b7 0 active edges");
});
