import assert from "node:assert/strict";
import { test } from "node:test";
import { healthParts } from "../dashboard.js";

const labels = (parts) => parts.map(([label]) => label);

test("a healthy hub without history shows the five basic fields", () => {
  const parts = healthParts({ events_per_second: 12.5, dropped: 0, rejected: 0, loop_lag_ms: 3, stale_agents: [] });
  assert.deepEqual(labels(parts), ["events/s", "dropped", "rejected", "loop lag", "stale agents"]);
  assert.ok(parts.every(([, , level]) => level === ""));
});

test("history: stored count, or degraded with its error", () => {
  const ok = healthParts({ history: { degraded: false, written: 1234 } }).at(-1);
  assert.equal(ok[0], "history");
  assert.equal(ok[2], "");
  const bad = healthParts({ history: { degraded: true, error: "database is locked" } }).at(-1);
  assert.deepEqual([bad[0], bad[1], bad[2]], ["history", "degraded: database is locked", "err"]);
});

test("contained faults appear only once they happened", () => {
  const parts = healthParts({ render_errors: 1, render_interrupts: 2, task_restarts: { render: 1, sampler: 2 } });
  const [label, text, level] = parts.at(-1);
  assert.equal(label, "contained");
  assert.equal(level, "warn");
  assert.match(text, /1 errors, 2 interrupts, 3 task restarts/);
});

test("collectors in trouble and disconnected sources are shown", () => {
  const parts = healthParts({
    collectors: { memory: "timed out (12 s)" },
    sources: [{ url: "redis://***@host:6379/0", stream: "codeur:events", state: "reconnecting", connected: false, last_error: "Connection refused" }],
  });
  const byLabel = Object.fromEntries(parts.map(([label, text, level]) => [label, [text, level]]));
  assert.deepEqual(byLabel.collectors, ["memory: timed out (12 s)", "warn"]);
  assert.deepEqual(byLabel["codeur:events"], ["reconnecting: Connection refused", "err"]);
});

test("the run state: live, past range of a rebuilt hub, or stopped with how to start", async () => {
  const { runState } = await import("../dashboard.js");
  assert.deepEqual(runState({ running: true }), ["true", "live"]);
  const [mode, text] = runState({ running: false, past: { since: 0, until: 300, events: 1234 } });
  assert.equal(mode, "past");
  assert.match(text, /^past \d\d:\d\d:\d\d\u2013\d\d:\d\d:\d\d \u00b7 1,234 events$/);
  const [stopped, hint] = runState({ running: false, past: null });
  assert.equal(stopped, "false");
  assert.match(hint, /hub\.start\(\)/);
});
