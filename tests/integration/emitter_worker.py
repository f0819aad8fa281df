"""An agent process for the integration tests: emits ``n`` numbered events through an Emitter.

``python emitter_worker.py URL WORKER N [--rate R] [--buffer B]`` publishes ``agent.tokens``
events (``prompt=1`` each, so the registry's totals count them) for agent ``worker-<WORKER>``
with ``data.w``/``data.i`` numbering, flushes, prints the emitter's health as JSON and exits 0 if
everything was delivered.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from codeur_widgets.emit import Emitter


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("worker", type=int)
    parser.add_argument("n", type=int)
    parser.add_argument("--rate", type=float, default=0.0, help="events/s (0: as fast as possible)")
    parser.add_argument("--buffer", type=int, default=0, help="local buffer (default: n)")
    parser.add_argument("--flush-timeout", type=float, default=60.0)
    args = parser.parse_args()
    emitter = Emitter(
        args.url, maxlen=10_000_000, buffer=args.buffer or args.n, backoff=(0.05, 0.5)
    )
    agent = f"worker-{args.worker}"
    start = time.monotonic()
    for i in range(args.n):
        emitter.publish(
            "agent.tokens", agent, prompt=1, completion=0, cost_usd=0.0, w=args.worker, i=i
        )
        if args.rate and i % 200 == 199:
            ahead = start + (i + 1) / args.rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
    delivered = emitter.flush(timeout=args.flush_timeout)
    health = emitter.health()
    emitter.close(timeout=1.0)
    print(json.dumps(health))
    return 0 if delivered and health["dropped"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
