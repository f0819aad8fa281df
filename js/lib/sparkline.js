// Sparkline geometry without the DOM: values -> SVG path data.

/**
 * Path data for a sparkline of `values` in a width x height box (y grows downwards).
 * Returns {line, area, max}; empty strings when there is nothing to draw.
 */
export function sparkPaths(values, width, height, pad = 1) {
  const vs = (values ?? []).map((v) => (typeof v === "number" && Number.isFinite(v) ? v : 0));
  if (vs.length === 0) return { line: "", area: "", max: 0 };
  const max = Math.max(...vs, 0);
  const h = height - 2 * pad;
  const w = width - 2 * pad;
  const step = vs.length > 1 ? w / (vs.length - 1) : 0;
  const y = (v) => pad + h - (max > 0 ? (v / max) * h : 0);
  const pts = vs.map((v, i) => [pad + i * step, y(v)]);
  if (pts.length === 1) pts.push([pad + w, pts[0][1]]);
  const r = (n) => Math.round(n * 10) / 10;
  const line = pts.map(([px, py], i) => `${i ? "L" : "M"}${r(px)},${r(py)}`).join("");
  const base = r(pad + h);
  const area = `${line}L${r(pts[pts.length - 1][0])},${base}L${r(pts[0][0])},${base}Z`;
  return { line, area, max };
}
