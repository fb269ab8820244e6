"""Validation accuracy of exported artifacts, through their own runtimes: what chooses between int8 variants of one
run (post-training calibration sizes, QAT with or without teachers) without touching the test split. The run's
seeded validation split is rebuilt from its config.json; test is printed beside it (from the card), not used to
choose.

    EDGE_EMNIST_DATA=../shared/data python benchmarks/artifact_validation.py RUN ARTIFACT [ARTIFACT...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from edge_emnist.data import load_dataset
from edge_emnist.device.runtimes import accuracy, open_artifact
from edge_emnist.runs import open_run, training_split


def main(run_path: str, artifacts: list[str]) -> None:
    if not artifacts:
        sys.exit(__doc__)
    run = open_run(run_path)
    data = load_dataset(run.config.dataset, quiet=True)
    _, _, x_val, y_val = training_split(run.config, data)
    images = x_val[..., None].astype("float32") / 255.0
    print(f"validation split of {run.path}: {len(y_val):,} images")
    print(f"{'artifact (as given)':<100} {'validation':>10} {'test':>8}")
    for path in map(Path, artifacts):
        card = Path(f"{path}.json")
        test = json.loads(card.read_text()).get("accuracy", {}).get("artifact") if card.exists() else None
        val = accuracy(open_artifact(path).predict(images), y_val)
        print(f"{str(path):<100} {val:>10.4f} {test if test is None else f'{test:.4f}':>8}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else sys.exit(__doc__)
