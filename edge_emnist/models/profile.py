"""Size and cost of a model: trainable parameters and multiply-accumulates (MACs) per image.

MACs count convolutions and dense layers only (BatchNorm folds into the convolution at export; pooling,
activations and additions are comparatively free), the usual convention for comparing CNNs.
"""

from __future__ import annotations

from math import prod

import numpy as np

from edge_emnist.backend import keras


def trainable_params(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def layer_macs(layer) -> int:
    if isinstance(layer, keras.layers.Conv2D):  # DepthwiseConv2D too: its kernel is (kh, kw, in, multiplier)
        return int(prod(layer.output_shape[1:3]) * prod(layer.kernel.shape))
    if isinstance(layer, keras.layers.Dense):
        return int(prod(layer.kernel.shape))
    return 0


def macs(model) -> int:
    return int(sum(layer_macs(layer) for layer in model.layers))
