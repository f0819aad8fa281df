import { test } from "node:test";
import assert from "node:assert/strict";
import { sparkPaths } from "../lib/sparkline.js";

test("scales values into the box", () => {
  const p = sparkPaths([0, 5, 10], 100, 20, 0);
  assert.equal(p.max, 10);
  assert.equal(p.line, "M0,20L50,10L100,0");
  assert.equal(p.area, "M0,20L50,10L100,0L100,20L0,20Z");
});

test("empty, single, all-zero and bad values", () => {
  assert.deepEqual(sparkPaths([], 100, 20), { line: "", area: "", max: 0 });
  assert.deepEqual(sparkPaths(undefined, 100, 20), { line: "", area: "", max: 0 });
  assert.equal(sparkPaths([3], 100, 20, 0).line, "M0,0L100,0");
  assert.equal(sparkPaths([0, 0], 100, 20, 0).line, "M0,20L100,20");
  assert.equal(sparkPaths([null, NaN, 4], 100, 20, 0).line, "M0,20L50,20L100,0");
});
