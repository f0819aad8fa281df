import assert from "node:assert/strict";
import { test } from "node:test";
import { applyTail, tailTracker } from "../log_tail.js";

const L = (...seqs) => seqs.map((seq) => ({ seq, message: `line ${seq}` }));
const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

/** A stand-in for an anywidget model: get(), and set() that makes a new message object. */
function fakeModel(tail) {
  const state = { tail };
  return { get: (k) => state[k], set: (k, v) => { state[k] = v; } };
}

test("a reset replaces the window; an append adds and keeps the last `keep`", () => {
  assert.deepEqual(applyTail(L(1, 2), { n: 2, reset: true, lines: L(7, 8), keep: 2 }), L(7, 8));
  assert.deepEqual(applyTail(L(1, 2, 3), { n: 2, reset: false, lines: L(4, 5), keep: 4 }), L(2, 3, 4, 5));
  assert.deepEqual(applyTail(L(1, 2), { n: 2, reset: false, lines: L(3), keep: 3 }), L(1, 2, 3));
  // growing the window up to its limit, then sliding
  let shown = [];
  for (let end = 1; end <= 500; end += 1) {
    shown = applyTail(shown, { reset: end === 1, lines: L(end), keep: Math.min(end, 200) });
  }
  assert.deepEqual(shown.map((l) => l.seq), range(301, 500));
});

test("odd messages do not throw", () => {
  assert.deepEqual(applyTail(L(1), undefined), []);
  assert.deepEqual(applyTail(undefined, { reset: false, lines: L(3), keep: 5 }), L(3));
  assert.deepEqual(applyTail(L(1, 2), { reset: false, lines: L(3) }), L(1, 2, 3)); // no keep: keep all
  assert.deepEqual(applyTail(L(1, 2), { reset: false, keep: 1 }), L(2));
});

test("trackers share the window: a view opened after appends starts from the current lines", () => {
  const store = new WeakMap();
  const model = fakeModel({ n: 1, reset: true, lines: L(1, 2, 3), keep: 3 });
  const init = tailTracker(model, store); // the model's initialize()
  assert.deepEqual(init.current(), L(1, 2, 3));
  const early = tailTracker(model, store); // a view shown from the start
  assert.deepEqual(early.current(), L(1, 2, 3));
  for (let n = 2; n <= 5; n += 1) {
    model.set("tail", { n, reset: false, lines: L(n + 2), keep: 3 });
    init.current(); // initialize's listener runs first
    assert.deepEqual(early.current().map((l) => l.seq), [n, n + 1, n + 2]);
  }
  const late = tailTracker(model, store); // a view opened now
  assert.deepEqual(late.current().map((l) => l.seq), [5, 6, 7]);
  // a view whose listener runs before initialize's computes the same window
  model.set("tail", { n: 6, reset: false, lines: L(8, 9), keep: 4 });
  assert.deepEqual(late.current().map((l) => l.seq), [6, 7, 8, 9]);
  assert.deepEqual(init.current().map((l) => l.seq), [6, 7, 8, 9]);
  assert.deepEqual(early.current().map((l) => l.seq), [6, 7, 8, 9]);
  // a reset (a new filter) replaces everything
  model.set("tail", { n: 7, reset: true, lines: L(42), keep: 1 });
  assert.deepEqual(early.current(), L(42));
});

test("without the model's initialize, one view alone follows the appends", () => {
  const model = fakeModel({ n: 1, reset: true, lines: L(1), keep: 1 });
  const view = tailTracker(model, new WeakMap());
  assert.deepEqual(view.current(), L(1));
  model.set("tail", { n: 2, reset: false, lines: L(2, 3), keep: 2 });
  assert.deepEqual(view.current(), L(2, 3));
});
