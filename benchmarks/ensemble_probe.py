"""How much an ensemble of trained runs would score: each run's softmax on the validation split (the run's own
seeded split) and the test split, then every combination of 2..N runs averaged. An upper bound for what
distillation from that ensemble can give a student, and the price of shipping the ensemble itself (the members'
latencies add up). Validation ranks the combinations; test is printed beside it, not used to choose.

    EDGE_EMNIST_DATA=../shared/data python benchmarks/ensemble_probe.py RUN RUN [RUN...]
"""

from __future__ import annotations

import itertools
import sys

import numpy as np

from edge_emnist.data import load_dataset
from edge_emnist.optimize.rebuild import build_model
from edge_emnist.runs import open_run, training_split


def main(paths: list[str]) -> None:
    runs = [open_run(p) for p in paths]
    if len(runs) < 2 or len({(r.config.dataset, r.config.seed, r.config.val_fraction) for r in runs}) != 1:
        sys.exit("name two or more runs of one dataset, seed and validation fraction (one validation split)")
    data = load_dataset(runs[0].config.dataset, quiet=True)
    _, _, x_val, y_val = training_split(runs[0].config, data)
    splits = {"validation": (x_val, y_val), "test": (data.test.images, data.test.labels)}
    probs = {}
    for path, run in zip(paths, runs, strict=True):
        model = build_model(run, data.spec.num_classes)
        probs[path] = {name: model.predict(x[..., None].astype("float32") / 255, batch_size=1024, verbose=0)
                       for name, (x, _) in splits.items()}

    def accuracy(members, split):
        return float(np.mean(sum(probs[m][split] for m in members).argmax(1) == splits[split][1]))

    rows = [(accuracy(c, "validation"), accuracy(c, "test"), c) for n in range(1, len(paths) + 1)
            for c in itertools.combinations(paths, n)]
    for val, test, members in sorted(rows, key=lambda row: (len(row[2]), -row[0])):
        names = " + ".join(m.rstrip("/").split("/")[-1] for m in members)
        print(f"{len(members)}  validation {val:.4f}  test {test:.4f}  {names}")


if __name__ == "__main__":
    main(sys.argv[1:])
