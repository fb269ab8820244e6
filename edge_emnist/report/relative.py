"""Latency relative to a reference model timed in the same bench call.

A 2-core VM's absolute latency drifts between calls by more than the differences that decide a choice, so a
budget such as "no slower than LeNet-5" is read as a ratio: each artifact's p90 over the reference's p90 in the
same bench call (its `session`), same thread count, reference on its default runtime. Only records measured beside
the reference get a ratio; the others say so instead of borrowing another call's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from edge_emnist.report.pareto import pareto_front
from edge_emnist.tables import markdown_table

REFERENCE = "lenet5-emnist-bymerge-fp32.tflite"  # the shipped LeNet-5 float32 .tflite: the issues' yardstick
TIERS = (0.5, 1.0, 2.0, 7.0)  # budgets drawn as "best accuracy at <= N x the reference"
HEADERS = ["artifact", "runtime", "accuracy", "p90 ms (latest call)", "x reference (median)", "over all calls",
           "reference p90 ms (latest)", "latest call"]


def reference_latencies(records: Iterable[dict], reference: str) -> dict[tuple, float]:
    """(target, session, threads, dataset) -> the reference's p90 ms at batch 1 in that call, from every record
    (not only the latest of each setting: each older call's reference time is what its other records are measured
    against). Only artifacts of the reference's dataset are compared with it: another task's accuracy is not on
    the same scale."""
    return Beside.of(records, reference).references


def _call(record: dict) -> tuple:
    return (record.get("target"), record.get("session"), (record.get("settings") or {}).get("threads"),
            record.get("dataset"))


def _file_setting(record: dict) -> tuple:
    """One file (name and bytes) in one runtime and thread count on one target: what is timed again and again."""
    return (record.get("target"), record.get("artifact"), record.get("artifact_sha256"), record.get("runtime"),
            (record.get("settings") or {}).get("threads"), (record.get("settings") or {}).get("xnnpack"))


@dataclass
class Beside:
    """Every bench call's reference time, and every file's p90 in each call that timed it beside the reference.
    A file is read at the median of its ratios over those calls (on a 2-core VM one call moves a ratio by more
    than the margin a 0.5x budget is won by), with their range; built from `references` alone, at its own call's."""

    references: dict[tuple, float] = field(default_factory=dict)
    timed: dict[tuple, dict[tuple, float]] = field(default_factory=lambda: defaultdict(dict))
    reference: str = REFERENCE  # the file's name, for what a reader is told

    # the same bookkeeping over each CPU model's calls alone (host "cpu"): a target is an ISA tier, and two CPUs of
    # one tier can put a file on either side of a budget, which the pooled median hides
    by_cpu: dict[str, Beside] = field(default_factory=dict)

    @classmethod
    def of(cls, records: Iterable[dict], reference: str) -> Beside:
        """One streamed pass over the records, older calls included."""
        beside = cls(reference=reference)
        for record in records:
            if (record.get("batch") != 1 or not record.get("latency") or not record.get("session")
                    or record.get("emulated") or record.get("kind")):
                continue
            beside._add(record)
            cpu = (record.get("host") or {}).get("cpu")
            if cpu:
                beside.by_cpu.setdefault(cpu, cls(reference=reference))._add(record)
        return beside

    def _add(self, record: dict) -> None:
        settings = record.get("settings") or {}
        if record.get("artifact") == self.reference and record.get("runtime") == "litert" and settings.get(
                "xnnpack", True):
            self.references[_call(record)] = record["latency"]["p90_ms"]
        self.timed[_file_setting(record)][_call(record)] = record["latency"]["p90_ms"]

    def cpu_calls(self, target: str) -> dict[str, int]:
        """CPU model -> how many of the target's calls timed the reference on it."""
        return {cpu: calls for cpu, sub in sorted(self.by_cpu.items())
                if (calls := sum(call[0] == target for call in sub.references))}

    def pooled_cpus(self, targets: Iterable[str]) -> list[str]:
        """A line per target whose calls ran on several CPU models: its medians pool them (pick reads the pool)."""
        lines = []
        for target in targets:
            calls = self.cpu_calls(target)
            if len(calls) > 1:
                lines.append(f"{target}'s calls ran on {len(calls)} CPU models ("
                             + ", ".join(f"{cpu}: {n}" for cpu, n in calls.items())
                             + "); the medians pool them, the report's section reads the budgets on each")
        return lines

    def ratio(self, record: dict) -> tuple[float, float] | None:
        """(p90 / the reference's p90, the reference's p90) in the record's own call, or None if it was not there."""
        reference = self.references.get(_call(record))
        return (record["latency"]["p90_ms"] / reference, reference) if reference else None

    def ratios(self, record: dict) -> list[float]:
        """The file's ratio in every call that timed it beside the reference (its own call's where none is known)."""
        known = [p90 / self.references[call] for call, p90 in self.timed.get(_file_setting(record), {}).items()
                 if self.references.get(call)]
        own = self.ratio(record)
        return known or ([own[0]] if own else [])

    def typical(self, record: dict) -> float | None:
        """The median of `ratios`: one noisy call neither wins nor loses a budget."""
        from statistics import median

        ratios = self.ratios(record)
        return median(ratios) if ratios else None


def best_within(points: list[dict], beside: Beside, budget: float) -> dict | None:
    """The most accurate point whose typical ratio is at most `budget`."""
    within = [p for p in points if (x := beside.typical(p)) is not None and x <= budget]
    return max(within, key=lambda p: (p["accuracy"], -p["latency"]["p90_ms"]), default=None)


def _spread(ratios: list[float]) -> str:
    return f"{min(ratios):.2f}-{max(ratios):.2f}x in {len(ratios)} calls" if len(ratios) > 1 else "1 call"


def section(points: list[dict], beside: Beside, reference: str, tiers: tuple[float, ...] = TIERS) -> list[str]:
    """The report's lines for one target: the best accuracy per budget, then the front with its ratios (each the
    median over the calls that timed the same bytes beside the reference, with their range)."""
    measured = [p for p in points if beside.ratio(p) and p["artifact"] != reference]
    if not measured:
        return []
    lines = [f"Against the reference `{reference}` timed in the same bench call ({len(measured)} of "
             f"{len(points)} points were measured beside it; p90 at batch 1; a file timed in several calls is "
             "read at the median of its ratios, with their range):", ""]
    for budget in tiers:
        best = best_within(measured, beside, budget)
        if best:
            lines.append(f"- at most {budget:g}x: **{best['artifact']}** ({best['runtime']}), accuracy "
                         f"{best['accuracy']:.4f}, {beside.typical(best):.2f}x ({_spread(beside.ratios(best))})")
        else:
            lines.append(f"- at most {budget:g}x: none of them")
    rows = []
    for p in sorted(pareto_front(measured, latency=beside.typical), key=beside.typical):
        _, base = beside.ratio(p)
        rows.append([p["artifact"], p["runtime"], f"{p['accuracy']:.4f}", f"{p['latency']['p90_ms']:.4f}",
                     f"{beside.typical(p):.2f}", _spread(beside.ratios(p)), f"{base:.4f}", p["session"]])
    return [*lines, *_per_cpu(points, beside, tiers), "", "The front of those points, by their ratio:", "",
            markdown_table(HEADERS, rows), ""]


def _per_cpu(points: list[dict], beside: Beside, tiers: tuple[float, ...]) -> list[str]:
    """The budgets again on each CPU model's own calls, where the target's calls ran on more than one."""
    target = points[0].get("target")
    calls = beside.cpu_calls(target)
    if len(calls) < 2:
        return []
    others = [p for p in points if p["artifact"] != beside.reference]
    rows = []
    for cpu, count in calls.items():
        sub, cells = beside.by_cpu[cpu], []
        for budget in tiers:
            best = best_within(others, sub, budget)
            cells.append(f"{best['artifact']} ({best['runtime']}), {best['accuracy']:.4f} at {sub.typical(best):.2f}x "
                         f"({_spread(sub.ratios(best))})" if best else "none")
        rows.append([cpu, str(count), *cells])
    return ["", f"The same budgets on each CPU model's calls alone ({len(calls)} models measured this target; a file's "
            "ratio is the median of its calls on that model):", "",
            markdown_table(["CPU", "calls", *(f"at most {budget:g}x" for budget in tiers)], rows)]
