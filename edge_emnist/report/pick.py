"""`edge-emnist pick`: choose an artifact from measurements on the target, and say why."""

from __future__ import annotations

from dataclasses import dataclass

from edge_emnist.errors import EdgeEmnistError
from edge_emnist.report.pareto import knee, pareto_front
from edge_emnist.report.results import candidates, describe


@dataclass
class Constraints:
    max_latency_ms: float | None = None  # on p90, the headline percentile
    max_size_kb: float | None = None
    min_accuracy: float | None = None

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.max_latency_ms, self.max_size_kb, self.min_accuracy))

    def violations(self, record: dict) -> list[str]:
        found = []
        p90, size_kb = record["latency"]["p90_ms"], record["size_bytes"] / 1024
        if self.max_latency_ms is not None and p90 > self.max_latency_ms:
            found.append(f"p90 {p90:.3f} ms > {self.max_latency_ms} ms")
        if self.max_size_kb is not None and size_kb > self.max_size_kb:
            found.append(f"size {size_kb:.0f} KiB > {self.max_size_kb} KiB")
        if self.min_accuracy is not None and record["accuracy"] < self.min_accuracy:
            found.append(f"accuracy {record['accuracy']:.4f} < {self.min_accuracy}")
        return found


def _summary(record: dict) -> str:
    return (f"accuracy {record['accuracy']:.4f}, p90 {record['latency']['p90_ms']:.3f} ms "
            f"(p50 {record['latency']['p50_ms']:.3f}), {record['size_bytes'] / 1024:.0f} KiB")


def pick(records: list[dict], target: str, constraints: Constraints, threads: int | None = None) -> tuple[dict, str]:
    """The pick and a few lines of reasons; raises a one-line error when nothing was measured or nothing fits."""
    pool = candidates(records, target, threads)
    if not pool:
        raise EdgeEmnistError(f"no batch-1 measurements with accuracy for target {target!r}: "
                              "run `edge-emnist bench` there (or --import its results) first")
    hosts = sorted({r["target"] for r in pool})
    if constraints.any:
        fitting = [r for r in pool if not constraints.violations(r)]
        if not fitting:
            closest = min(pool, key=lambda r: len(constraints.violations(r)))
            raise EdgeEmnistError(f"nothing measured on {target} meets the constraints; closest: "
                                  f"{describe(closest)} ({'; '.join(constraints.violations(closest))})")
        chosen = max(fitting, key=lambda r: (r["accuracy"], -r["latency"]["p90_ms"]))
        why = [f"picked {describe(chosen)}: {_summary(chosen)}",
               f"the most accurate of {len(fitting)} of {len(pool)} measured settings on {', '.join(hosts)} "
               "that meet every constraint (ties go to the lower p90)"]
        rejected = sorted((r for r in pool if constraints.violations(r)), key=lambda r: -r["accuracy"])[:3]
        why += [f"rejected {describe(r)}: {'; '.join(constraints.violations(r))}" for r in rejected]
    else:
        front = pareto_front(pool)
        chosen = knee(front)
        why = [f"picked {describe(chosen)}: {_summary(chosen)}",
               f"the knee of the accuracy/p90-latency Pareto front ({len(front)} of {len(pool)} settings measured "
               f"on {', '.join(hosts)}): closest to the best-accuracy, lowest-latency corner"]
        why += [f"front: {describe(r)}: {_summary(r)}" for r in front if r is not chosen]
    return chosen, "\n".join(why)
