"""Is the input pipeline ever the bottleneck? Pipeline images/s against training images/s, batch 256.

    python benchmarks/input_pipeline.py --data-dir ../shared/data/emnist-dev

Pipeline: one pass over the real train split through `data.pipeline.Batches` (shuffle, batch, scale; with and
without the default augmentation), in one thread, nothing else. Training: `train_on_batch` on batches already in
memory, per architecture, so it measures compute alone. The ratio says how many times faster the pipeline is than
the fastest trainer.
Results go to benchmarks/results/input_pipeline.csv and benchmarks/input_pipeline.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edge_emnist.backend import keras, tf
from edge_emnist.data import load_dataset
from edge_emnist.data.augment import Augment
from edge_emnist.data.pipeline import Batches
from edge_emnist.models import create_model
from edge_emnist.report.tables import markdown_table

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


def training_rate(arch: str, num_classes: int, steps: int) -> tuple[float, float]:
    keras.utils.set_random_seed(0)
    model = create_model(arch, num_classes)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    x = tf.random.uniform((BATCH, 28, 28, 1))
    y = tf.random.uniform((BATCH,), maxval=num_classes, dtype=tf.int64)
    for _ in range(3):
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in tqdm(range(steps), desc=arch, leave=False):
        model.train_on_batch(x, y)
    seconds = (time.perf_counter() - start) / steps
    return BATCH / seconds, seconds * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.environ.get("EDGE_EMNIST_DATA"))
    parser.add_argument("--dataset", default="emnist-bymerge")
    parser.add_argument("--archs", default="lenet5,simple_cnn,custom_vgg,custom_resnet,resnet50")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per architecture")
    parser.add_argument("--epochs", type=int, default=2, help="timed pipeline passes over the train split")
    args = parser.parse_args()

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
        rate, ms = training_rate(arch, data.spec.num_classes, steps)
        rows.append([f"train {arch}", f"{rate:,.0f}", f"{ms:.1f}", f"{slowest_pipeline / rate:.1f}x"])
        print(f"train {arch}: {rate:,.0f} images/s, {ms:.1f} ms/step")

    headers = ["stage", "images/s", "ms/step (batch 256)", "augmented pipeline / training"]
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    with open(results / "input_pipeline.csv", "w", newline="") as f:
        csv.writer(f).writerows([headers, *rows])
    from edge_emnist.device.runner import host_description, isa_tier

    described = host_description()
    host = (f"{described['cpu']} ({isa_tier(described)}: {' '.join(described['isa'])}), {os.cpu_count()} cores, "
            f"TensorFlow {tf.__version__}; augmentation: the default `Augment()` in one thread")
    (HERE / "input_pipeline.md").write_text(
        "# Input pipeline vs training throughput\n\n"
        f"Measured on {host}, {data.spec.name} train split from `{data.provenance.directory}` "
        f"({len(labels):,} images, fingerprint {data.provenance.fingerprint[:12]}), batch {BATCH}.\n\n"
        "```\npython benchmarks/input_pipeline.py --data-dir ../shared/data/emnist-dev\n```\n\n"
        + markdown_table(headers, rows)
        + "\n\nThe last column is the slower (augmented) pipeline's rate divided by each model's training rate: "
        "above 1x the pipeline keeps the model fed.\n"
    )


if __name__ == "__main__":
    main()
