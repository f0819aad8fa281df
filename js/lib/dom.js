// Tiny DOM helpers. Text always goes in through textContent / text nodes and attributes through
// setAttribute with fixed, non-executable names: agent-supplied strings are never parsed as markup.

const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * h("div", {class: "x", text: "hello", title: "t", on: {click: fn}}, child, ...)
 * Strings among the children become text nodes.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  applyProps(el, props);
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    el.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return el;
}

/** An SVG element (createElementNS) with attributes. */
export function s(tag, attrs = {}) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

function applyProps(el, props) {
  for (const [k, v] of Object.entries(props)) {
    if (v == null) continue;
    if (k === "text") el.textContent = String(v);
    else if (k === "class") el.className = v;
    else if (k === "on") for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === "style") Object.assign(el.style, v);
    else if (k === "value") el.value = v;
    else if (k === "checked") el.checked = Boolean(v);
    else if (k.startsWith("on")) throw new Error(`use {on: {...}} for event handlers, not ${k}`);
    else el.setAttribute(k, String(v));
  }
}

/** Sets textContent only when it changed (avoids needless layout work every second). */
export function setText(el, text) {
  const t = text == null ? "" : String(text);
  if (el.textContent !== t) el.textContent = t;
}

/** Sets a (non-executable) attribute only when it changed. */
export function setAttr(el, name, value) {
  const v = value == null ? "" : String(value);
  if (el.getAttribute(name) !== v) el.setAttribute(name, v);
}

/** Replaces a <select>'s options with [value, label] pairs, keeping the current value if possible. */
export function setOptions(select, options, current) {
  const key = JSON.stringify(options);
  if (select.dataset.options !== key) {
    select.replaceChildren(...options.map(([value, label]) => h("option", { value, text: label })));
    select.dataset.options = key;
  }
  select.value = options.some(([v]) => v === current) ? current : "";
}

/** Adds a <style> with static CSS to a widget's root element. */
export function style(css) {
  const el = document.createElement("style");
  el.textContent = css;
  return el;
}

/** Wraps a handler so that it runs at most once per `ms` after the last call. */
export function debounce(fn, ms) {
  let id = null;
  const wrapped = (...args) => {
    if (id !== null) clearTimeout(id);
    id = setTimeout(() => {
      id = null;
      fn(...args);
    }, ms);
  };
  wrapped.cancel = () => {
    if (id !== null) clearTimeout(id);
    id = null;
  };
  return wrapped;
}
