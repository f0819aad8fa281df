import assert from "node:assert/strict";
import { test } from "node:test";
import { alertsBadge, fmtMetric, fmtWindow, formRequest, ruleState, severityLevel, sortFiring, thresholdText, unitOf } from "../lib/alerts.js";

test("the header badge counts firing alerts, coloured by the worst unacknowledged one", () => {
  assert.deepEqual(alertsBadge(undefined), { text: "none", level: "" });
  assert.deepEqual(alertsBadge({ firing: 0, unacked: 0, severity: null }), { text: "none", level: "" });
  assert.deepEqual(alertsBadge({ firing: 2, unacked: 2, severity: "critical" }), { text: "2 firing", level: "err" });
  assert.deepEqual(alertsBadge({ firing: 3, unacked: 1, severity: "warning" }), { text: "3 firing (2 acknowledged)", level: "warn" });
  assert.deepEqual(alertsBadge({ firing: 1, unacked: 0, severity: null }), { text: "1 firing (1 acknowledged)", level: "muted" });
  assert.equal(severityLevel("info"), "info");
  assert.equal(severityLevel("bogus"), "");
});

test("values are shown in their metric's unit", () => {
  assert.equal(fmtMetric(5.0234, "USD"), "$5.02");
  assert.equal(fmtMetric(0.25, "ratio"), "25%");
  assert.equal(fmtMetric(340, "ms"), "340 ms");
  assert.equal(fmtMetric(65, "s"), "1m 05s");
  assert.equal(fmtMetric(12345, "tokens/min"), "12.3k");
  assert.equal(fmtMetric(3, "errors"), "3");
  assert.equal(fmtMetric(null, "USD"), "\u2013");
  assert.equal(fmtWindow(3600), "1 h");
  assert.equal(fmtWindow(300), "5 min");
  assert.equal(fmtWindow(45), "45 s");
  assert.equal(fmtWindow(null), "");
  assert.equal(thresholdText({ op: "above", threshold: 5, window: 3600 }, "USD"), "> $5.00 over 1 h");
  assert.equal(thresholdText({ op: "below", threshold: 10 }, "tokens/min"), "< 10");
  assert.equal(unitOf([{ name: "cost_usd", unit: "USD" }], "cost_usd"), "USD");
  assert.equal(unitOf([], "my_function"), "");
});

test("firing alerts: unacknowledged first, then worst severity, then newest", () => {
  const sorted = sortFiring([
    { id: "a", severity: "critical", acked: true, fired_at: 5 },
    { id: "b", severity: "info", fired_at: 9 },
    { id: "c", severity: "warning", fired_at: 1 },
    { id: "d", severity: "warning", fired_at: 2 },
  ]);
  assert.deepEqual(sorted.map((a) => a.id), ["d", "c", "b", "a"]);
});

test("the form is sent as trimmed text; the kernel parses and refuses numbers", () => {
  assert.deepEqual(formRequest({ name: "  budget ", metric: "cost_usd", scope: "", op: "x", threshold: " 5 ", window: "", for: "10", severity: "", action: "" }), {
    name: "budget",
    metric: "cost_usd",
    scope: "hub",
    op: "above",
    threshold: "5",
    window: null,
    for: "10",
    severity: "warning",
    action: "show",
  });
  assert.equal(formRequest({ op: "below" }).op, "below");
});

test("a rule's state in words", () => {
  assert.deepEqual(ruleState({ broken: "raised 3 times", enabled: true }), ["broken: raised 3 times", "err"]);
  assert.deepEqual(ruleState({ enabled: false }), ["disabled", "muted"]);
  assert.deepEqual(ruleState({ enabled: true, state: "firing", firing: 2, severity: "critical" }), ["firing (2)", "err"]);
  assert.deepEqual(ruleState({ enabled: true, state: "pending" }), ["pending", "warn"]);
  assert.deepEqual(ruleState({ enabled: true, state: "ok" }), ["ok", "ok"]);
});
