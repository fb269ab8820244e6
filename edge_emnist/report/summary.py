"""One row per trained network (an architecture, and a family's shape): what a reader compares first (the README's
and docs/results.md's table).

Everything comes from measurements and files already written: bench records (accuracy through the
artifact's runtime, size, p90 at batch 1 and one thread), the float32 artifact's model card (parameters,
MACs, its source run) and that run's metrics.json (training seconds per epoch). A figure that was not
measured is shown as "-", never filled in.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from edge_emnist.device.cards import CardShelf
from edge_emnist.device.formats import CPU_RUNTIMES, RUNTIMES
from edge_emnist.report.results import candidates, of_input
from edge_emnist.report.robustness import of as robust_of

# One latency column per CPU runtime of the table, in its order; sizes and accuracy from the first that measured.
COLUMN_RUNTIMES = CPU_RUNTIMES
HEADERS = ["network", "dataset", "parameters", "MACs", "s/epoch (train)", "float32 acc.", "int8 acc.",
           "int8 artifact", "float32 KiB (gzip)", "int8 KiB (gzip)",
           *(f"{RUNTIMES[r].label} p90 ms fp32 / int8" for r in COLUMN_RUNTIMES),
           "robust acc. fp32 / int8", "MNIST digits fp32"]


def _stem(record: dict) -> str:
    return record["artifact"].rsplit(".", 1)[0]


def model_of(record: dict) -> str:
    """The network a file holds: its name before the dataset (export.artifacts.artifact_name puts the architecture
    and a family's shape tag there), so two edgenet shapes get two rows and a pruned or distilled file of one shape
    stays in its row."""
    head, found, _ = record["artifact"].partition(f"-{record.get('dataset')}-")
    return head if found else record["arch"]  # a file named otherwise: its architecture


def _most_accurate(stems: list[str], by_stem: dict[str, dict[str, dict]]) -> str | None:
    return max(stems, key=lambda s: max(x["accuracy"] for x in by_stem[s].values())) if stems else None


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _training(card: dict) -> dict:
    run = (card.get("source") or {}).get("run")
    return _read_json(Path(run) / "metrics.json") if run else {}


def _ms(record: dict | None) -> str:
    return f"{record['latency']['p90_ms']:.4f}" if record else "-"


def _size(record: dict | None) -> str:
    return f"{record['size_bytes'] / 1024:,.0f} ({record['gzip_bytes'] / 1024:,.0f})" if record else "-"


def summary_rows(records: list[dict], target: str, cards: CardShelf,
                 robustness: dict[str, dict] | None = None) -> list[list[str]]:
    """Rows for HEADERS, one per network (`model_of`); float32: its most accurate unoptimized float32 file (a
    distilled twin beside a plain one), int8: its most accurate int8 file measured (PTQ, QAT or pruned); the
    robustness columns come from `edge-emnist robustness` records of the same files."""
    robustness = robustness or {}
    pool = candidates(records, target, threads=1)
    pool = of_input(pool, "grey") or pool  # networks as trained: an app-ready RGB twin is in the report's table
    by_model: dict[tuple, list[dict]] = defaultdict(list)
    for record in pool:
        if record.get("arch"):
            by_model[(model_of(record), record["dataset"])].append(record)
    rows = []
    for (model_name, dataset), group in sorted(by_model.items()):
        by_stem: dict[str, dict[str, dict]] = defaultdict(dict)
        for record in group:
            by_stem[_stem(record)][record["runtime"]] = record
        fp32 = [s for s, r in by_stem.items() if any(x["quantize"] == "none" and not x.get("optimization")
                                                     for x in r.values())]
        int8 = [s for s, r in by_stem.items() if any(x["quantize"] == "int8" for x in r.values())]
        best_fp32, best_int8 = _most_accurate(fp32, by_stem), _most_accurate(int8, by_stem)
        f, q = by_stem.get(best_fp32, {}), by_stem.get(best_int8, {})
        f_any = next((f[r] for r in COLUMN_RUNTIMES if r in f), None)
        q_any = next((q[r] for r in COLUMN_RUNTIMES if r in q), None)
        card = cards.find(f_any["artifact"]) or {} if f_any else {}
        model, training = card.get("model") or {}, _training(card)
        params = model.get("trainable_params") or training.get("trainable_params")
        rows.append([
            model_name, dataset,
            f"{params:,}" if params else "-",
            f"{model['macs']:,}" if model.get("macs") else "-",
            f"{training['seconds_per_epoch']:.1f}" if training.get("seconds_per_epoch") else "-",
            f"{f_any['accuracy']:.4f}" if f_any else "-",
            f"{q_any['accuracy']:.4f}" if q_any else "-",
            best_int8.split(f"{model_name}-{dataset}-", 1)[-1] if best_int8 else "-",
            _size(f.get(COLUMN_RUNTIMES[0])), _size(q.get(COLUMN_RUNTIMES[0])),
            *(f"{_ms(f.get(r))} / {_ms(q.get(r))}" for r in COLUMN_RUNTIMES),
            " / ".join(f"{r['robust_accuracy']:.4f}" if r.get("robust_accuracy") is not None else "-"
                       for r in (robust_of(f_any, robustness), robust_of(q_any, robustness))),
            f"{m['digits_only_accuracy']:.4f}" if (m := robust_of(f_any, robustness).get("mnist")) else "-",
        ])
    return rows


INT8_HEADERS = ["int8 artifact", "runtime", "int8 acc.", "float32 source", "float32 acc.", "change (points)"]


def int8_rows(records: list[dict], target: str) -> list[list[str]]:
    """Every int8 artifact against the float32 export of the trained run it descends from (same runtime): the
    float32 file of its own name where measured (a distilled student's), else its network's unoptimized one."""
    pool = candidates(records, target, threads=1)
    by_name = {(r["artifact"], r["runtime"]): r for r in pool if r.get("quantize") == "none"}
    float32 = {(model_of(r), r["dataset"], r["runtime"]): r for r in pool
               if r.get("quantize") == "none" and not r.get("optimization")}
    rows = []
    for r in sorted((r for r in pool if r.get("quantize") == "int8"), key=lambda r: (r["arch"], r["artifact"])):
        own = r["artifact"].replace("-int8.", "-fp32.")
        source = by_name.get((own, r["runtime"])) or float32.get((model_of(r), r["dataset"], r["runtime"]))
        if source:
            rows.append([r["artifact"], r["runtime"], f"{r['accuracy']:.4f}", source["artifact"],
                         f"{source['accuracy']:.4f}", f"{100 * (r['accuracy'] - source['accuracy']):+.2f}"])
    return rows
