import { test } from "node:test";
import assert from "node:assert/strict";
import { clockOffset, every, hubTime } from "../lib/clock.js";

test("offset ages values from a frame's now, whatever the hub clock", () => {
  // The hub runs a fake clock a day behind the wall clock.
  const offset = clockOffset(1_000_000, 1_086_400);
  assert.equal(offset, 86_400);
  assert.equal(hubTime(offset, 1_086_405), 1_000_005);
  assert.equal(clockOffset(undefined, 5), 0);
});

test("every() stops", async () => {
  let n = 0;
  const stop = every(5, () => {
    n += 1;
  });
  await new Promise((r) => setTimeout(r, 30));
  stop();
  const seen = n;
  await new Promise((r) => setTimeout(r, 20));
  assert.ok(seen >= 1);
  assert.equal(n, seen);
});
