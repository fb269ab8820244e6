"""Is the input pipeline ever the bottleneck? Pipeline images/s against training images/s, batch 256.

    python benchmarks/input_pipeline.py --data-dir ../shared/data/emnist-dev [--backend tensorflow]

Pipeline: one pass over the real train split through `data.pipeline.Batches` (shuffle, batch, scale; with and
without the default augmentation), in one thread, nothing else. Training: the engine's Keras 3 step on batches
already in memory, per architecture (benchmarks/train_step.py's `measure`, as `edge-emnist train` compiles it),
so it measures compute alone. The ratio says how many times faster the pipeline is than
the fastest trainer.
Results go to benchmarks/results/input_pipeline.csv and benchmarks/input_pipeline.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np

from edge_emnist import keras3
from edge_emnist.data import load_dataset
from edge_emnist.data.augment import Augment
from edge_emnist.data.batches import Batches
from edge_emnist.tables import markdown_table

HERE = Path(__file__).parent
BATCH = 256


def pipeline_rate(images: np.ndarray, labels: np.ndarray, augment: Augment | None, epochs: int) -> float:
    batches = Batches(images, labels, batch_size=BATCH, shuffle=True, augment=augment)
    for i in range(5):  # warm-up: first-touch of the arrays
        batches[i]
    start = time.perf_counter()
    seen = 0
    for _ in range(epochs):
        for x, _ in batches:
            seen += int(x.shape[0])
        batches.on_epoch_end()
    return seen / (time.perf_counter() - start)


def training_rate(arch: str, keras, steps: int) -> tuple[float, float]:
    """Images/s and median ms per step of the engine's training step (benchmarks/train_step.py)."""
    sys.path.insert(0, str(HERE))
    from train_step import measure

    ms = measure(arch, keras, batch=BATCH, steps=steps, warmup=3)["ms_per_step_p50"]
    return BATCH * 1000 / ms, ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.environ.get("EDGE_EMNIST_DATA"))
    parser.add_argument("--dataset", default="emnist-bymerge")
    parser.add_argument("--archs", default="lenet5,simple_cnn,custom_vgg,custom_resnet,resnet50")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per architecture")
    parser.add_argument("--epochs", type=int, default=2, help="timed pipeline passes over the train split")
    parser.add_argument("--backend", choices=sorted(keras3.BACKENDS),
                        help="Keras 3 backend of the training step (default: what `edge-emnist train` picks here)")
    args = parser.parse_args()
    keras = keras3.load_keras(args.backend)

    data = load_dataset(args.dataset, args.data_dir, quiet=True)
    images, labels = data.train.images, data.train.labels
    rows = []
    for name, augment in [("pipeline", None), ("pipeline + augment", Augment())]:
        rate = pipeline_rate(images, labels, augment, args.epochs)
        rows.append([name, f"{rate:,.0f}", "", ""])
        print(f"{name}: {rate:,.0f} images/s")
    slowest_pipeline = min(float(r[1].replace(",", "")) for r in rows)
    for arch in args.archs.split(","):
        steps = max(3, args.steps // 4) if arch == "resnet50" else args.steps
        rate, ms = training_rate(arch, keras, steps)
        rows.append([f"train {arch}", f"{rate:,.0f}", f"{ms:.1f}", f"{slowest_pipeline / rate:.1f}x"])
        print(f"train {arch}: {rate:,.0f} images/s, {ms:.1f} ms/step")

    headers = ["stage", "images/s", "ms/step (batch 256)", "augmented pipeline / training"]
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    with open(results / "input_pipeline.csv", "w", newline="") as f:
        csv.writer(f).writerows([headers, *rows])
    from edge_emnist.device.host import host_description, isa_tier

    described = host_description()
    host = (f"{described['cpu']} ({isa_tier(described)}: {' '.join(described['isa'])}), {os.cpu_count()} cores, "
            f"Keras {keras.__version__} on {keras.backend.backend()}; augmentation: the default `Augment()` in one "
            "thread")
    (HERE / "input_pipeline.md").write_text(
        "# Input pipeline vs training throughput\n\n"
        f"Measured on {host}, {data.spec.name} train split from `{data.provenance.directory}` "
        f"({len(labels):,} images, fingerprint {data.provenance.fingerprint[:12]}), batch {BATCH}.\n\n"
        "```\npython benchmarks/input_pipeline.py --data-dir ../shared/data/emnist-dev\n```\n\n"
        + markdown_table(headers, rows)
        + "\n\nThe last column is the slower (augmented) pipeline's rate divided by each model's training rate: "
        "above 1x the pipeline keeps the model fed. In `edge-emnist train` the batches come through Keras 3's "
        "PyDataset; `--workers N` makes (augmented) batches ahead in N threads while the model trains.\n"
    )


if __name__ == "__main__":
    main()
