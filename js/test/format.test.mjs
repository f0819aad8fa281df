import { test } from "node:test";
import assert from "node:assert/strict";
import {
  DASH, ellipsis, fmtAge, fmtBytes, fmtClock, fmtCost, fmtCount, fmtDuration, fmtGauge, fmtInt, fmtMillis,
  fmtPercent, fmtRate,
} from "../lib/format.js";

test("durations", () => {
  assert.equal(fmtDuration(0.85), "850 ms");
  assert.equal(fmtDuration(3.21), "3.2 s");
  assert.equal(fmtDuration(42.9), "42 s");
  assert.equal(fmtDuration(65), "1m 05s");
  assert.equal(fmtDuration(2 * 3600 + 3 * 60 + 9), "2h 03m");
  assert.equal(fmtDuration(3 * 86400 + 4 * 3600), "3d 04h");
  assert.equal(fmtDuration(-5), "0 ms");
  assert.equal(fmtDuration(null), DASH);
  assert.equal(fmtDuration(undefined), DASH);
  assert.equal(fmtDuration(NaN), DASH);
  assert.equal(fmtDuration(Infinity), DASH);
});

test("ages", () => {
  assert.equal(fmtAge(0.2), "now");
  assert.equal(fmtAge(4.7), "4 s ago");
  assert.equal(fmtAge(130), "2m 10s ago");
  assert.equal(fmtAge(null), DASH);
});

test("bytes use binary units", () => {
  assert.equal(fmtBytes(512), "512 B");
  assert.equal(fmtBytes(1536), "1.5 KiB");
  assert.equal(fmtBytes(1.2e8), "114 MiB");
  assert.equal(fmtBytes(1.3 * 1024 ** 3), "1.3 GiB");
  assert.equal(fmtBytes(-2048), "-2.0 KiB");
  assert.equal(fmtBytes(undefined), DASH);
});

test("counts (tokens)", () => {
  assert.equal(fmtCount(950), "950");
  assert.equal(fmtCount(9000), "9.0k");
  assert.equal(fmtCount(123456), "123k");
  assert.equal(fmtCount(999_999), "1.0M");
  assert.equal(fmtCount(2_100_000), "2.1M");
  assert.equal(fmtCount(1e9), "1.0B");
  assert.equal(fmtCount(-1500), "-1.5k");
  assert.equal(fmtCount("12"), DASH);
});

test("integers, costs, percentages, rates, millis", () => {
  assert.equal(fmtInt(1234567), "1,234,567");
  assert.equal(fmtInt(-1000), "-1,000");
  assert.equal(fmtInt(12.6), "13");
  assert.equal(fmtCost(0), "$0");
  assert.equal(fmtCost(0.004), "$0.0040");
  assert.equal(fmtCost(0.123), "$0.12");
  assert.equal(fmtCost(12345.6), "$12,346");
  assert.equal(fmtPercent(7.53), "7.5%");
  assert.equal(fmtPercent(42.4), "42%");
  assert.equal(fmtRate(0), "0/s");
  assert.equal(fmtRate(0.05), "<0.1/s");
  assert.equal(fmtRate(0.5), "0.5/s");
  assert.equal(fmtRate(12.4), "12/s");
  assert.equal(fmtMillis(2.14), "2.1 ms");
  assert.equal(fmtMillis(35.2), "35 ms");
});

test("clock and ellipsis", () => {
  assert.equal(fmtClock(Date.UTC(2024, 10, 25, 3, 4, 5) / 1000, true), "03:04:05");
  assert.equal(fmtClock(null), DASH);
  assert.equal(ellipsis("abcdef", 4), "abc\u2026");
  assert.equal(ellipsis("abc", 4), "abc");
  assert.equal(ellipsis(null), "");
});

test("fmtGauge keeps fractions readable and large values compact", () => {
  assert.equal(fmtGauge(0.82), "0.82");
  assert.equal(fmtGauge(12.345), "12.3");
  assert.equal(fmtGauge(3), "3");
  assert.equal(fmtGauge(12345), "12.3k");
  assert.equal(fmtGauge(Number.NaN), DASH);
});
