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

test("the queue's throughput chart starts at the run's first busy minute, 10 minutes at least", async () => {
  const { recentMinutes } = await import("../queue_stats.js");
  const hour = Array(60).fill(0);
  assert.equal(recentMinutes(hour).length, 10); // nothing finished yet: the last 10 minutes
  const run = [...Array(57).fill(0), 4, 0, 9];
  assert.deepEqual(recentMinutes(run), run.slice(50)); // 3 busy minutes: still 10 shown
  const long = [...Array(20).fill(0), 1, ...Array(39).fill(2)];
  assert.deepEqual(recentMinutes(long), long.slice(20)); // from the first finished job on
  assert.deepEqual(recentMinutes([1, 2]), [1, 2]);
  assert.deepEqual(recentMinutes([]), []);
});
