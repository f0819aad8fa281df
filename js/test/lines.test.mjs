import { test } from "node:test";
import assert from "node:assert/strict";
import { diffLines, levelClass, mergeSources } from "../lib/lines.js";

const L = (...seqs) => seqs.map((seq) => ({ seq, source: `s${seq % 3}` }));

test("following: drop from the top, append at the bottom", () => {
  const d = diffLines([1, 2, 3, 4], L(3, 4, 5, 6));
  assert.deepEqual(d, { reset: false, removeFromTop: 2, append: L(5, 6) });
  assert.deepEqual(diffLines([1, 2], L(1, 2)), { reset: false, removeFromTop: 0, append: [] });
  assert.deepEqual(diffLines([1, 2], L(1, 2, 3)), { reset: false, removeFromTop: 0, append: L(3) });
});

test("anything else resets", () => {
  assert.equal(diffLines([], L(1)).reset, true);
  assert.equal(diffLines([1, 2], []).reset, true);
  assert.equal(diffLines([1, 2, 3], L(7, 8)).reset, true); // a gap: nothing on screen is kept
  assert.equal(diffLines([1, 2, 3], L(2, 5)).reset, true); // a new filter dropped line 3
  assert.equal(diffLines([1, 2, 3], L(2)).reset, true); // fewer lines than kept
});

test("bounded DOM: a 200-row window over 100,000 lines stays incremental", () => {
  let shown = [];
  let rows = 0;
  for (let end = 200; end <= 100_000; end += 50) {
    const next = L(...Array.from({ length: 200 }, (_, i) => end - 199 + i));
    const d = diffLines(shown, next);
    if (d.reset) rows = next.length;
    else rows = rows - d.removeFromTop + d.append.length;
    shown = next.map((l) => l.seq);
    assert.equal(rows, 200);
  }
});

test("levels and sources", () => {
  assert.equal(levelClass("ERROR"), "error");
  assert.equal(levelClass("warn"), "warning");
  assert.equal(levelClass("whatever"), "info");
  assert.equal(levelClass(undefined), "info");
  assert.deepEqual(mergeSources(["b"], L(1, 2, 3)), ["b", "s0", "s1", "s2"]);
  assert.equal(mergeSources([], L(...Array.from({ length: 500 }, (_, i) => i)).map((l, i) => ({ ...l, source: `x${i}` })), 10).length, 10);
});
