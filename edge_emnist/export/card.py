"""The model card: everything an app developer needs to feed the artifact and read its answer."""

from __future__ import annotations

import platform

import numpy as np

from edge_emnist.data.classes import class_groups
from edge_emnist.data.registry import DatasetSpec
from edge_emnist.device.runtimes import package_versions

TOOLS = ("edge-emnist", "tensorflow", "tf-keras", "tensorflow-model-optimization", "ai-edge-litert", "tf2onnx",
         "onnx", "onnxruntime", "numpy")

PREPROCESSING = (
    "28x28 grayscale, character white (255) on black (0), upright as a person reads it, centred as in "
    "(E)MNIST; scale pixels to [0, 1] with x / 255. The EMNIST IDX files store every image transposed: "
    "transpose raw EMNIST images before feeding them."
)


def tool_versions() -> dict[str, str | None]:
    return {"python": platform.python_version(), **package_versions(TOOLS)}


def tensor_spec(name: str, shape, dtype: np.dtype, quantization: tuple[float, int] | None) -> dict:
    spec = {"name": name, "shape": [int(d) for d in shape], "dtype": np.dtype(dtype).name}
    if quantization and quantization[0]:
        scale, zero_point = quantization
        spec["quantization"] = {"scale": float(scale), "zero_point": int(zero_point),
                                "real_value": "(q - zero_point) * scale"}
    return spec


def class_groups_section(labels: dict[str, str]) -> dict:
    """Output indices of the digits, letters, capitals and small letters, and how an app uses them."""
    return {**class_groups(labels),
            "how": "to answer only within a group (a digits-only field, a letters-only one), take the argmax of "
                   "the output over that group's indices instead of over all of them: no retraining, no other "
                   "model (docs/embedding.md)"}


def labels_of(spec: DatasetSpec) -> dict[str, str]:
    return {str(i): spec.display_label(i) for i in range(spec.num_classes)}


def input_section(io: dict, spec: DatasetSpec) -> dict:
    section = dict(io)
    quant = io.get("quantization")
    if quant:
        # q = x / scale + zero_point with x = pixel / 255: for scale 1/255 the raw pixel maps straight through
        section["value_range"] = [int(quant["zero_point"]), int(round(1 / quant["scale"] + quant["zero_point"]))]
        section["from_pixels"] = "q = round(pixel / 255 / scale) + zero_point"
    else:
        section["value_range"] = [0.0, 1.0]
    section["preprocessing"] = PREPROCESSING
    section["orientation"] = "upright (EMNIST raw files are transposed)" if spec.transposed else "upright"
    return section
