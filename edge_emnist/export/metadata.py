"""What an artifact says about itself: the facts an app needs (labels, input normalization, orientation) and where
the model came from, embedded in the file so that tools read them from it (ONNX Runtime's custom metadata map,
Netron's properties) instead of from a card beside it.

Embedded before the parity check, so the answers checked and the sha256 on the card are the final file's.
"""

from __future__ import annotations

import json
from pathlib import Path

from edge_emnist import __version__
from edge_emnist.device.cards import PREPROCESSING

# Input normalization in the usual (pixel - mean) / std form, for a float input in [0, 1]
NORMALIZATION = {"mean": [0.0], "std": [255.0]}
LUMA = (0.299, 0.587, 0.114)  # RGB to grey inside an --input rgb model (ITU-R BT.601)


def facts(*, name: str, arch: str, dataset: str, labels: dict[str, str], class_groups: dict | None,
          source_run: str, weights_sha256: str, data_fingerprint: str, transposed: bool,
          channels: int = 1) -> dict[str, str]:
    """String to string, as ONNX `metadata_props` (and TFLite metadata's name/description) hold them."""
    return {
        "name": name,
        "version": __version__,
        "producer": f"edge-emnist {__version__}",
        "description": f"{arch} trained on {dataset}: one 28x28 grey character in, softmax over "
                       f"{len(labels)} classes out",
        "labels": json.dumps([labels[str(i)] for i in range(len(labels))], ensure_ascii=False),
        "class_groups": json.dumps(class_groups or {}, ensure_ascii=False),
        "normalization": json.dumps({key: values * channels for key, values in NORMALIZATION.items()}),
        "input_color": "RGB, turned grey inside the model" if channels == 3 else "grey",
        "preprocessing": PREPROCESSING,
        "orientation": "upright (EMNIST raw files are transposed)" if transposed else "upright",
        "dataset": dataset,
        "source_run": source_run,
        "weights_sha256": weights_sha256,
        "data_fingerprint": data_fingerprint,
    }


def embed_onnx(path: Path, properties: dict[str, str]) -> None:
    """Set the model's metadata_props (replacing ones of the same key) and write the file in place."""
    import onnx

    model = onnx.load(str(path))
    kept = [p for p in model.metadata_props if p.key not in properties]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in properties.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))


def read_onnx(path: Path) -> dict[str, str]:
    import onnx

    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
