// AgentGraphView: who talks to whom, drawn by cytoscape.js (bundled).
// Model traits: topology (the `graph` snapshot, edges as compact rows; changes rarely), flows
// (per frame: parallel arrays indexed like the topology's edge rows), nodes (agent name ->
// {status, stale}), selected (node id, synced both ways), height (px).
// Topology changes are applied as diffs with the given positions (preset layout): nothing is ever
// re-laid out. Between frames the browser decays each edge's intensity with the snapshot's
// half-life and animates active edges (marching dashes), so an idle graph needs no messages.
// Per frame and per animation step only the active edges are visited (not every edge); with
// many of them the animation steps less often (15, then 6 steps/s), only the busiest 40 carry a
// rate label, and a flows frame is drawn together with the next step (one redraw), so the page
// keeps its frame rate with 1,000 animated edges.
import cytoscape from "cytoscape";
import { clockOffset, hubTime } from "./lib/clock.js";
import { h, setText, style } from "./lib/dom.js";
import {
  ACTIVE_THRESHOLD,
  BASE_WIDTH,
  LABEL_MAX,
  MAX_WIDTH,
  dashSpeed,
  decay,
  decodeFlows,
  diffTopology,
  edgeLabel,
  prettyEdge,
  roleColour,
  shownWidth,
  statsLine,
} from "./lib/flows.js";
import { DASH, advanceDash, dashIndex, dashOffsets, decodeTopology, edgeBend, frameInterval, scaled } from "./lib/graph.js";
import { fmtRate } from "./lib/format.js";
import { THEME_CSS } from "./lib/theme.js";

const CSS = `
.cw-graph-canvas { position: relative; width: 100%; border-radius: 4px; background: var(--cw-bg); overflow: hidden; }
.cw-graph-stats { margin-top: 4px; font-size: var(--cw-size-small); color: var(--cw-fg2); }
.cw-graph-legend { display: flex; flex-wrap: wrap; gap: 4px 10px; font-size: var(--cw-size-small); color: var(--cw-fg2); }
.cw-graph-legend .cw-dot { margin-right: 3px; vertical-align: -1px; }
`;

// Colours the canvas needs as concrete values (cytoscape cannot read CSS variables).
const THEME_VARS = ["--cw-fg", "--cw-fg2", "--cw-bg", "--cw-accent", "--cw-ok", "--cw-warn", "--cw-err",
  "--cw-info", "--cw-muted"];
const FALLBACKS = { "--cw-fg": "#222", "--cw-fg2": "#555", "--cw-bg": "#fff", "--cw-accent": "#1976d2",
  "--cw-ok": "#2e7d32", "--cw-warn": "#ef6c00", "--cw-err": "#d32f2f", "--cw-info": "#0288d1", "--cw-muted": "#9e9e9e" };

/** Resolves the theme variables to rgb() strings through a probe element's computed colour. */
function themeColours(root) {
  const probe = h("span", { style: { display: "none" } });
  root.append(probe);
  const out = {};
  for (const v of THEME_VARS) {
    probe.style.color = "";
    probe.style.color = `var(${v})`;
    const c = getComputedStyle(probe).color;
    out[v] = /^(rgba?\(|#)/.test(c) ? c : FALLBACKS[v];
  }
  probe.remove();
  return out;
}

// Sizes are in screen pixels: the stylesheet is rebuilt with k = 1 / zoom whenever the zoom
// changes, so zooming out to fit a wide graph spreads the nodes without shrinking the labels.
function stylesheet(c, k = 1) {
  const px = (n) => scaled(n, k);
  return [
    {
      selector: "node",
      style: {
        "background-color": "data(color)",
        label: "data(label)",
        color: c["--cw-fg"],
        "font-size": px(11),
        "text-valign": "bottom",
        "text-margin-y": px(4),
        // A backdrop, not an outline: edges passing under a name never cut through it.
        "text-background-color": c["--cw-bg"],
        "text-background-opacity": 0.9,
        "text-background-padding": px(2),
        "text-background-shape": "roundrectangle",
        "z-index": 20,
        width: px(26),
        height: px(26),
        "border-width": px(3),
        "border-color": c["--cw-muted"],
      },
    },
    { selector: "node.st-idle", style: { "border-color": c["--cw-info"] } },
    { selector: "node.st-active", style: { "border-color": c["--cw-ok"], "border-width": px(4) } },
    { selector: "node.st-error", style: { "border-color": c["--cw-err"], "border-width": px(5) } },
    { selector: "node.st-initializing", style: { "border-color": c["--cw-accent"] } },
    { selector: "node.st-offline", style: { "border-color": c["--cw-muted"], "border-style": "dashed", opacity: 0.6 } },
    { selector: "node.st-stale", style: { "border-color": c["--cw-warn"], "border-style": "dashed" } },
    { selector: "node.st-paused", style: { "border-color": c["--cw-warn"], "border-style": "double", "border-width": px(6) } },
    {
      selector: "node.picked",
      style: { "overlay-color": c["--cw-accent"], "overlay-opacity": 0.25, "overlay-padding": px(7) },
    },
    {
      selector: "edge",
      style: {
        width: `mapData(width, 0, ${MAX_WIDTH}, 0, ${px(MAX_WIDTH)})`,
        // Each edge bends by its own `bend` (lib/graph.js edgeBend): a → b and b → a curve to
        // opposite sides, and an edge bends around the nodes its straight line would cross.
        "curve-style": "unbundled-bezier",
        "control-point-distances": (e) => e.data("bend") ?? 0,
        "control-point-weights": 0.5,
        "z-index": 1,
        "line-color": c["--cw-muted"],
        "target-arrow-color": c["--cw-muted"],
        "target-arrow-shape": "triangle",
        "arrow-scale": 0.9,
        opacity: 0.7,
        // The rate sits level on the middle of the curve, on its own backdrop: away from the
        // arrowhead, readable over the dashes.
        label: "data(label)",
        "font-size": px(10),
        color: c["--cw-fg"],
        "text-rotation": "none",
        "text-background-color": c["--cw-bg"],
        "text-background-opacity": 0.9,
        "text-background-padding": px(2),
        "text-background-shape": "roundrectangle",
        "text-border-color": c["--cw-muted"],
        "text-border-width": px(0.5),
        "text-border-opacity": 0.6,
      },
    },
    {
      selector: "edge.active",
      style: {
        "line-color": c["--cw-accent"],
        "target-arrow-color": c["--cw-accent"],
        "line-style": "dashed",
        "line-dash-pattern": DASH.map(px),
        opacity: 1,
      },
    },
    {
      selector: "edge.busiest",
      style: { "line-color": c["--cw-warn"], "target-arrow-color": c["--cw-warn"], "z-index": 10, opacity: 1 },
    },
  ];
}

function nodeElement(n) {
  return {
    group: "nodes",
    data: { id: String(n.id), label: String(n.label ?? n.id), base: String(n.label ?? n.id), role: n.role ?? "", color: roleColour(n.role) },
    position: { x: Number(n.x) || 0, y: Number(n.y) || 0 },
  };
}

/** A node's label: its name, and "(paused)" while an admin pause holds it. */
function nodeLabel(base, cls) {
  return cls === "st-paused" ? `${base} (paused)` : base;
}

function edgeElement(e) {
  return {
    group: "edges",
    data: { id: e.id, source: e.source, target: e.target, type: e.type ?? "", width: BASE_WIDTH, label: "" },
  };
}

function render({ model, el }) {
  const container = h("div", { class: "cw-graph-canvas" });
  const stats = h("div", { class: "cw-graph-stats" });
  const legend = h("div", { class: "cw-graph-legend" });
  const fitBtn = h("button", { text: "fit", title: "fit the graph to the view" });
  const root = h(
    "div",
    { class: "cw cw-agent-graph" },
    h("div", { class: "cw-toolbar" }, h("span", { class: "cw-title", text: "Agent graph" }), legend,
      h("span", { class: "cw-spacer" }), fitBtn),
    container,
    stats,
  );
  el.replaceChildren(style(THEME_CSS + CSS), root);
  container.style.height = `${model.get("height") || 360}px`;

  const cy = cytoscape({
    container,
    elements: [],
    layout: { name: "preset" },
    style: stylesheet(FALLBACKS),
    minZoom: 0.2,
    maxZoom: 3,
    autounselectify: true, // selection lives in the model's `selected` trait, shown as .picked
    boxSelectionEnabled: false,
  });

  let shown = { nodes: new Map(), edges: new Map() };
  let states = new Map(); // edge id -> {intensity, rate, lastMinute} at the last frame's now
  let active = []; // [{id, ele, intensity, ...}]: the edges the last flows frame lists
  let animated = new Set(); // ids of the edges drawn active (or wider than idle) right now
  let labelled = new Set(); // ids of the edges with a rate label
  let busiestId = "";
  let flowNow = 0;
  let halfLife = 2;
  let offset = 0;
  let fitted = false;
  let raf = 0;
  let destroyed = false;
  let lastFrame = 0;
  const dashPhase = new Map(); // edge id -> phase of its dashes, screen px (lib/graph.js)
  const dashShown = new Map(); // edge id -> index into `offsets` of its line-dash-offset now
  let offsets = dashOffsets(1); // the offsets of the current stylesheet's scale
  // Edge ids of the topology's rows (the index space of the flows' `edges`), decoded once per
  // topology object: flows may arrive before or after their topology's change event.
  let idsFor = null;
  let edgeIds = [];
  function topologyIds() {
    const topo = model.get("topology") ?? {};
    if (topo !== idsFor) {
      idsFor = topo;
      edgeIds = decodeTopology(topo).ids;
    }
    return edgeIds;
  }

  let colours = FALLBACKS;
  let restyle = 0;
  function setStyle() {
    const k = 1 / cy.zoom();
    cy.style(stylesheet(colours, k));
    // The dash offsets follow the pattern's scale; a new stylesheet starts an empty parse cache.
    offsets = dashOffsets(k);
    dashShown.clear();
  }
  function applyTheme() {
    colours = themeColours(root);
    setStyle();
  }
  function onZoom() {
    if (!restyle) {
      restyle = requestAnimationFrame(() => {
        restyle = 0;
        if (!destroyed) setStyle();
      });
    }
  }

  function applyTopology() {
    const topo = decodeTopology(model.get("topology") ?? {});
    const d = diffTopology(shown, topo);
    let outside = false;
    const ext = cy.extent();
    cy.batch(() => {
      for (const id of d.removeEdges) cy.getElementById(id).remove();
      for (const id of d.removeNodes) cy.getElementById(id).remove();
      for (const n of d.addNodes) {
        const ele = cy.add(nodeElement(n));
        const p = ele.position();
        if (p.x < ext.x1 || p.x > ext.x2 || p.y < ext.y1 || p.y > ext.y2) outside = true;
      }
      for (const n of d.updateNodes) {
        const ele = cy.getElementById(String(n.id));
        const base = String(n.label ?? n.id);
        ele.data({ label: nodeLabel(base, ele.data("st")), base, role: n.role ?? "", color: roleColour(n.role) });
      }
      for (const e of [...d.addEdges, ...d.updateEdges]) {
        const ele = cy.getElementById(e.id);
        if (ele.nonempty()) {
          ele.data("type", e.type ?? "");
        } else if (cy.getElementById(e.source).nonempty() && cy.getElementById(e.target).nonempty()) {
          cy.add(edgeElement(e));
        }
      }
    });
    shown = { nodes: d.nodes, edges: d.edges };
    if (d.addNodes.length || d.removeNodes.length) bendEdges(cy.edges());
    else if (d.addEdges.length) bendEdges(cy.edges().filter((e) => !e.data("bend")));
    legendFor(topo.nodes);
    // Positions are never changed; only the viewport follows when a new node lands off-screen.
    if (!fitted || (outside && d.addNodes.length)) fit();
    applyFlows();
    applySelected();
  }

  // Positions never change, so an edge's bend is computed when it (or a node) is added.
  function bendEdges(edges) {
    const points = cy.nodes().map((n) => ({ id: n.id(), ...n.position() }));
    cy.batch(() => {
      edges.forEach((e) => {
        if (e.removed() || e.source().empty() || e.target().empty()) return;
        const a = e.source().position();
        const b = e.target().position();
        const others = points.filter((p) => p.id !== e.source().id() && p.id !== e.target().id());
        e.data("bend", edgeBend(a, b, others));
      });
    });
  }

  function legendFor(nodes) {
    const roles = [...new Set(nodes.map((n) => n.role).filter((r) => r))].sort();
    const key = roles.join("\u0000");
    if (legend.dataset.key === key) return;
    legend.dataset.key = key;
    legend.replaceChildren(
      ...roles.map((r) => h("span", {}, h("span", { class: "cw-dot", style: { background: roleColour(r) } }), r)),
    );
  }

  // The drawing fills the panel: fitted on first draw and again whenever the panel is resized,
  // until a person zooms or pans (then the view is theirs; "fit" hands it back).
  let fitting = false;
  let userMoved = false;
  function fit() {
    if (container.clientWidth > 0 && container.clientHeight > 0 && cy.nodes().nonempty()) {
      fitting = true;
      try {
        cy.resize();
        cy.fit(undefined, 24);
      } finally {
        fitting = false;
      }
      fitted = true;
    }
  }

  // A flows frame (up to 10 a second) is read at once, and drawn with the next animation step:
  // every change to cytoscape's elements costs a redraw of the whole canvas, so the frame's
  // labels and classes and the step's dashes go into one batch, one redraw.
  let flowsPending = false;
  function applyFlows() {
    const flows = model.get("flows") ?? {};
    offset = clockOffset(flows.now);
    flowNow = flows.now ?? 0;
    halfLife = flows.half_life ?? 2;
    active = decodeFlows(flows, topologyIds());
    states = new Map(active.map((f) => [f.id, f]));
    flowsPending = true;
    const stat = flows.stats ?? {};
    const rate = stat.rate != null ? ` \u00b7 ${fmtRate(stat.rate)} overall` : "";
    setText(stats, `${statsLine(stat)}${rate}${selectedLine()}`);
    startAnimation();
  }

  // The cytoscape side of the last flows frame: node statuses, rate labels, the busiest edge.
  // Called inside a batch.
  function paintFlows() {
    flowsPending = false;
    const flows = model.get("flows") ?? {};
    const busiest = flows.stats?.busiest_edge ?? "";
    const nodes = { ...(flows.nodes ?? {}), ...(model.get("nodes") ?? {}) };
    cy.nodes().forEach((n) => {
      const info = nodes[n.id()] ?? {};
      const st = info.stale && info.status !== "offline" ? "stale" : info.paused ? "paused" : info.status;
      const cls = st ? `st-${st}` : "";
      if (n.data("st") !== cls) {
        if (n.data("st")) n.removeClass(n.data("st"));
        if (cls) n.addClass(cls);
        n.data({ st: cls, label: nodeLabel(n.data("base") ?? n.id(), cls) });
      }
    });
    // Only the listed (active) edges and those labelled before: never every edge. The list is
    // busiest first; the first LABEL_MAX carry their rate.
    const nextLabelled = new Set();
    active.forEach((f, k) => {
      f.ele = cy.getElementById(f.id);
      if (f.ele.empty()) return;
      const label = k < LABEL_MAX ? edgeLabel(f.rate) : "";
      if (f.ele.data("label") !== label) f.ele.data("label", label);
      if (label) nextLabelled.add(f.id);
    });
    for (const id of labelled) if (!nextLabelled.has(id)) cy.getElementById(id).data("label", "");
    labelled = nextLabelled;
    const next = states.has(busiest) ? busiest : "";
    if (next !== busiestId) {
      if (busiestId) cy.getElementById(busiestId).removeClass("busiest");
      if (next) cy.getElementById(next).addClass("busiest");
      busiestId = next;
    }
  }

  function selectedLine() {
    const sel = model.get("selected");
    if (!sel) return "";
    const n = cy.getElementById(sel);
    if (n.empty()) return ` \u00b7 selected: ${sel}`;
    const st = (model.get("nodes") ?? {})[sel]?.status ?? (model.get("flows")?.nodes ?? {})[sel]?.status;
    return ` \u00b7 selected: ${n.data("label")}${n.data("role") ? ` (${n.data("role")})` : ""}${st ? ` ${st}` : ""}`;
  }

  // One animation loop for the active edges (about 30 steps/s; 15 with hundreds, 6 with more
  // than CROWDED_EDGES: lib/graph.js frameInterval), stopped when nothing is active. Edges that
  // stop being active are put back to idle once. A pending flows frame is drawn in the step.
  function animate(ts) {
    raf = 0;
    if (destroyed) return;
    if (lastFrame && ts - lastFrame < frameInterval(animated.size)) {
      raf = requestAnimationFrame(animate);
      return;
    }
    const dt = lastFrame ? Math.min(0.1, (ts - lastFrame) / 1000) : 0;
    lastFrame = ts;
    const since = hubTime(offset) - flowNow;
    const still = new Set();
    cy.batch(() => {
      if (flowsPending) paintFlows();
      for (const f of active) {
        const e = f.ele;
        if (!e || e.empty() || e.removed()) continue;
        const intensity = decay(f.intensity, halfLife, since);
        if (!(intensity > ACTIVE_THRESHOLD)) continue;
        still.add(f.id);
        const w = shownWidth(intensity);
        if (e.data("width") !== w) e.data("width", w);
        if (!e.hasClass("active")) e.addClass("active");
        // The dashes march at a speed in screen px/s; the offset set is one of DASH_PHASES
        // values (never a fresh float: see dashOffsets), and only when it changes.
        const phase = advanceDash(dashPhase.get(f.id), dashSpeed(intensity), dt);
        dashPhase.set(f.id, phase);
        const j = dashIndex(phase);
        if (dashShown.get(f.id) !== j) {
          dashShown.set(f.id, j);
          e.style("line-dash-offset", offsets[j]);
        }
      }
      for (const id of animated) {
        if (still.has(id)) continue;
        const e = cy.getElementById(id);
        if (e.nonempty()) {
          e.data("width", BASE_WIDTH);
          e.removeClass("active");
        }
        dashPhase.delete(id);
        dashShown.delete(id);
      }
    });
    animated = still;
    if (still.size) raf = requestAnimationFrame(animate);
    else lastFrame = 0;
  }

  function startAnimation() {
    if (!raf) raf = requestAnimationFrame(animate);
  }

  function applySelected() {
    const sel = model.get("selected") ?? "";
    cy.batch(() => {
      cy.nodes(".picked").removeClass("picked");
      if (sel) cy.getElementById(sel).addClass("picked");
    });
    const stat = model.get("flows")?.stats ?? {};
    const rate = stat.rate != null ? ` \u00b7 ${fmtRate(stat.rate)} overall` : "";
    setText(stats, `${statsLine(stat)}${rate}${selectedLine()}`);
  }

  const setSelected = (id) => {
    if ((model.get("selected") ?? "") === id) return;
    model.set("selected", id);
    model.save_changes();
  };
  cy.on("tap", "node", (evt) => setSelected(evt.target.id()));
  cy.on("tap", (evt) => {
    if (evt.target === cy) setSelected("");
  });
  cy.on("mouseover", "edge", (evt) => {
    const s = states.get(evt.target.id());
    container.title = s ? `${prettyEdge(evt.target.id())}: ${s.lastMinute} in the last minute` : prettyEdge(evt.target.id());
  });
  cy.on("mouseout", "edge", () => {
    container.title = "";
  });
  cy.on("zoom", onZoom);
  cy.on("zoom pan", () => {
    if (!fitting) userMoved = true;
  });
  fitBtn.addEventListener("click", () => {
    userMoved = false;
    fit();
  });

  const onHeight = () => {
    container.style.height = `${model.get("height") || 360}px`;
    cy.resize();
  };
  const resize = new ResizeObserver(() => {
    cy.resize();
    if (!fitted || !userMoved) fit();
  });
  resize.observe(container);
  // A theme switch reloads the page's CSS: if cytoscape measures its container in that moment it
  // sizes its canvases to 0 (blank graph), and the container's size may look unchanged to the
  // ResizeObserver. Once a second, canvases that disagree with the container are resized.
  const canvasWatch = setInterval(() => {
    const canvas = container.querySelector("canvas");
    if (destroyed || !canvas || container.clientWidth === 0) return;
    if (canvas.clientWidth !== container.clientWidth || canvas.clientHeight !== container.clientHeight) {
      cy.resize();
      if (!fitted || !userMoved) fit();
    }
  }, 1000);
  // JupyterLab switches themes by changing attributes on <body>; re-read the colours then.
  const themeWatch = new MutationObserver(applyTheme);
  themeWatch.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-name", "data-jp-theme-light", "class"] });

  model.on("change:topology", applyTopology);
  model.on("change:flows", applyFlows);
  model.on("change:nodes", applyFlows);
  model.on("change:selected", applySelected);
  model.on("change:height", onHeight);
  applyTheme();
  applyTopology();

  return () => {
    destroyed = true;
    if (raf) cancelAnimationFrame(raf);
    if (restyle) cancelAnimationFrame(restyle);
    resize.disconnect();
    clearInterval(canvasWatch);
    themeWatch.disconnect();
    model.off("change:topology", applyTopology);
    model.off("change:flows", applyFlows);
    model.off("change:nodes", applyFlows);
    model.off("change:selected", applySelected);
    model.off("change:height", onHeight);
    cy.destroy();
  };
}

export default { render };
