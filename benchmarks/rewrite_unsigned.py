"""Store an already exported int8 ONNX artifact as uint8, in place, when its source weights are not at hand.

`edge-emnist export` writes quantized ONNX as uint8 by itself; this is for shipped artifacts whose training
run's weights are not in the repository (so they cannot be exported again). The rewrite is exact
(`edge_emnist/export/onnx_unsigned.py`), and this script proves it on real data before replacing anything:
the rewritten file must give the accuracy the card recorded (measured where it was exported) through ONNX
Runtime's unfused `basic` level, bit-identical outputs to the original there, and it is then measured with all
optimizations on this machine. The card gets the new sha256 and size, a `rewritten` note, and this machine
in `parity.checked_on` (accuracy only: the Keras reference needs the weights).

    python benchmarks/rewrite_unsigned.py exported/simple_cnn-emnist-bymerge-qat-int8.onnx --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import onnx

from edge_emnist.data import load_dataset
from edge_emnist.device.cards import card_path
from edge_emnist.device.files import file_sizes, sha256_file
from edge_emnist.device.host import host_description
from edge_emnist.device.runner import RUNTIME_OF_SUFFIX
from edge_emnist.device.runtimes import OrtModel, accuracy
from edge_emnist.export.onnx_unsigned import eight_bit_types, to_unsigned
from edge_emnist.io import atomic_path


def rewrite(path: Path, data_dir: str) -> None:
    card = json.loads(card_path(path).read_text())
    if eight_bit_types(onnx.load(str(path))) == {"uint8"}:
        print(f"{path.name}: already uint8")
        return
    test = load_dataset(card["dataset"], data_dir, splits=("test",), quiet=True).test
    x = test.images[..., None].astype(np.float32) / 255
    proto = onnx.load(str(path))
    count = to_unsigned(proto)
    onnx.checker.check_model(proto)
    with atomic_path(path) as tmp:
        onnx.save(proto, str(tmp))
        before = OrtModel(path, optimization="basic").predict(x)
        after_unfused = OrtModel(tmp, optimization="basic").predict(x)
        if not np.array_equal(before, after_unfused):
            raise SystemExit(f"{path.name}: the rewrite changed an output; nothing replaced")
        after = OrtModel(tmp).predict(x)
        measured = accuracy(after, test.labels)
        if abs(measured - card["accuracy"]["artifact"]) > 2e-4:
            raise SystemExit(f"{path.name}: accuracy {measured:.4f} here, the card says "
                             f"{card['accuracy']['artifact']:.4f}; nothing replaced")
        host = host_description()
        card["rewritten"] = {"from_sha256": sha256_file(path), "tensors": count, "at": time.strftime("%Y-%m-%d"),
                             "by": "python benchmarks/rewrite_unsigned.py (exact int8 -> uint8 rewrite)"}
        card["sha256"] = sha256_file(tmp)
        card["size"] = file_sizes(tmp)
        card["parity"].setdefault("checked_on", []).append({
            "target": "native", "cpu": host["cpu"], "machine": host["machine"], "isa": host["isa"],
            "runtime": RUNTIME_OF_SUFFIX[path.suffix], "top1_agreement": None, "accuracy": measured,
            "samples": int(len(test.labels)), "onnxruntime": host["versions"].get("onnxruntime"),
            "note": "the source weights are not in the repository: accuracy only"})
    with atomic_path(card_path(path)) as card_tmp:  # after the artifact, as export publishes them
        card_tmp.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    print(f"{path.name}: {count} tensors to uint8, accuracy {measured:.4f} here "
          f"(card {card['accuracy']['artifact']:.4f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifacts", type=Path, nargs="+")
    parser.add_argument("--data-dir", default="../shared/data")
    args = parser.parse_args()
    for path in args.artifacts:
        rewrite(path, args.data_dir)


if __name__ == "__main__":
    main()
