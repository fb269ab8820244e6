"""Add the `answers` section (edge_emnist.device.cards.answers_section) to cards written before export kept it.

    EDGE_EMNIST_DATA=../shared/data python benchmarks/card_answers.py exported

Each artifact runs through its own runtime on this machine, first on its whole test split: a card whose accuracy
this does not reproduce (within 2e-4, what tests/test_portable_int8.py allows between CPUs) is left as it is and
named. Then the first ANSWERS_KEPT answers go into the card, with the machine that computed them (`computed_on`;
export's own sections carry none: there the export's host computed them). Cards that keep answers are skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from edge_emnist.data import load_dataset
from edge_emnist.device.cards import answers_section, card_path, read_card
from edge_emnist.device.host import host_description
from edge_emnist.device.runtimes import accuracy, open_artifact
from edge_emnist.io import atomic_path

TOLERANCE = 2e-4


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a folder of artifacts with cards (exported/)")
    parser.add_argument("--data-dir", type=Path, default=None, help="data root (default: EDGE_EMNIST_DATA)")
    args = parser.parse_args()
    host = host_description()
    where = {"cpu": host["cpu"], "isa": host["isa"], "machine": host["machine"]}
    failed = 0
    for artifact in sorted(p for p in args.folder.iterdir() if p.suffix in (".tflite", ".onnx")):
        card = read_card(artifact, required=True)
        if card.get("answers"):
            continue
        test = load_dataset(card["dataset"], args.data_dir, splits=("test",), quiet=True).test
        probabilities = open_artifact(artifact).predict(test.images[..., None].astype(np.float32) / 255)
        scored = accuracy(probabilities, test.labels)
        if abs(scored - card["accuracy"]["artifact"]) > TOLERANCE:
            print(f"{artifact.name}: scores {scored:.4f} here, its card says {card['accuracy']['artifact']:.4f}: "
                  "card left as it is", file=sys.stderr)
            failed += 1
            continue
        answers = {**answers_section(probabilities), "computed_on": where}
        card = {key: value for name, kept in card.items()  # after `accuracy`, where export writes it
                for key, value in ((name, kept), *((("answers", answers),) if name == "accuracy" else ()))}
        with atomic_path(card_path(artifact)) as tmp:
            tmp.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
        print(f"{artifact.name}: {scored:.4f} (card {card['accuracy']['artifact']:.4f}); answers kept")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
