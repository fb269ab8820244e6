"""Size and cost of a model: trainable parameters and multiply-accumulates (MACs) per image.

MACs count convolutions and dense layers only (BatchNorm folds into the convolution at export; pooling,
activations and additions are comparatively free), the usual convention for comparing CNNs.
"""

from __future__ import annotations

import json
from math import prod
from pathlib import Path

import numpy as np

# Parameters, MACs and descriptions of every architecture at the class counts of the datasets, kept so that
# `edge-emnist models` answers without importing TensorFlow. Made by `python -m edge_emnist.models.cost`;
# tests/test_models.py checks it against the models themselves.
PROFILES = Path(__file__).with_name("costs.json")
CLASS_COUNTS = (10, 26, 47, 62)


def cached_costs() -> dict:
    """{arch: {"description": ..., "classes": {"47": [params, macs], ...}}}, or {} if the file is missing."""
    try:
        return json.loads(PROFILES.read_text())
    except (OSError, ValueError):
        return {}


def compute_profiles() -> dict:
    from edge_emnist.models import create_model, list_models, model_entry

    return {name: {"description": model_entry(name).description,
                   "classes": {str(n): [trainable_params(m), macs(m)] for n in CLASS_COUNTS
                               for m in [create_model(name, n)]}}
            for name in list_models()}


def trainable_params(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def layer_macs(layer) -> int:
    from edge_emnist.tf_keras_env import keras

    if isinstance(layer, keras.layers.Conv2D):  # DepthwiseConv2D too: its kernel is (kh, kw, in, multiplier)
        return int(prod(layer.output_shape[1:3]) * prod(layer.kernel.shape))
    if isinstance(layer, keras.layers.Dense):
        return int(prod(layer.kernel.shape))
    return 0


def macs(model) -> int:
    return int(sum(layer_macs(layer) for layer in model.layers))


def cost_rows(classes: int) -> tuple[list[str], list[list]]:
    """`models`: every architecture with its trainable parameters and MACs for `classes` outputs; the packaged
    table answers the usual class counts without TensorFlow, other counts build the models."""
    from edge_emnist.models import create_model, list_models, model_entry

    costs = cached_costs()
    if any(str(classes) not in costs.get(name, {}).get("classes", {}) for name in list_models()):
        costs = {name: {"description": model_entry(name).description, "classes": {
            str(classes): [trainable_params(m), macs(m)] for m in [create_model(name, classes)]}}
            for name in list_models()}
    rows = [[name, *costs[name]["classes"][str(classes)], costs[name]["description"]] for name in list_models()]
    return ["architecture", f"trainable parameters ({classes} classes)", "MACs per image", "description"], rows


if __name__ == "__main__":
    PROFILES.write_text(json.dumps(compute_profiles(), indent=1) + "\n")
    print(f"wrote {PROFILES}")
