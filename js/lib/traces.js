// The trace view's pure logic (no DOM): applying the kernel's patches to a trace, ordering spans
// into a tree, the critical path, the time axis, labels and colours. Tested with `node --test`.
//
// A patch (core/traces.py's TraceEncoder) carries rows as columns: i (or i0, the first of
// consecutive indices), p (parent index, -1 for none), n/k/a/st (indices into the string table:
// name, kind, agent, status), s (start, ms after t0, null when unknown), d (duration in ms, null
// while open). `strings` extends the table; `reset` starts over (another trace).

export const KINDS = {
  job: "JOB",
  agent: "AGENT",
  task: "TASK",
  llm: "LLM",
  tool: "TOOL",
  retrieval: "RAG",
  embedding: "EMB",
  other: "SPAN",
};

/** An empty trace state. */
export function emptyTrace() {
  return { trace: null, t0: null, strings: [], spans: [], links: [], summary: null, missing: false, n: 0 };
}

/** The state after applying `patch` to `state` (a new object when the trace changes). */
export function applyPatch(state, patch) {
  if (!patch || typeof patch !== "object") return state;
  let st = state;
  if (patch.reset || !st || st.trace !== patch.trace) st = emptyTrace();
  st.trace = patch.trace ?? null;
  st.missing = Boolean(patch.missing);
  if (typeof patch.t0 === "number") st.t0 = patch.t0;
  if (Array.isArray(patch.strings)) st.strings.push(...patch.strings);
  if (patch.summary !== undefined) st.summary = patch.summary;
  const rows = patch.rows ?? {};
  const count = Array.isArray(rows.p) ? rows.p.length : 0;
  const str = (k) => (Number.isInteger(k) && k >= 0 ? st.strings[k] ?? null : null);
  for (let j = 0; j < count; j += 1) {
    const i = Array.isArray(rows.i) ? rows.i[j] : rows.i0 + j;
    if (!Number.isInteger(i) || i < 0) continue;
    st.spans[i] = {
      i,
      p: Number.isInteger(rows.p[j]) ? rows.p[j] : -1,
      name: str(rows.n?.[j]) ?? "span",
      kind: str(rows.k?.[j]) ?? "other",
      agent: str(rows.a?.[j]),
      status: str(rows.st?.[j]) ?? "running",
      s: typeof rows.s?.[j] === "number" ? rows.s[j] : null,
      d: typeof rows.d?.[j] === "number" ? rows.d[j] : null,
    };
  }
  if (Array.isArray(patch.links)) {
    st.links = patch.links.map(([from, to, kind, t]) => ({ from, to, kind: str(kind) ?? "message", t }));
  }
  st.n += 1;
  return st;
}

/** A span's end in ms after t0: `nowMs` while it is open. */
export function endOf(span, nowMs) {
  if (span.d === null) return span.s === null ? nowMs : Math.max(span.s, nowMs);
  return (span.s ?? 0) + span.d;
}

/** The spans present, their children by parent index, and the roots (spans whose parent is
 * unknown or themselves), in input order: what the layout and the critical path both walk. */
function spanTree(spans) {
  const present = spans.filter(Boolean);
  const children = new Map();
  const roots = [];
  for (const sp of present) {
    const parent = sp.p >= 0 && sp.p !== sp.i ? spans[sp.p] : undefined;
    if (parent) {
      if (!children.has(parent.i)) children.set(parent.i, []);
      children.get(parent.i).push(sp);
    } else {
      roots.push(sp);
    }
  }
  return { present, children, roots };
}

/** Rows in display order: depth-first, children by start; spans whose parent is unknown are
 * roots. Returns [{span, depth}]. Never loops, whatever the parent indices say. */
export function layout(spans) {
  const { present, children, roots } = spanTree(spans);
  const byStart = (a, b) => (a.s ?? Infinity) - (b.s ?? Infinity) || a.i - b.i;
  const out = [];
  const seen = new Set();
  const visit = (sp, depth) => {
    // explicit stack: a 2,000-deep chain must not overflow the call stack
    const stack = [[sp, depth]];
    while (stack.length) {
      const [cur, d] = stack.pop();
      if (seen.has(cur.i)) continue;
      seen.add(cur.i);
      out.push({ span: cur, depth: d });
      const kids = (children.get(cur.i) ?? []).slice().sort(byStart);
      for (let k = kids.length - 1; k >= 0; k -= 1) stack.push([kids[k], d + 1]);
    }
  };
  roots.sort(byStart).forEach((r) => visit(r, 0));
  // A cycle (a corrupt parent chain) leaves spans unreached: show them as roots.
  for (const sp of present) if (!seen.has(sp.i)) visit(sp, 0);
  return out;
}

const SLACK_MS = 2;

/** The critical path: the spans that, end to end, make the trace as long as it is (the
 * last-finishing child of each span on the path, then the one that finished before that one
 * started, and so on). Open spans end at `nowMs`. Returns a Set of span indices. */
export function criticalPath(spans, nowMs) {
  const { children, roots } = spanTree(spans);
  const out = new Set();
  const walk = (list, from, to) => {
    // list: siblings; keep those ending last, back to front, without overlapping
    const todo = [[list, from, to]];
    let guard = 0;
    while (todo.length && guard < 100000) {
      guard += 1;
      const [items, lo, hi] = todo.pop();
      const sorted = items
        .filter((sp) => sp.s !== null)
        .map((sp) => ({ sp, a: sp.s, b: endOf(sp, nowMs) }))
        .sort((x, y) => y.b - x.b);
      let cursor = hi;
      for (const { sp, a, b } of sorted) {
        // Times come rounded to the ms: a child may seem to end a ms after its parent.
        if (b > cursor + SLACK_MS || b < lo || out.has(sp.i)) continue;
        out.add(sp.i);
        const kids = children.get(sp.i);
        if (kids) todo.push([kids, a, b]);
        cursor = a;
        if (cursor <= lo) break;
      }
    }
  };
  if (roots.length) {
    const ends = roots.filter((r) => r.s !== null).map((r) => endOf(r, nowMs));
    walk(roots, -Infinity, ends.length ? Math.max(...ends) : nowMs);
  }
  return out;
}

/** The axis length in ms: the trace's extent with headroom, rounded to a readable step, so that
 * a running trace re-scales now and then instead of every frame. */
export function axisEnd(extentMs) {
  const x = Math.max(1, extentMs) * 1.1;
  const steps = [1, 2, 5];
  let base = 1;
  while (base * 10 <= x) base *= 10;
  for (const m of steps) if (m * base >= x) return m * base;
  return 10 * base;
}

/** Tick positions (ms) for an axis of `endMs`: about five round ones. */
export function ticks(endMs) {
  const raw = endMs / 5;
  let base = 1;
  while (base * 10 <= raw) base *= 10;
  const step = [1, 2, 5, 10].map((m) => m * base).find((s) => s >= raw) ?? 10 * base;
  const out = [];
  for (let t = 0; t <= endMs + 1e-9; t += step) out.push(t);
  return out;
}

/** The extent of a trace in ms after t0 (latest end, open spans at `nowMs`). */
export function extent(spans, nowMs) {
  let hi = 0;
  for (const sp of spans) if (sp) hi = Math.max(hi, endOf(sp, nowMs));
  return hi;
}

/** The earliest start in ms (spans that started before t0 are negative). */
export function earliest(spans) {
  let lo = 0;
  for (const sp of spans) if (sp && sp.s !== null && sp.s < lo) lo = sp.s;
  return lo;
}

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
  "#7f7f7f", "#3f51b5", "#009688", "#795548"];

/** Colours given to agents in the order they are first seen (distinct for the first twelve,
 * then reused), stable for the page's life: `book(agent)`. */
export function colourBook() {
  const seen = new Map();
  return (agent) => {
    const key = String(agent ?? "");
    if (!key) return "#9e9e9e";
    let c = seen.get(key);
    if (c === undefined) {
      c = PALETTE[seen.size % PALETTE.length];
      seen.set(key, c);
    }
    return c;
  };
}

/** A colour per agent name from its hash (red is kept for failures). */
export function agentColour(agent) {
  const key = String(agent ?? "");
  if (!key) return "#9e9e9e";
  let hsh = 0;
  for (const ch of key) hsh = (hsh * 31 + ch.codePointAt(0)) >>> 0;
  return PALETTE[hsh % PALETTE.length];
}

/** Short label of a span kind. */
export function kindLabel(kind) {
  return KINDS[kind] ?? "SPAN";
}

/** A trace's cost as text: "$0.012", "cost unknown", or "$0.012 + ?" when some calls are unknown. */
export function costText(cost, unknown, fmtCost) {
  const c = typeof cost === "number" && Number.isFinite(cost) ? cost : 0;
  if (unknown > 0 && c === 0) return "cost unknown";
  if (unknown > 0) return `${fmtCost(c)} + ?`;
  return fmtCost(c);
}
