// Log-tail logic without the DOM: incremental updates of a bounded list of rows.

export const LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];

/** CSS class suffix of a level (unknown levels look like INFO). */
export function levelClass(level) {
  const l = String(level ?? "").toUpperCase();
  if (l === "WARN") return "warning";
  return LEVELS.includes(l) ? l.toLowerCase() : "info";
}

/**
 * How to turn the rows on screen (their `seq` numbers, oldest first) into `next` (lines, oldest
 * first) with the least DOM work. The usual case while following is "drop a few from the top,
 * append a few at the bottom"; anything else (a new filter, a gap) is a reset.
 * Returns {reset: true} or {reset: false, removeFromTop: n, append: [lines]}.
 */
export function diffLines(prevSeqs, next) {
  if (!next.length) return { reset: true };
  if (!prevSeqs.length) return { reset: true };
  const first = next[0].seq;
  const start = prevSeqs.indexOf(first);
  if (start < 0) {
    // next starts after everything shown: still incremental if it only holds newer lines
    // (the screen is cleared from the top); otherwise reset.
    return { reset: true };
  }
  const kept = prevSeqs.length - start;
  if (kept > next.length) return { reset: true };
  for (let i = 0; i < kept; i += 1) {
    if (prevSeqs[start + i] !== next[i].seq) return { reset: true };
  }
  return { reset: false, removeFromTop: start, append: next.slice(kept) };
}

/** Sources seen so far, kept sorted and bounded (the source filter's options). */
export function mergeSources(known, lines, max = 200) {
  const set = new Set(known);
  for (const l of lines) if (l.source && set.size < max) set.add(String(l.source));
  return [...set].sort();
}
