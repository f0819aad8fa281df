import { test } from "node:test";
import assert from "node:assert/strict";
import {
  countsLine, filterAgents, heartbeatAge, isStale, matchesFilter, rolesOf, statusLabel, taskElapsed,
} from "../lib/agents.js";

const agents = [
  { name: "request_planner", role: "orchestrator", status: "idle", last_heartbeat: 100, stale: false },
  { name: "coding_agent", role: "executor", status: "active", task: "Implement #42", task_started: 90, last_heartbeat: 99, stale: false },
  { name: "git_operations", role: "service", status: "idle", last_heartbeat: 50, stale: false },
  { name: "rag_service", role: "service", status: "offline", last_heartbeat: 10, stale: true },
];

test("stale: from the hub flag, or aged locally past stale_after", () => {
  assert.equal(isStale(agents[0], 110, 30), false);
  assert.equal(isStale(agents[2], 110, 30), true); // 60 s without a heartbeat
  assert.equal(isStale(agents[3], 110, 30), true); // the hub says so
  assert.equal(isStale({ status: "offline", last_heartbeat: 0 }, 110, 30), false);
  assert.equal(isStale({ status: "idle" }, 110, 30), false); // never beat: not stale by age
});

test("elapsed task time and heartbeat age tick from hub time", () => {
  assert.equal(taskElapsed(agents[1], 102.5), 12.5);
  assert.equal(taskElapsed(agents[0], 102.5), null);
  assert.equal(heartbeatAge(agents[0], 103), 3);
  assert.equal(heartbeatAge({}, 103), null);
  assert.equal(heartbeatAge({ last_heartbeat: 200 }, 103), 0); // clock skew never goes negative
});

test("filters keep the snapshot order", () => {
  assert.deepEqual(filterAgents(agents, { status: "idle" }, 110, 30).map((a) => a.name), ["request_planner", "git_operations"]);
  assert.deepEqual(filterAgents(agents, { role: "service" }).map((a) => a.name), ["git_operations", "rag_service"]);
  assert.deepEqual(filterAgents(agents, { status: "stale" }, 110, 30).map((a) => a.name), ["git_operations", "rag_service"]);
  assert.deepEqual(filterAgents(agents, {}).length, 4);
  assert.equal(matchesFilter(agents[1], { status: "active", role: "executor" }), true);
  assert.equal(matchesFilter(agents[1], { status: "active", role: "service" }), false);
  assert.deepEqual(filterAgents(undefined, {}), []);
});

test("labels, roles, counts", () => {
  assert.equal(statusLabel("active"), "working");
  assert.equal(statusLabel("weird"), "weird");
  assert.deepEqual(rolesOf(agents), ["executor", "orchestrator", "service"]);
  assert.equal(countsLine({ idle: 2, active: 1, error: 0 }, 1), "2 idle \u00b7 1 working \u00b7 1 stale");
  assert.equal(countsLine({}), "no agents yet");
});

test("a paused agent's task time stands still at the pause", async () => {
  const { taskElapsed } = await import("../lib/agents.js");
  const a = { task: "work", task_started: 100, paused: true, paused_at: 104 };
  assert.equal(taskElapsed(a, 130), 4);
  assert.equal(taskElapsed({ ...a, paused: false, paused_at: null }, 130), 30);
  assert.equal(taskElapsed({ ...a, paused_at: 90 }, 130), 0); // held before its task started
});

test("admin notes show for a while, then go", async () => {
  const { noteText, NOTE_SECONDS } = await import("../lib/agents.js");
  const a = { note: { command: "mark_offline", ts: 100 } };
  assert.equal(noteText(a, 101), "marked offline by admin");
  assert.equal(noteText(a, 100 + NOTE_SECONDS + 1), "");
  assert.match(noteText({ note: { command: "forget", ts: 5 } }, 6), /forgotten/);
  assert.equal(noteText({ note: null }, 6), "");
});

test("header and cards count from one snapshot with one function", async () => {
  const { agentsLine } = await import("../lib/agents.js");
  const data = {
    stale_after: 30,
    counts: { idle: 3, active: 2 },
    agents: [
      { name: "a", status: "idle", last_heartbeat: 100 },
      { name: "b", status: "active", last_heartbeat: 60, paused: true },
    ],
  };
  assert.equal(agentsLine(data, 100), "3 idle \u00b7 2 working \u00b7 1 stale \u00b7 1 paused");
  assert.equal(agentsLine({}, 0), "no agents yet");
});
