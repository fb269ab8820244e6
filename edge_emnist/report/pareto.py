"""Pareto front of accuracy (higher is better) against latency (lower is better), and its knee."""

from __future__ import annotations

import math


def pareto_front(points: list[dict], accuracy=lambda r: r["accuracy"],
                 latency=lambda r: r["latency"]["p90_ms"]) -> list[dict]:
    """Points no other point beats on both axes, fastest first."""
    ordered = sorted(points, key=lambda r: (latency(r), -accuracy(r)))
    front, best = [], -math.inf
    for point in ordered:
        if accuracy(point) > best:
            front.append(point)
            best = accuracy(point)
    return front


def knee(front: list[dict], accuracy=lambda r: r["accuracy"], latency=lambda r: r["latency"]["p90_ms"]) -> dict:
    """The front point closest to the ideal corner (best accuracy, lowest latency), both axes scaled to [0, 1]
    over the front, latency on a log scale since latencies span orders of magnitude."""
    if len(front) == 1:
        return front[0]
    accs = [accuracy(p) for p in front]
    lats = [math.log(latency(p)) for p in front]

    def scaled(value, values):
        low, high = min(values), max(values)
        return 0.0 if high == low else (value - low) / (high - low)

    return min(front, key=lambda p: math.hypot(1 - scaled(accuracy(p), accs), scaled(math.log(latency(p)), lats)))
