import assert from "node:assert/strict";
import { test } from "node:test";
import {
  DESTRUCTIVE,
  confirmText,
  defaultPastRange,
  fromLocalInput,
  fromLocalParts,
  rangeLabel,
  toLocalInput,
  toLocalParts,
  windowLabel,
} from "../lib/controls.js";

test("datetime-local values round-trip to the second", () => {
  const ts = 1764057723; // whole seconds
  assert.equal(fromLocalInput(toLocalInput(ts)), ts);
  assert.match(toLocalInput(ts), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/);
});

test("bad datetime-local values give null, never NaN", () => {
  for (const bad of ["", "yesterday", "2026-13-99", null, undefined, 42]) {
    const v = fromLocalInput(bad);
    assert.ok(v === null || Number.isFinite(v), String(bad));
  }
  assert.equal(fromLocalInput("nonsense"), null);
  assert.equal(toLocalInput(Number.NaN), "");
});

test("range labels", () => {
  assert.equal(rangeLabel({ mode: "live", window: 900 }), "live · last 15 min");
  assert.equal(rangeLabel({ mode: "live", window: 3600 }), "live · last 1 h");
  assert.match(rangeLabel({ mode: "past", since: 0, until: 60 }), /^past · \d\d:\d\d:\d\d – \d\d:\d\d:\d\d$/);
  assert.equal(rangeLabel(undefined), "live · last 5 min");
  assert.equal(windowLabel(300), "5 min");
});

test("destructive actions ask a question that names the agent", () => {
  for (const action of DESTRUCTIVE) assert.ok(confirmText(action, "coding_agent").endsWith("?") || confirmText(action, "a").includes("."));
  assert.equal(confirmText("forget", "<b>x</b>").includes("<b>x</b>"), true); // shown via textContent
  assert.ok(!DESTRUCTIVE.has("pause"));
});

test("the default past range is the last five minutes of history", () => {
  assert.equal(defaultPastRange({ enabled: false }), null);
  assert.deepEqual(defaultPastRange({ enabled: true, first: 100, last: 1000 }), { since: 700, until: 1000 });
  assert.deepEqual(defaultPastRange({ enabled: true, first: 900, last: 1000 }), { since: 900, until: 1000 });
});

test("range ends as a date and a 24-hour time, round-trip to the second", () => {
  const ts = 1764057723;
  const { date, time } = toLocalParts(ts);
  assert.match(date, /^\d{4}-\d{2}-\d{2}$/);
  assert.match(time, /^([01]\d|2[0-3]):[0-5]\d:[0-5]\d$/); // 24-hour, never AM/PM
  assert.equal(fromLocalParts(date, time), ts);
  assert.equal(fromLocalParts(date, time.slice(0, 5)), fromLocalParts(date, `${time.slice(0, 5)}:00`)); // seconds optional
  assert.equal(fromLocalParts(date, "23:59:59") - fromLocalParts(date, "0:00"), 86399);
  for (const bad of ["", "12:61", "24:00", "7pm", "12:00:00 PM"]) assert.equal(fromLocalParts(date, bad), null, bad);
  assert.equal(fromLocalParts("", "12:00"), null);
  assert.deepEqual(toLocalParts(Number.NaN), { date: "", time: "" });
});
