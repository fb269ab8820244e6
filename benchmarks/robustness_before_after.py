"""Augmentation's effect, per artifact measured both ways: the Markdown table of docs/robustness.md.

    python benchmarks/robustness_before_after.py   # reads benchmarks/results/robustness{,-unaugmented}.jsonl

"Before" is the artifact shipped before training used augmentation (git history; `edge-emnist robustness` on
it wrote robustness-unaugmented.jsonl), "after" the one shipped now; same conditions, same test sample.
"""

from __future__ import annotations

import json
from pathlib import Path

from edge_emnist.report.robustness import condition_label
from edge_emnist.tables import markdown_table

HERE = Path(__file__).parent / "results"
COLUMNS = [("clean", None), ("rotation", 15.0), ("thickness", -1.0), ("thickness", 1.0), ("scale", 0.8),
           ("shift", 3.0), ("noise", 0.1)]


def _read(path: Path) -> dict[str, dict]:
    records = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        records[record["artifact"]] = record  # the latest of each
    return records


def _cell(record: dict, family: str, strength: float | None) -> float:
    if strength is None:
        return record["clean_accuracy"]
    return next(c["accuracy"] for c in record["conditions"] if c["family"] == family and c["strength"] == strength)


def main() -> None:
    before, after = _read(HERE / "robustness-unaugmented.jsonl"), _read(HERE / "robustness.jsonl")
    headers = ["artifact", "training", *(condition_label(f, s) if s is not None else f for f, s in COLUMNS), "robust",
               "MNIST digits only", "MNIST all classes", "pen strokes"]
    rows = []
    for name in sorted(set(before) & set(after)):
        for label, r in (("no augmentation", before[name]), ("augmented", after[name])):
            rows.append([name if label == "no augmentation" else "", label,
                         *(f"{_cell(r, f, s):.4f}" for f, s in COLUMNS), f"{r['robust_accuracy']:.4f}",
                         f"{r['mnist']['digits_only_accuracy']:.4f}", f"{r['mnist']['accuracy']:.4f}",
                         f"{r['strokes']['accuracy']:.4f}"])
    print(markdown_table(headers, rows))


if __name__ == "__main__":
    main()
