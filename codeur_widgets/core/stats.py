"""Small exact statistics used by the stores: running mean, windowed quantiles, time buckets.

All are O(1) per sample (amortised) and bounded in memory, so a store can feed them at any rate.
"""

from __future__ import annotations

import math
from collections import deque


class RunningMean:
    """Count and mean of every sample ever added (Welford's update, numerically stable)."""

    __slots__ = ("count", "mean")

    def __init__(self) -> None:
        self.count = 0
        self.mean = 0.0

    def add(self, value: float) -> None:
        self.count += 1
        self.mean += (value - self.mean) / self.count

    def reset(self) -> None:
        self.count = 0
        self.mean = 0.0


class WindowQuantiles:
    """Quantiles over the last ``size`` samples (exact over that window).

    Sorting happens only when a quantile is asked for (at render rate, not at event rate), and the
    sorted copy is cached until the next sample.
    """

    __slots__ = ("_sorted", "_values")

    def __init__(self, size: int = 1000) -> None:
        if size < 1:
            raise ValueError("size must be >= 1")
        self._values: deque[float] = deque(maxlen=size)
        self._sorted: list[float] | None = None

    def add(self, value: float) -> None:
        self._values.append(value)
        self._sorted = None

    def __len__(self) -> int:
        return len(self._values)

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile (0..1, nearest-rank with linear interpolation); None when empty."""
        if not self._values:
            return None
        if self._sorted is None:
            self._sorted = sorted(self._values)
        data = self._sorted
        pos = (len(data) - 1) * q
        lo = math.floor(pos)
        hi = min(lo + 1, len(data) - 1)
        return data[lo] + (data[hi] - data[lo]) * (pos - lo)

    def mean(self) -> float | None:
        return sum(self._values) / len(self._values) if self._values else None

    def summary(self) -> dict[str, float | int | None]:
        """``{"count", "mean", "p50", "p95"}`` over the window."""
        return {
            "count": len(self._values),
            "mean": self.mean(),
            "p50": self.quantile(0.5),
            "p95": self.quantile(0.95),
        }

    def reset(self) -> None:
        self._values.clear()
        self._sorted = None


class TimeBuckets:
    """Exact event counts over a sliding time window, in fixed-width buckets.

    ``add(ts)`` is O(1); ``total(now)`` counts every event with ``now - span < ts <= now``
    rounded to bucket boundaries: with ``bucket=1`` second and ``span=3600`` it is exact to the
    second at any volume (unlike a capped list of recent events). Events older than the window, or
    in the future beyond one bucket, are counted in the bucket they fall in when still in range.
    """

    __slots__ = ("_buckets", "_running", "bucket", "span")

    def __init__(self, span: float, bucket: float = 1.0) -> None:
        if bucket <= 0 or span < bucket:
            raise ValueError("need 0 < bucket <= span")
        self.span = span
        self.bucket = bucket
        # (bucket index, count), oldest first; at most span/bucket + 1 entries.
        self._buckets: deque[list[int]] = deque()
        self._running = 0

    def _index(self, ts: float) -> int:
        return math.floor(ts / self.bucket)

    def add(self, ts: float, count: int = 1) -> None:
        idx = self._index(ts)
        buckets = self._buckets
        if buckets and buckets[-1][0] == idx:
            buckets[-1][1] += count
        elif not buckets or buckets[-1][0] < idx:
            buckets.append([idx, count])
        else:
            # Out of order (a late event): find its bucket from the right; rare and short.
            for pos in range(len(buckets) - 1, -1, -1):
                if buckets[pos][0] == idx:
                    buckets[pos][1] += count
                    break
                if buckets[pos][0] < idx:
                    buckets.insert(pos + 1, [idx, count])
                    break
            else:
                buckets.appendleft([idx, count])
        self._running += count

    def _expire(self, now: float) -> None:
        oldest = self._index(now) - round(self.span / self.bucket) + 1
        buckets = self._buckets
        while buckets and buckets[0][0] < oldest:
            self._running -= buckets.popleft()[1]

    def total(self, now: float) -> int:
        """Events in the window ending at ``now``."""
        self._expire(now)
        end = self._index(now)
        # Events stamped in the future (clock skew) are not counted yet.
        future = 0
        for idx, count in reversed(self._buckets):
            if idx <= end:
                break
            future += count
        return self._running - future

    def series(self, now: float, step: float) -> tuple[float, list[int]]:
        """Counts per ``step`` seconds over the window ending at ``now``: ``(start, values)``."""
        self._expire(now)
        per = max(1, round(step / self.bucket))
        end = self._index(now)
        n = max(1, round(self.span / self.bucket) // per)
        first = (end // per - n + 1) * per
        values = [0] * n
        for idx, count in self._buckets:
            slot = (idx - first) // per
            if 0 <= slot < n:
                values[slot] += count
        return first * self.bucket, values

    def reset(self) -> None:
        self._buckets.clear()
        self._running = 0
