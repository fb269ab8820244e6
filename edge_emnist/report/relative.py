"""Latency relative to a reference model timed in the same bench call.

A 2-core VM's absolute latency drifts between calls by more than the differences that decide a choice, so a
budget such as "no slower than LeNet-5" is read as a ratio: each artifact's p90 over the reference's p90 in the
same bench call (its `session`), same thread count, reference on its default runtime. Only records measured beside
the reference get a ratio; the others say so instead of borrowing another call's.
"""

from __future__ import annotations

from collections.abc import Iterable

from edge_emnist.report.pareto import pareto_front
from edge_emnist.tables import markdown_table

TIERS = (0.5, 1.0, 2.0, 7.0)  # budgets drawn as "best accuracy at <= N x the reference"
HEADERS = ["artifact", "runtime", "accuracy", "p90 ms", "x reference", "reference p90 ms", "bench call"]


def reference_latencies(records: Iterable[dict], reference: str) -> dict[tuple, float]:
    """(target, session, threads, dataset) -> the reference's p90 ms at batch 1 in that call, from every record
    (not only the latest of each setting: each older call's reference time is what its other records are measured
    against). Only artifacts of the reference's dataset are compared with it: another task's accuracy is not on
    the same scale."""
    found = {}
    for record in records:
        settings = record.get("settings") or {}
        if (record.get("artifact") == reference and record.get("batch") == 1 and record.get("latency")
                and record.get("runtime") == "litert" and settings.get("xnnpack", True) and record.get("session")
                and not record.get("emulated")):
            key = (record.get("target"), record["session"], settings.get("threads"), record.get("dataset"))
            found[key] = record["latency"]["p90_ms"]
    return found


def ratio(record: dict, references: dict[tuple, float]) -> tuple[float, float] | None:
    """(p90 / the reference's p90, the reference's p90) in the record's own call, or None if it was not there."""
    key = (record.get("target"), record.get("session"), (record.get("settings") or {}).get("threads"),
           record.get("dataset"))
    reference = references.get(key)
    if not reference:
        return None
    return record["latency"]["p90_ms"] / reference, reference


def best_within(points: list[dict], references: dict[tuple, float], budget: float) -> dict | None:
    """The most accurate point whose p90 is at most `budget` x the reference's in its own call."""
    within = [p for p in points if (r := ratio(p, references)) and r[0] <= budget]
    return max(within, key=lambda p: (p["accuracy"], -p["latency"]["p90_ms"]), default=None)


def section(points: list[dict], references: dict[tuple, float], reference: str,
            tiers: tuple[float, ...] = TIERS) -> list[str]:
    """The report's lines for one target: the best accuracy per budget, then the front with its ratios."""
    measured = [p for p in points if ratio(p, references) and p["artifact"] != reference]
    if not measured:
        return []
    lines = [f"Against the reference `{reference}` timed in the same bench call ({len(measured)} of "
             f"{len(points)} points were measured beside it; p90 at batch 1):", ""]
    for budget in tiers:
        best = best_within(measured, references, budget)
        if best:
            x, _ = ratio(best, references)
            lines.append(f"- at most {budget:g}x: **{best['artifact']}** ({best['runtime']}), accuracy "
                         f"{best['accuracy']:.4f}, {x:.2f}x")
        else:
            lines.append(f"- at most {budget:g}x: none of them")
    rows = []
    front = pareto_front(measured, latency=lambda p: ratio(p, references)[0])
    for p in sorted(front, key=lambda p: ratio(p, references)[0]):
        x, base = ratio(p, references)
        rows.append([p["artifact"], p["runtime"], f"{p['accuracy']:.4f}", f"{p['latency']['p90_ms']:.4f}",
                     f"{x:.2f}", f"{base:.4f}", p["session"]])
    return [*lines, "", "The front of those points, by their ratio:", "", markdown_table(HEADERS, rows), ""]
