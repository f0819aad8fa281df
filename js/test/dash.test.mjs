import { test } from "node:test";
import assert from "node:assert/strict";
import cytoscape from "cytoscape";
import { DASH, DASH_PHASES, DASH_STEP_MAX, advanceDash, dashIndex, dashOffsets, scaled } from "../lib/graph.js";
import { BASE_WIDTH, MAX_WIDTH, dashSpeed, edgeWidth, shownWidth } from "../lib/flows.js";

test("a phase advances at speed × dt and wraps at the dash period", () => {
  const period = DASH[0] + DASH[1];
  assert.equal(advanceDash(0, 30, 0.1), 3);
  assert.equal(advanceDash(undefined, 30, 0.1), 3);
  assert.equal(advanceDash(period - 1, 20, 0.1), 1);
  assert.equal(advanceDash(5, 0, 1), 5);
  assert.equal(advanceDash(5, 30, 0), 5);
  // A long step (6 steps/s at 120 px/s) moves at most DASH_STEP_MAX, under half a period.
  assert.equal(advanceDash(0, 120, 1 / 6), DASH_STEP_MAX);
  assert.ok(DASH_STEP_MAX < period / 2);
  for (const p of [0, 0.5, 3, 11.99, 12, 100]) {
    const j = dashIndex(advanceDash(p, 0, 0));
    assert.ok(Number.isInteger(j) && j >= 0 && j < DASH_PHASES, `${p} -> ${j}`);
  }
});

test("the offsets are DASH_PHASES steps of one period of the pattern at the stylesheet's scale", () => {
  for (const k of [1, 0.5, 1 / 0.37, 4]) {
    const offsets = dashOffsets(k);
    assert.equal(offsets.length, DASH_PHASES);
    assert.equal(offsets[0], 0);
    const period = scaled(DASH[0], k) + scaled(DASH[1], k);
    assert.ok(Math.abs(offsets[DASH_PHASES - 1] + (period * (DASH_PHASES - 1)) / DASH_PHASES) < 1e-9);
    for (let j = 1; j < DASH_PHASES; j += 1) assert.ok(offsets[j] < offsets[j - 1]);
  }
});

// The soak's JS heap leak (issue 17): cytoscape keeps every distinct value it parses for a style
// property in its stylesheet's `propCache`, for the stylesheet's life. The animation used to set
// each active edge's `line-dash-offset` to a fresh float every step, so that cache grew without
// bound (~2 MiB/min with 1,000 edges). The values set now come from a fixed set per scale.
test("animating 50 edges for 600 steps leaves cytoscape's parse cache bounded", (t) => {
  const n = 50;
  const elements = [];
  for (let i = 0; i < n; i += 1) elements.push({ data: { id: `n${i}` } });
  for (let i = 0; i < n; i += 1) elements.push({ data: { id: `e${i}`, source: `n${i}`, target: `n${(i + 1) % n}` } });
  const cy = cytoscape({ headless: true, styleEnabled: true, elements,
    style: [{ selector: "edge", style: { "line-style": "dashed", "line-dash-pattern": DASH } }] });
  const offsets = dashOffsets(1);
  const edges = cy.edges().toArray();
  const phase = new Map();
  const shown = new Map();
  const seen = new Set();
  const cacheSize = () => Object.keys(cy.style().propCache ?? {}).length;
  const step = (s) => {
    cy.batch(() => {
      edges.forEach((e, i) => {
        const p = advanceDash(phase.get(i), dashSpeed(((i * 7 + s) % 50) / 5), 0.016 + ((i + s) % 7) * 0.013);
        phase.set(i, p);
        const j = dashIndex(p);
        if (shown.get(i) !== j) {
          shown.set(i, j);
          seen.add(offsets[j]);
          e.style("line-dash-offset", offsets[j]);
        }
      });
    });
  };
  t.after(() => cy.destroy());
  for (let s = 0; s < 100; s += 1) step(s);
  const early = cacheSize(); // the stylesheets' own values (parsed lazily) and the offsets
  assert.equal(seen.size, DASH_PHASES, "every offset is in use by now");
  for (let s = 100; s < 600; s += 1) step(s);
  assert.ok(seen.size <= DASH_PHASES, `${seen.size} distinct offsets`);
  assert.ok(cy.style().propCache !== undefined, "cytoscape's parse cache moved: update this test");
  assert.equal(cacheSize(), early, "the parse cache grew while animating");
  // What the animation did before: a continuous offset is a new cache entry nearly every time.
  edges[0].style("line-dash-offset", -1.2345678);
  edges[0].style("line-dash-offset", -2.3456789);
  assert.equal(cacheSize(), early + 2);
});

test("an edge's drawn width moves in half-pixel steps between the idle and the widest", () => {
  let changes = 0;
  let last = shownWidth(20);
  for (let i = 20; i > 0; i -= 0.01) {
    const w = shownWidth(i);
    assert.equal(w * 2, Math.round(w * 2));
    assert.ok(Math.abs(w - edgeWidth(i)) <= 0.25);
    if (w !== last) changes += 1;
    last = w;
  }
  assert.ok(changes <= 12, `${changes} width changes over a decay from 20 to 0`);
  assert.equal(shownWidth(0), BASE_WIDTH);
  assert.equal(shownWidth(1e9), MAX_WIDTH);
});
