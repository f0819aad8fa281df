import { test } from "node:test";
import assert from "node:assert/strict";
import {
  agentColour, applyPatch, axisEnd, colourBook, costText, criticalPath, emptyTrace, endOf, extent, kindLabel, layout, ticks,
} from "../lib/traces.js";
import { fmtCost } from "../lib/format.js";

const patch = (over = {}) => ({
  trace: "job-1",
  reset: true,
  t0: 1000,
  strings: ["root", "task", "a", "ok", "call", "llm", "running"],
  rows: { i0: 0, p: [-1, 0], n: [0, 4], k: [1, 5], a: [2, 2], st: [3, 6], s: [0, 500], d: [3000, null] },
  summary: { id: "job-1" },
  ...over,
});

test("a reset patch builds the trace; later patches update rows and extend the strings", () => {
  let st = applyPatch(emptyTrace(), patch());
  assert.equal(st.trace, "job-1");
  assert.deepEqual(st.spans.map((s) => [s.i, s.p, s.name, s.kind, s.status, s.s, s.d]), [
    [0, -1, "root", "task", "ok", 0, 3000],
    [1, 0, "call", "llm", "running", 500, null],
  ]);
  st = applyPatch(st, { trace: "job-1", reset: false, strings: ["error"], rows: { i: [1], p: [0], n: [4], k: [5], a: [2], st: [7], s: [500], d: [1500] } });
  assert.equal(st.spans[1].status, "error");
  assert.equal(st.spans[1].d, 1500);
  assert.equal(st.strings.length, 8);
  // a patch for another trace starts over
  st = applyPatch(st, patch({ trace: "job-2", reset: false }));
  assert.equal(st.trace, "job-2");
  assert.equal(st.strings.length, 7);
});

test("links are decoded with their kind", () => {
  const st = applyPatch(emptyTrace(), patch({ strings: [...patch().strings, "query"], links: [[0, 1, 7, 250]] }));
  assert.deepEqual(st.links, [{ from: 0, to: 1, kind: "query", t: 250 }]);
});

test("open spans end now; unknown starts are handled", () => {
  assert.equal(endOf({ s: 100, d: null }, 900), 900);
  assert.equal(endOf({ s: 100, d: 50 }, 900), 150);
  assert.equal(endOf({ s: null, d: null }, 900), 900);
  assert.equal(extent([{ s: 0, d: 10 }, { s: 5, d: null }], 40), 40);
});

test("layout is depth-first by start, orphans are roots, cycles terminate", () => {
  const spans = [
    { i: 0, p: -1, s: 0, d: 10 },
    { i: 1, p: 0, s: 5, d: 1 },
    { i: 2, p: 0, s: 1, d: 1 },
    { i: 3, p: 2, s: 2, d: 1 },
    { i: 4, p: 99, s: 3, d: 1 }, // parent not seen yet
  ];
  assert.deepEqual(layout(spans).map(({ span, depth }) => [span.i, depth]), [[0, 0], [2, 1], [3, 2], [1, 1], [4, 0]]);
  const cyclic = [{ i: 0, p: 1, s: 0, d: 1 }, { i: 1, p: 0, s: 0, d: 1 }];
  assert.equal(layout(cyclic).length, 2);
  const chain = Array.from({ length: 5000 }, (_, i) => ({ i, p: i - 1, s: i, d: 1 }));
  const deep = layout(chain);
  assert.equal(deep.length, 5000);
  assert.equal(deep[4999].depth, 4999);
});

test("the critical path follows the last-finishing spans back to the start", () => {
  // root 0..100: a 0..30 then b 30..100 (sequential), c 10..20 parallel to a; b has child d 40..90
  const spans = [
    { i: 0, p: -1, s: 0, d: 100 },
    { i: 1, p: 0, s: 0, d: 30 },
    { i: 2, p: 0, s: 30, d: 70 },
    { i: 3, p: 0, s: 10, d: 10 },
    { i: 4, p: 2, s: 40, d: 50 },
  ];
  assert.deepEqual([...criticalPath(spans, 100)].sort(), [0, 1, 2, 4]);
  // an open span reaching now is on it
  const open = [{ i: 0, p: -1, s: 0, d: null }, { i: 1, p: 0, s: 0, d: 5 }, { i: 2, p: 0, s: 5, d: null }];
  assert.deepEqual([...criticalPath(open, 50)].sort(), [0, 1, 2]);
  // sequential roots (a job's tasks) are all on it
  const roots = [{ i: 0, p: -1, s: 0, d: 4 }, { i: 1, p: -1, s: 4, d: 1 }, { i: 2, p: -1, s: 5, d: 25 }];
  assert.deepEqual([...criticalPath(roots, 30)].sort(), [0, 1, 2]);
});

test("axis and ticks are round", () => {
  assert.equal(axisEnd(900), 1000);
  assert.equal(axisEnd(1000), 2000);
  assert.equal(axisEnd(4200), 5000);
  assert.deepEqual(ticks(1000), [0, 200, 400, 600, 800, 1000]);
  assert.deepEqual(ticks(5000), [0, 1000, 2000, 3000, 4000, 5000]);
});

test("labels, colours and costs", () => {
  assert.equal(kindLabel("llm"), "LLM");
  assert.equal(kindLabel("retrieval"), "RAG");
  assert.equal(kindLabel("???"), "SPAN");
  assert.equal(agentColour("coding_agent"), agentColour("coding_agent"));
  assert.notEqual(agentColour(""), undefined);
  assert.equal(costText(0, 2, fmtCost), "cost unknown");
  assert.equal(costText(0.012, 1, fmtCost), "$0.01 + ?");
  assert.equal(costText(0.0045, 0, fmtCost), "$0.0045");
});

test("agents get distinct colours in the order they are seen", () => {
  const book = colourBook();
  const names = ["request_planner", "rag_service", "code_planner", "coding_agent", "git_operations"];
  const colours = names.map(book);
  assert.equal(new Set(colours).size, names.length);
  assert.equal(book("code_planner"), colours[2]);
  assert.equal(book(""), "#9e9e9e");
});

test("the critical path tolerates ms rounding (a child ending 1 ms after its parent)", () => {
  const spans = [{ i: 0, p: -1, s: 0, d: 227 }, { i: 1, p: 0, s: 0, d: 49 }, { i: 2, p: 0, s: 111, d: 117 }];
  assert.deepEqual([...criticalPath(spans, 300)].sort(), [0, 1, 2]);
});
