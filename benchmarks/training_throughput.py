"""Training throughput per architecture at batch 256 on this machine, from committed measurements.

    python benchmarks/training_throughput.py        # writes benchmarks/training_throughput.md

Two views, both measured here and committed, nothing re-estimated:
- compute only: `train_on_batch` on in-memory batches (benchmarks/results/input_pipeline.csv, made by
  `python benchmarks/input_pipeline.py --data-dir ../shared/data/emnist-dev`);
- end to end: the committed training runs' metrics.json (seconds per epoch including the validation pass,
  images/s and ms/step over the train split), made by the commands in benchmarks/results/runs/README.md.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

HERE = Path(__file__).parent
RUNS = HERE / "results" / "runs"
ORDER = ["lenet5", "lenet5_relu", "simple_cnn", "custom_vgg", "custom_resnet", "resnet50"]


def compute_only() -> dict[str, tuple[str, str]]:
    rows = {}
    with open(HERE / "results" / "input_pipeline.csv") as f:
        for row in csv.DictReader(f):
            if row["stage"].startswith("train "):
                rows[row["stage"].removeprefix("train ")] = (row["images/s"], row["ms/step (batch 256)"])
    return rows


def end_to_end() -> dict[str, dict]:
    runs = {}
    for metrics_file in sorted(RUNS.glob("*-emnist-bymerge/metrics.json")):
        metrics = json.loads(metrics_file.read_text())
        runs[metrics["arch"]] = {**metrics, "run": metrics_file.parent.name}
    return runs


def main() -> None:
    compute, runs = compute_only(), end_to_end()
    lines = [
        "# Training throughput at batch 256 (this machine)", "",
        "2-core x86_64 VM (AMD EPYC, avx2 + avx512_vnni), no GPU, TensorFlow 2.21 (tf_keras), float32.", "",
        "| architecture | compute only: images/s | compute only: ms/step | run: s/epoch | run: images/s "
        "| run: ms/step | run | study, Table 10 |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for arch in ORDER:
        images, ms = compute.get(arch, ("-", "-"))
        run = runs.get(arch)
        cells = ([f"{run['seconds_per_epoch']:.1f}", f"{run['images_per_s']:,.0f}", f"{run['ms_per_step']:.1f}",
                  f"[{run['run']}](results/runs/{run['run']}/)"] if run else ["-", "-", "-", "not trained yet"])
        lines.append(f"| {arch} | {images} | {ms} | " + " | ".join(cells) + " | see below |")
    lines += [
        "",
        "Compute only: `python benchmarks/input_pipeline.py --data-dir ../shared/data/emnist-dev` "
        "(`train_on_batch` on in-memory batches, 3 warm-up steps, then timed steps; the CSV is "
        "`results/input_pipeline.csv`). Run: the committed runs' `metrics.json` (mean seconds per epoch over the "
        "run, validation pass included; images/s and ms/step over the train split of 83,751 images). "
        "Runs that shared the CPU with other work are slower than compute-only; see results/runs/README.md.",
        "",
        "Study, Table 10: the study's own training-time column could not be consulted here (no copy of the "
        "paper is reachable from this offline workspace), so it is left out rather than guessed. Whatever its "
        "figures, they come from a GPU and the official EMNIST train split (697,932 bymerge images, 7.5x "
        "emnist-dev's), so only the ranking of the architectures is comparable, not the numbers.",
        "",
        "Regenerate: `python benchmarks/training_throughput.py`.",
    ]
    (HERE / "training_throughput.md").write_text("\n".join(lines) + "\n")
    print("wrote", HERE / "training_throughput.md")


if __name__ == "__main__":
    main()
