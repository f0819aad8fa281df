// LogTail: the newest log lines with level colours, filters and pause/resume.
// Model traits: tail (how the lines shown change: {n, reset, lines, keep}: the whole window when
// `reset`, else lines to append, keeping the last `keep`), total, dropped, capacity, error (bad
// regex), and the filters the user edits here: level, source, text, regex, follow.
// Filtering runs in Python over the whole buffer; the DOM never holds more than `limit` rows and
// is updated incrementally (drop from the top, append at the bottom).
import { debounce, h, setAttr, setOptions, setText, style } from "./lib/dom.js";
import { ellipsis, fmtClock, fmtInt } from "./lib/format.js";
import { LEVELS, diffLines, levelClass, mergeSources } from "./lib/lines.js";
import { THEME_CSS } from "./lib/theme.js";

const CSS = `
.cw-log-body { max-height: var(--cw-log-height, 320px); overflow-y: auto; font-family: var(--cw-mono);
  font-size: var(--cw-size-small); border-top: 1px solid var(--cw-border); }
.cw-log-row { display: grid; grid-template-columns: 5.2em 5.8em minmax(4em, 11em) 1fr; gap: 0 8px;
  padding: 1px 2px; border-bottom: 1px solid transparent; }
.cw-log-row:hover { background: var(--cw-bg2); }
.cw-log-row > span { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.cw-log-msg { white-space: pre-wrap !important; word-break: break-word; }
.cw-log-time { color: var(--cw-fg3); }
.cw-log-src { color: var(--cw-fg2); }
.cw-log-lvl { font-weight: 600; }
.cw-log-row[data-level="debug"] .cw-log-lvl { color: var(--cw-fg3); }
.cw-log-row[data-level="info"] .cw-log-lvl { color: var(--cw-info); }
.cw-log-row[data-level="warning"] .cw-log-lvl { color: var(--cw-warn); }
.cw-log-row[data-level="error"] .cw-log-lvl, .cw-log-row[data-level="critical"] .cw-log-lvl { color: var(--cw-err); }
.cw-log-row[data-level="critical"] { background: color-mix(in srgb, var(--cw-err) 12%, transparent); }
.cw-log-exc { grid-column: 1 / -1; margin: 0 0 2px 1em; }
.cw-log-exc pre { margin: 2px 0; white-space: pre-wrap; color: var(--cw-err); }
.cw-log-text { width: 14em; }
.cw-log-error { color: var(--cw-err); font-size: var(--cw-size-small); }
.cw-log-empty { color: var(--cw-fg2); padding: 8px 4px; }
.cw-log-new { color: var(--cw-accent); font-size: var(--cw-size-small); }
.cw-log-row[data-trace] { cursor: pointer; }
.cw-log-trace { color: var(--cw-accent); margin-left: 6px; font-size: var(--cw-size-small); white-space: nowrap; }
`;

/** The window (lines, oldest first) after one `tail` message applied to `shown`. */
export function applyTail(shown, tail) {
  const lines = Array.isArray(tail?.lines) ? tail.lines : [];
  if (!tail || tail.reset || !Array.isArray(shown)) return lines;
  const merged = shown.concat(lines);
  const keep = Number.isInteger(tail.keep) && tail.keep >= 0 ? tail.keep : merged.length;
  return merged.slice(Math.max(0, merged.length - keep));
}

// The window each `tail` message leads to, shared by every view of a model (and kept up to date
// by `initialize` while none is shown), so a view opened later starts from the current lines.
// Keyed by the message object: the model replaces it on every message, so old ones are dropped.
const windows = new WeakMap();

/** A tracker of one listener's last `tail`: `current()` gives the window for the model's tail. */
export function tailTracker(model, store = windows) {
  let last = null;
  return {
    current() {
      const tail = model.get("tail");
      if (!tail || typeof tail !== "object") return [];
      let shown = store.get(tail);
      if (shown === undefined) {
        // An append applies to the window of the message before it; a tracker that has not seen
        // one (created after it) has only this message: an append alone is then the best known.
        shown = applyTail(last !== null && last !== tail ? store.get(last) : undefined, tail);
        store.set(tail, shown);
      }
      last = tail;
      return shown;
    },
  };
}

function makeRow(line) {
  const level = String(line.level ?? "INFO").toUpperCase();
  const msg = String(line.message ?? "");
  const trace = typeof line.trace === "string" && line.trace ? line.trace : null;
  const message = h("span", { class: "cw-log-msg", text: msg, title: line.function ? `${line.thread ?? ""} ${line.function}` : null });
  // A line written inside a job's work: clicking it opens that trace (the dashboard's TraceView).
  if (trace) message.append(h("span", { class: "cw-log-trace", text: "\u2934 trace", title: `open trace ${trace}` }));
  const row = h(
    "div",
    { class: "cw-log-row", "data-level": levelClass(level), "data-seq": line.seq, "data-trace": trace },
    h("span", { class: "cw-log-time", text: fmtClock(line.ts) }),
    h("span", { class: "cw-log-lvl", text: level }),
    h("span", { class: "cw-log-src", text: line.source ?? "", title: line.source ?? "" }),
    message,
  );
  if (line.exc) {
    row.append(
      h(
        "details",
        { class: "cw-log-exc" },
        h("summary", { text: ellipsis(String(line.exc).split("\n").filter((x) => x).pop() ?? "traceback", 120) }),
        h("pre", { text: String(line.exc) }),
      ),
    );
  }
  return row;
}

function render({ model, el }) {
  const levelSel = h("select", { "aria-label": "minimum level" });
  setOptions(levelSel, [["", "all levels"], ...LEVELS.map((l) => [l, `${l}+`])], model.get("level") ?? "");
  const sourceSel = h("select", { "aria-label": "source" });
  const text = h("input", { type: "text", class: "cw-log-text", placeholder: "search\u2026", "aria-label": "search text" });
  text.value = model.get("text") ?? "";
  const regex = h("input", { type: "checkbox", "aria-label": "regular expression" });
  regex.checked = Boolean(model.get("regex"));
  const pause = h("button", { "aria-pressed": "false" });
  const counts = h("span", { class: "cw-muted cw-small cw-num" });
  const fresh = h("span", { class: "cw-log-new" });
  const error = h("div", { class: "cw-log-error" });
  const body = h("div", { class: "cw-log-body", role: "log", "aria-live": "off" });
  const empty = h("div", { class: "cw-log-empty", text: "No log lines yet." });
  const root = h(
    "div",
    { class: "cw cw-log-tail" },
    h(
      "div",
      { class: "cw-toolbar" },
      h("span", { class: "cw-title", text: "Logs" }),
      levelSel,
      sourceSel,
      text,
      h("label", { class: "cw-small", title: "treat the search text as a regular expression" }, regex, " regex"),
      pause,
      fresh,
      h("span", { class: "cw-spacer" }),
      counts,
    ),
    error,
    body,
    empty,
  );
  el.replaceChildren(style(THEME_CSS + CSS), root);

  let seqs = []; // seq of each row on screen, oldest first (parallel to body.children)
  let sources = [];
  let pausedAt = null; // total when paused, to show how many lines arrived since

  const save = (key, value) => {
    model.set(key, value);
    model.save_changes();
  };
  levelSel.addEventListener("change", () => save("level", levelSel.value));
  sourceSel.addEventListener("change", () => save("source", sourceSel.value));
  const sendText = debounce(() => save("text", text.value), 250);
  text.addEventListener("input", sendText);
  regex.addEventListener("change", () => save("regex", regex.checked));
  pause.addEventListener("click", () => save("follow", !model.get("follow")));
  let clicks = 0;
  body.addEventListener("click", (e) => {
    const row = e.target instanceof Element ? e.target.closest(".cw-log-row[data-trace]") : null;
    if (!row || window.getSelection?.().toString()) return; // selecting text is not a click
    clicks += 1;
    save("open_trace", { trace: row.getAttribute("data-trace"), n: Date.now() + clicks });
  });

  const tracker = tailTracker(model);

  function updateLines() {
    const lines = tracker.current();
    const atBottom = body.scrollHeight - body.scrollTop - body.clientHeight < 24;
    const d = diffLines(seqs, lines);
    if (d.reset) {
      body.replaceChildren(...lines.map(makeRow));
    } else {
      for (let i = 0; i < d.removeFromTop; i += 1) body.firstElementChild?.remove();
      if (d.append.length) body.append(...d.append.map(makeRow));
    }
    seqs = lines.map((l) => l.seq);
    empty.hidden = lines.length > 0;
    setText(empty, model.get("total") ? "No line matches the filter." : "No log lines yet.");
    sources = mergeSources(sources, lines);
    updateFilters();
    fitRows();
    // Follow the tail unless the reader scrolled up to read something.
    if (model.get("follow") && (atBottom || d.reset)) body.scrollTop = body.scrollHeight;
    updateCounts();
  }

  // The body shows whole rows: its height is a multiple of a row's, so when it follows the tail
  // the top row is not cut in half under the toolbar.
  let rowHeight = 0;
  function fitRows() {
    const target = model.get("height") || 320;
    if (!rowHeight) {
      const row = body.querySelector(".cw-log-row:not(:has(details))");
      rowHeight = row ? row.getBoundingClientRect().height : 0;
    }
    if (!(rowHeight > 0)) return;
    const borders = body.offsetHeight - body.clientHeight;
    const rows = Math.max(1, Math.floor((target - borders) / rowHeight));
    body.style.maxHeight = `${rows * rowHeight + borders}px`;
  }

  function updateFilters() {
    const src = model.get("source") ?? "";
    const opts = [["", "all sources"], ...sources.map((x) => [x, x])];
    if (src && !sources.includes(src)) opts.push([src, src]);
    setOptions(sourceSel, opts, src);
    setOptions(levelSel, [["", "all levels"], ...LEVELS.map((l) => [l, `${l}+`])], model.get("level") ?? "");
    if (document.activeElement !== text && text.value !== (model.get("text") ?? "")) text.value = model.get("text") ?? "";
    regex.checked = Boolean(model.get("regex"));
  }

  function updateCounts() {
    const total = model.get("total") ?? 0;
    const dropped = model.get("dropped") ?? 0;
    const shown = seqs.length;
    const parts = [`${fmtInt(shown)} shown`, `${fmtInt(total)} total`];
    if (dropped) parts.push(`${fmtInt(dropped)} rotated out`);
    setText(counts, parts.join(" \u00b7 "));
    const following = Boolean(model.get("follow"));
    if (following) pausedAt = null;
    else if (pausedAt === null) pausedAt = total;
    setText(pause, following ? "pause" : "resume");
    setAttr(pause, "aria-pressed", following ? "false" : "true");
    setText(fresh, !following && total > pausedAt ? `+${fmtInt(total - pausedAt)} new` : "");
  }

  function updateError() {
    const e = model.get("error") ?? "";
    setText(error, e);
    error.hidden = !e;
  }

  const updateHeight = () => {
    root.style.setProperty("--cw-log-height", `${model.get("height") || 320}px`);
    fitRows();
  };

  model.on("change:tail", updateLines);
  model.on("change:total change:dropped change:follow", updateCounts);
  model.on("change:level change:source change:text change:regex", updateFilters);
  model.on("change:error", updateError);
  model.on("change:height", updateHeight);
  updateHeight();
  updateError();
  updateLines();

  return () => {
    sendText.cancel();
    model.off("change:tail", updateLines);
    model.off("change:total change:dropped change:follow", updateCounts);
    model.off("change:level change:source change:text change:regex", updateFilters);
    model.off("change:error", updateError);
    model.off("change:height", updateHeight);
  };
}

function initialize({ model }) {
  // Applies every message while the model lives, shown or not (the views' trackers then find
  // the window ready); the first state is a whole window.
  const tracker = tailTracker(model);
  tracker.current();
  const apply = () => tracker.current();
  model.on("change:tail", apply);
  return () => model.off("change:tail", apply);
}

export default { initialize, render };
