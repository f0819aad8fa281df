// Number and time formatting shared by every widget. Pure functions (no DOM), tested with
// `node --test`. Every formatter accepts null/undefined/NaN and returns DASH, because snapshot
// fields are optional (an agent without a finished task has no mean duration yet).

export const DASH = "\u2013";

const ok = (x) => typeof x === "number" && Number.isFinite(x);

const pad2 = (n) => String(n).padStart(2, "0");

/** Seconds as a short human duration: 850 ms, 3.2 s, 42 s, 1m 05s, 2h 03m, 3d 04h. */
export function fmtDuration(seconds) {
  if (!ok(seconds)) return DASH;
  const s = Math.max(0, seconds);
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.floor(s)} s`;
  const total = Math.floor(s);
  if (total < 3600) return `${Math.floor(total / 60)}m ${pad2(total % 60)}s`;
  if (total < 86400) return `${Math.floor(total / 3600)}h ${pad2(Math.floor((total % 3600) / 60))}m`;
  return `${Math.floor(total / 86400)}d ${pad2(Math.floor((total % 86400) / 3600))}h`;
}

/** How long ago, coarse on purpose (it is re-rendered every second): now, 4 s ago, 2m 10s ago. */
export function fmtAge(seconds) {
  if (!ok(seconds)) return DASH;
  if (seconds < 1) return "now";
  if (seconds < 60) return `${Math.floor(seconds)} s ago`;
  return `${fmtDuration(seconds)} ago`;
}

/** Bytes with binary units: 512 B, 1.5 KiB, 114 MiB, 1.2 GiB. */
export function fmtBytes(bytes) {
  if (!ok(bytes)) return DASH;
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = Math.abs(bytes);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  const sign = bytes < 0 ? "-" : "";
  if (i === 0) return `${sign}${Math.round(v)} B`;
  return `${sign}${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/** Counts such as tokens: 950, 9.0k, 123k, 2.1M, 1.0B. */
export function fmtCount(n) {
  if (!ok(n)) return DASH;
  const a = Math.abs(n);
  const sign = n < 0 ? "-" : "";
  const scaled = (div, unit) => {
    const v = a / div;
    return `${sign}${v < 100 ? v.toFixed(1) : Math.round(v)}${unit}`;
  };
  if (a < 1000) return `${sign}${Math.round(a)}`;
  if (a < 999_950) return scaled(1e3, "k");
  if (a < 999_950_000) return scaled(1e6, "M");
  return scaled(1e9, "B");
}

/** A custom gauge: fractions keep 3 significant digits (0.82, 12.5), large values as counts. */
export function fmtGauge(n) {
  if (!ok(n)) return DASH;
  if (Number.isInteger(n) || Math.abs(n) >= 1000) return fmtCount(n);
  return String(Number(n.toPrecision(3)));
}

/** An integer with thousands separators (locale independent: tests and screenshots agree). */
export function fmtInt(n) {
  if (!ok(n)) return DASH;
  const s = String(Math.round(Math.abs(n))).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return n < 0 ? `-${s}` : s;
}

/** US dollars: $0, $0.0040, $0.12, $12.50, $1,234. */
export function fmtCost(usd) {
  if (!ok(usd)) return DASH;
  if (usd === 0) return "$0";
  if (Math.abs(usd) < 0.01) return `$${usd.toFixed(4)}`;
  if (Math.abs(usd) < 1000) return `$${usd.toFixed(2)}`;
  return `$${fmtInt(usd)}`;
}

/** A percentage: 7.5%, 42%. */
export function fmtPercent(p) {
  if (!ok(p)) return DASH;
  return `${Math.abs(p) < 10 ? p.toFixed(1) : Math.round(p)}%`;
}

/** A rate per second: 0/s, <0.1/s, 0.5/s, 12/s. */
export function fmtRate(r) {
  if (!ok(r) || r <= 0) return "0/s";
  if (r < 0.1) return "<0.1/s";
  return `${r < 10 ? r.toFixed(1) : Math.round(r)}/s`;
}

/** A unix timestamp as HH:MM:SS (local time, or UTC for tests). */
export function fmtClock(ts, utc = false) {
  if (!ok(ts)) return DASH;
  const d = new Date(ts * 1000);
  const [h, m, s] = utc
    ? [d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()]
    : [d.getHours(), d.getMinutes(), d.getSeconds()];
  return `${pad2(h)}:${pad2(m)}:${pad2(s)}`;
}

/** Milliseconds with one decimal under 10: 0.4 ms, 2.1 ms, 35 ms. */
export function fmtMillis(ms) {
  if (!ok(ms)) return DASH;
  return `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
}

/** Shortens text for one-line display; the full text belongs in a title attribute. */
export function ellipsis(text, max = 120) {
  const s = text == null ? "" : String(text);
  return s.length > max ? `${s.slice(0, max - 1)}\u2026` : s;
}
