// Ageing values in the browser. Snapshots carry the hub clock `now`; the browser remembers
// offset = wall - now once per frame and then computes "hub time now" every second by itself, so
// an idle dashboard needs no messages to keep elapsed times and heartbeat ages moving.
// (The hub clock may be a fake or time-scaled clock: only differences to `now` are trusted.)

/** Wall-clock unix seconds. */
export const wallNow = () => Date.now() / 1000;

/** offset = wall - hub, taken when a frame arrives. */
export function clockOffset(hubNowAtFrame, wall = wallNow()) {
  return typeof hubNowAtFrame === "number" && Number.isFinite(hubNowAtFrame) ? wall - hubNowAtFrame : 0;
}

/** The hub's current time, advanced locally from the last frame's offset. */
export function hubTime(offset, wall = wallNow()) {
  return wall - offset;
}

/** Calls fn every `ms` while the returned stop() has not been called; never piles up. */
export function every(ms, fn) {
  const id = setInterval(fn, ms);
  return () => clearInterval(id);
}
