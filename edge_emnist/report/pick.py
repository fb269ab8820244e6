"""`edge-emnist pick`: choose an artifact from measurements on the target, and say why."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edge_emnist.device.cards import INPUTS, CardShelf
from edge_emnist.device.records import card_status
from edge_emnist.errors import EdgeEmnistError
from edge_emnist.options import fraction, option, positive_float, positive_int
from edge_emnist.report.pareto import knee, pareto_front
from edge_emnist.report.relative import REFERENCE, Beside
from edge_emnist.report.results import candidates, describe, fill_inputs, of_input


@dataclass
class Constraints:
    """What `pick` (and the pipeline's pick) may be told; none: the Pareto knee."""

    max_latency_ms: float | None = option(None, type=positive_float, help="on p90 at batch 1")  # the headline one
    max_size_kb: float | None = option(None, type=positive_float, help="raw artifact size in KiB")
    min_accuracy: float | None = option(None, type=fraction, help="test accuracy as a fraction, e.g. 0.88")
    min_robust_accuracy: float | None = option(
        None, type=fraction, metavar="FRACTION",
        help="mean accuracy under the everyday transformations (rotation +-15 deg, strokes +-1 px, zoom 0.8/1.2, 2 px "
             "off centre) from `edge-emnist robustness` records, e.g. 0.8")
    max_ratio: float | None = option(
        None, type=positive_float, metavar="X",
        help="p90 at most X times the --reference file's p90 timed in the same bench call, read as the report's "
             "budget lines read it (the median over every call that timed the file beside the reference): a budget "
             "that means the same on every machine, e.g. 1 for 'no slower than LeNet-5'")

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.max_latency_ms, self.max_size_kb, self.min_accuracy,
                                           self.min_robust_accuracy, self.max_ratio))

    def violations(self, record: dict, ratio: float | None = None) -> list[str]:
        """What `record` breaks; `ratio`: its p90 as a multiple of the reference's (None: never timed beside it)."""
        found = []
        p90, size_kb = record["latency"]["p90_ms"], record["size_bytes"] / 1024
        if self.max_latency_ms is not None and p90 > self.max_latency_ms:
            found.append(f"p90 {p90:.3f} ms > {self.max_latency_ms} ms")
        if self.max_ratio is not None:
            if ratio is None:
                found.append("never timed beside the reference (bench them in one call)")
            elif ratio > self.max_ratio:
                found.append(f"{ratio:.2f}x the reference > {self.max_ratio:g}x")
        if self.max_size_kb is not None and size_kb > self.max_size_kb:
            found.append(f"size {size_kb:.0f} KiB > {self.max_size_kb} KiB")
        if self.min_accuracy is not None and record["accuracy"] < self.min_accuracy:
            found.append(f"accuracy {record['accuracy']:.4f} < {self.min_accuracy}")
        if self.min_robust_accuracy is not None:
            robust = record.get("robust_accuracy")
            if robust is None:
                found.append("robustness not measured (edge-emnist robustness)")
            elif robust < self.min_robust_accuracy:
                found.append(f"robust accuracy {robust:.4f} < {self.min_robust_accuracy}")
        return found

    def excess(self, record: dict, ratio: float | None = None) -> float:
        """How far a record is from meeting the constraints: the sum of its relative overshoots (0 if it fits),
        so that "closest" means closest, not merely the fewest broken constraints."""
        total = 0.0
        p90, size_kb = record["latency"]["p90_ms"], record["size_bytes"] / 1024
        if self.max_latency_ms is not None and p90 > self.max_latency_ms:
            total += p90 / self.max_latency_ms - 1 if self.max_latency_ms > 0 else float("inf")
        if self.max_ratio is not None:
            total += 1.0 if ratio is None else max(0.0, ratio / self.max_ratio - 1)
        if self.max_size_kb is not None and size_kb > self.max_size_kb:
            total += size_kb / self.max_size_kb - 1 if self.max_size_kb > 0 else float("inf")
        if self.min_accuracy is not None and record["accuracy"] < self.min_accuracy:
            total += (self.min_accuracy - record["accuracy"]) / self.min_accuracy
        if self.min_robust_accuracy is not None:
            robust = record.get("robust_accuracy")
            if robust is None:
                total += 1.0  # unmeasured: as far off as can be
            elif robust < self.min_robust_accuracy:
                total += (self.min_robust_accuracy - robust) / self.min_robust_accuracy
        return total


def measured_where(record: dict) -> list[Path]:
    """Where to look for the file a record measured: the path bench was given, then the shipped folders."""
    from edge_emnist.workspace import NOT_SHIPPED, SHIPPED_EXPORTS

    recorded = [Path(record["artifact_path"]).parent] if record.get("artifact_path") else []
    return [*recorded, SHIPPED_EXPORTS, NOT_SHIPPED]


@dataclass
class PickOptions:
    """Which measurements `pick` chooses among (the constraints say what the choice must meet)."""

    target: str | None = option(None, help="a target label such as cpu:vm-avx2, or its kind before ':' (default: "
                                           "this machine's label where it has measurements, else cpu)")
    threads: int | None = option(None, type=positive_int, help="only settings with this many threads")
    dataset: str | None = option(None, metavar="NAME", help="only artifacts trained on this dataset (needed when the "
                                                             "results hold several)")
    exported: list[Path] | None = option(
        None, type=Path, nargs="+", metavar="DIR",
        help="only artifacts still present in these folders and unchanged since they were measured (default: where "
             "bench measured each, then exported/ and benchmarks/results/not-shipped/; a file found nowhere, changed, "
             "or contradicted by its card is never picked)")
    allow_uncarded: bool = option(False, help="also consider files that were measured without a current model card")
    reference: str = option(REFERENCE, metavar="ARTIFACT",
                            help="the file --max-ratio measures against (its name; bench it in the same call)")
    input: str = option("grey", choices=lambda: (*INPUTS, "any"),
                        help="only artifacts taking this input: grey (28x28x1, as trained), rgb (the app-ready "
                             "28x28x3 twins, export --input rgb) or any; twins of one network otherwise compete "
                             "with each other")

    @property
    def input_kind(self) -> str | None:
        return None if self.input == "any" else self.input


def stale_reason(record: dict, artifact_dirs: Sequence[Path] | None, checked: dict | None = None,
                 cards: CardShelf | None = None) -> str | None:
    """Why a measurement no longer describes a shippable file: the artifact is gone, it changed since, or its card
    now contradicts it. `artifact_dirs` None: where the record says it was measured (measured_where). `checked`
    keeps the verdict per file and measured sha256, so one file measured in several settings is read once; the
    card comes from `cards` where given (the shelf the rest of the pick reads)."""
    folders = measured_where(record) if artifact_dirs is None else artifact_dirs
    found = next((Path(d) / record["artifact"] for d in folders if (Path(d) / record["artifact"]).is_file()), None)
    if found is None:
        return (f"{record['artifact']} is not in {', '.join(map(str, folders))} any more"
                + (" (pass --exported DIR where it is)" if artifact_dirs is None else ""))
    key = (found, record.get("artifact_sha256"))
    checked = {} if checked is None else checked
    if key not in checked:
        checked[key] = _file_problem(*key, cards or CardShelf())
    return checked[key]


def _file_problem(found: Path, measured: str | None, cards: CardShelf) -> str | None:
    from edge_emnist.device.cards import card_mismatch
    from edge_emnist.device.files import sha256_file
    from edge_emnist.device.runtimes import model_io

    if measured and sha256_file(found) != measured:
        return f"{found} changed after it was measured (sha256 differs): bench it again"
    card = cards.find(found.name, [found.parent])
    wrong = card and card_mismatch(card, model_io(found))
    return f"{found}: {wrong}" if wrong else None


def _one(pool: list[dict], key: str, option: str, what: str) -> None:
    values = sorted({str(r.get(key)) for r in pool})
    if len(values) > 1:
        raise EdgeEmnistError(f"the measurements span {len(values)} {what} ({', '.join(values)}); results are only "
                              f"comparable within one: pass {option} with one of them")


def _summary(record: dict, beside: Beside | None = None) -> str:
    ratios = beside.ratios(record) if beside else []
    relative = ""
    if ratios:
        relative = (f", {beside.typical(record):.2f}x the reference"
                    + (f" (median of {len(ratios)} calls, {min(ratios):.2f}-{max(ratios):.2f}x)" if len(ratios) > 1
                       else ""))
    return (f"accuracy {record['accuracy']:.4f}, p90 {record['latency']['p90_ms']:.3f} ms "
            f"(p50 {record['latency']['p50_ms']:.3f}){relative}, {record['size_bytes'] / 1024:.0f} KiB")


def pick(records: list[dict], target: str, constraints: Constraints, threads: int | None = None,
         dataset: str | None = None, artifact_dirs: Sequence[Path] | None = None, *, check_files: bool = False,
         allow_uncarded: bool = False, input_kind: str | None = "grey",
         cards: CardShelf | None = None, beside: Beside | None = None) -> tuple[dict, str]:
    """The pick and a few lines of reasons; raises a one-line error when nothing was measured or nothing fits.

    Latency is compared on one machine only and accuracy on one dataset only (same name and same files):
    records spanning several raise an error that says which option narrows them. With `artifact_dirs`
    (or `check_files`: where each record says it was measured), a record whose artifact is gone, changed since
    it was measured or contradicted by its card is not a candidate. Records of files measured without a current
    model card are left out unless `allow_uncarded`. Only artifacts taking `input_kind` input compete (None: all;
    the kind comes from each file's card where the record predates it). `cards`: a shelf of `artifact_dirs`' cards
    the caller reads too (default: a new one). `beside`: what a `max_ratio` constraint reads, built from every
    record (`iter_records`: older calls included, as the report's budget lines read them; default: from `records`,
    which hold only the latest call of each setting where they come from `load_records`).
    """
    if constraints.max_ratio is not None and beside is None:
        beside = Beside.of(records, REFERENCE)
    elif constraints.max_ratio is None:
        beside = None  # no ratio asked for: none printed
    pool = [r for r in candidates(records, target, threads) if dataset is None or r.get("dataset") == dataset]
    stale = []
    if not allow_uncarded:
        uncarded = [r for r in pool if card_status(r) != "ok"]
        stale += [f"{r['artifact']} was measured without a current model card ({card_status(r)}; "
                  "--allow-uncarded takes it)" for r in uncarded]
        pool = [r for r in pool if card_status(r) == "ok"]
    if not pool and stale:
        raise EdgeEmnistError(f"no candidate: {stale[0]}")
    if not pool:
        raise EdgeEmnistError(f"no batch-1 measurements with accuracy for target {target!r}"
                              f"{f' and dataset {dataset}' if dataset else ''}: "
                              "run `edge-emnist bench` there (or --import its results) first")
    _one(pool, "target", "--target", "machines")
    _one(pool, "dataset", "--dataset", "datasets")
    _one([r for r in pool if r.get("data_fingerprint")], "data_fingerprint", "--results",
         "copies of the dataset (fingerprints)")
    cards = cards if cards is not None else CardShelf(artifact_dirs or ())  # each card read once, whichever asks
    if artifact_dirs is not None or check_files:
        from edge_emnist.report.results import drop_superseded

        if artifact_dirs is not None:
            pool, replaced = drop_superseded(pool, cards)
            stale += [f"{r['artifact']} was exported again after this measurement" for r in replaced]
        checked: dict = {}
        reasons = {id(r): stale_reason(r, artifact_dirs, checked, cards) for r in pool}
        stale += [reasons[id(r)] for r in pool if reasons[id(r)]]
        pool = [r for r in pool if not reasons[id(r)]]
        if not pool:
            raise EdgeEmnistError(f"every measured artifact is stale: {stale[0]}")
    if artifact_dirs is not None or check_files:  # records made before bench wrote the input kind: the card says
        fill_inputs(pool, cards, None if artifact_dirs is not None else measured_where)
    kept = of_input(pool, input_kind)
    if not kept:
        kinds = sorted({str(r.get("input")) for r in pool})
        raise EdgeEmnistError(f"no candidate taking {input_kind} input: the {len(pool)} measured settings take "
                              f"{', '.join(kinds)} input (pass --input {kinds[0]} or --input any)")
    pool = kept
    hosts = sorted({r["target"] for r in pool})
    if constraints.any:
        ratio = {id(r): beside.typical(r) if beside else None for r in pool}  # each file's calls read once
        broken = {id(r): constraints.violations(r, ratio[id(r)]) for r in pool}
        fitting = [r for r in pool if not broken[id(r)]]
        if not fitting:
            closest = min(pool, key=lambda r: constraints.excess(r, ratio[id(r)]))
            raise EdgeEmnistError(f"nothing measured on {target} meets the constraints; closest: "
                                  f"{describe(closest)} ({'; '.join(broken[id(closest)])})")
        chosen = max(fitting, key=lambda r: (r["accuracy"], -r["latency"]["p90_ms"]))
        why = [f"picked {describe(chosen)}: {_summary(chosen, beside)}",
               f"the most accurate of {len(fitting)} of {len(pool)} measured settings on {', '.join(hosts)} "
               "that meet every constraint (ties go to the lower p90)"]
        if beside is not None:
            why.append(f"ratios are to {beside.reference}'s p90 in the same bench call, the median over the calls "
                       "that timed each file beside it")
            why += beside.pooled_cpus(hosts)
        rejected = sorted((r for r in pool if broken[id(r)]), key=lambda r: -r["accuracy"])[:3]
        why += [f"rejected {describe(r)}: {'; '.join(broken[id(r)])}" for r in rejected]
    else:
        front = pareto_front(pool)
        chosen = knee(front)
        why = [f"picked {describe(chosen)}: {_summary(chosen)}",
               f"the knee of the accuracy/p90-latency Pareto front ({len(front)} of {len(pool)} settings measured "
               f"on {', '.join(hosts)}): closest to the best-accuracy, lowest-latency corner"]
        why += [f"front: {describe(r)}: {_summary(r)}" for r in front if r is not chosen]
    why += [f"not considered: {reason}" for reason in sorted(set(stale))[:3]]
    return chosen, "\n".join(why)


def default_target(records: list[dict]) -> str:
    """This machine's own label where the records hold measurements from it, else any CPU ("cpu")."""
    from edge_emnist.device.host import host_description
    from edge_emnist.targets.machines import LocalMachine

    here = LocalMachine.label(host_description())
    return here if any(r.get("target") == here for r in records) else "cpu"
