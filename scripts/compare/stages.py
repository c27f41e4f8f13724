#!/usr/bin/env python3
"""Where one mapping's time goes, from `mqtrigger bench --stages FILE`.

    scripts/compare/stages.py FILE

FILE has a line `batch stage ns` per mark (src/stamps.rs). This prints:
  - the time between consecutive stages of each batch (p10, p50, p90,
    p99 and max, in µs);
  - across batches: from batch N's answer to batch N+1's turn (the gap the
    function sees, when N+1 was ready) and how often N+1 was built before
    N was answered (ready in time);
  - the pauses in the flow of received messages: pauses of over 0.2 ms and
    of over 2 ms, how much time they add up to, and how many of them ended
    within 50 µs of a settle finishing (the consume loop was settling while
    messages waited, rather than the broker being slow).
"""
import bisect
import collections
import sys

STAGES = ["opened", "handed", "built", "go", "sent", "answered", "returned", "finished", "settled"]


def quantiles(values):
    if not values:
        return "-"
    v = sorted(values)
    at = lambda q: v[min(len(v) - 1, int(len(v) * q))] / 1000
    return (f"p10 {at(0.1):7.0f}  p50 {at(0.5):7.0f}  p90 {at(0.9):7.0f}  "
            f"p99 {at(0.99):7.0f}  max {v[-1] / 1000:7.0f} µs  (n={len(v)})")


def main(path):
    batches = collections.defaultdict(dict)
    received = []
    for line in open(path):
        batch, stage, ns = line.split()
        if stage == "received":
            received.append(int(ns))
        else:
            batches[int(batch)][stage] = int(ns)
    ids = sorted(b for b in batches if "opened" in batches[b])
    print(f"{len(ids)} batches, {len(received)} messages received")
    print("within a batch:")
    for a, b in zip(STAGES, STAGES[1:]):
        spans = [batches[i][b] - batches[i][a] for i in ids if a in batches[i] and b in batches[i]]
        print(f"  {a:>9} -> {b:<9} {quantiles(spans)}")
    pairs = [(batches[i], batches[i + 1]) for i in ids if i + 1 in batches]
    print("from batch N to batch N+1:")
    for a, b in [("answered", "go"), ("answered", "built"), ("settled", "opened"), ("sent", "sent")]:
        spans = [m[b] - n[a] for n, m in pairs if a in n and b in m]
        print(f"  N {a:>9} -> N+1 {b:<9} {quantiles(spans)}")
    ready = sum(1 for n, m in pairs if "built" in m and "answered" in n and m["built"] < n["answered"])
    print(f"N+1 built before N was answered: {ready} of {len(pairs)}")
    if len(received) < 2:
        return
    received.sort()
    settled = sorted(b["settled"] for b in batches.values() if "settled" in b)
    span = received[-1] - received[0]
    print(f"received messages over {span / 1e6:.0f} ms:")
    for low, high in [(2e5, 2e6), (2e6, float("inf"))]:
        pauses = [(a, b) for a, b in zip(received, received[1:]) if low < b - a <= high]
        after_settle = 0
        for a, b in pauses:
            k = bisect.bisect_right(settled, b) - 1
            if k >= 0 and a < settled[k] and b - settled[k] <= 50_000:
                after_settle += 1
        total = sum(b - a for a, b in pauses)
        label = f"pauses of {low / 1e6:g} to {high / 1e6:g} ms" if high != float("inf") else f"pauses over {low / 1e6:g} ms"
        print(f"  {label}: {len(pauses)}, {total / 1e6:.0f} ms in all; "
              f"{after_settle} ended within 50 µs of a settle")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
