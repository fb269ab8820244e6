"""A compact parametric family made for the edge: the shape is a handful of numbers, so its cost (parameters,
MACs) is known before any training and a search can walk it.

    image 28x28x1
    stage 1: depth[0] x (conv k[0]x k[0], round(base[0] x width) -> batch norm -> relu)   28x28
             max pool 2x2                                                                14x14
             (`stem_stride=2`: the first convolution strides 2 and this pool goes)
    stage 2: depth[1] x (conv or depthwise-separable block, round(base[1] x width))      14x14
             max pool 2x2                                                                7x7
    stage 3: depth[2] x (conv or depthwise-separable block, round(base[2] x width))      7x7
    head:    global average pool (or `pool="flatten"`: max pool 2x2 -> flatten, 3x3 positions kept)
             -> [dense `head`, relu] -> dense num_classes, softmax

Convolutions have no bias (the batch norm after each one carries it), so export folds every batch norm into its
convolution: the .tflite and .onnx files hold convolutions, pools and the dense head only. A depthwise-separable
block (`separable=True`, stages 2 and 3; the first convolution sees one channel, where it would save nothing) is
depthwise k x k -> batch norm -> relu -> pointwise 1x1 -> batch norm -> relu.

Global pooling forgets where a stroke is, which a narrow network cannot afford on characters (an "L" and a "7"
differ mostly in position); the flatten head keeps a 3x3 map of positions for the cost of a larger dense layer
(parameters, not many MACs).

At full resolution the first stage is the costliest part of a narrow network on a CPU (784 positions, memory-bound
for a few filters); a strided stem computes it at 14x14, a quarter of the positions, and drops the first pool.
"""

from __future__ import annotations

from edge_emnist.models import register
from edge_emnist.models.keras_api import keras, layers
from edge_emnist.models.layers import classifier_head, image_input

# Keras' 0.99 leaves a third of the initial statistics in the moving averages after 100 steps: a brief search trial
# (a few hundred steps) would be judged on them, at chance level. 0.9 forgets them in 50 steps.
BN_MOMENTUM = 0.9
POOLS = ("gap", "flatten")  # the head: global average pooling, or a 3x3 map of positions flattened


def channels(base: int, width: float) -> int:
    """Filters of a stage: base x width, rounded to a multiple of 4 (what int8 and SIMD kernels like), at least 4."""
    return max(4, int(round(base * width / 4)) * 4)


def _conv_bn_relu(x, filters: int, kernel: int, name: str, strides: int = 1):
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _separable(x, filters: int, kernel: int, name: str):
    x = layers.DepthwiseConv2D(kernel, padding="same", use_bias=False, name=f"{name}_dw")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_dw_bn")(x)
    x = layers.ReLU(name=f"{name}_dw_relu")(x)
    return _conv_bn_relu(x, filters, 1, f"{name}_pw")


@register("edgenet", "compact family: 3 conv stages (width, depth, kernels, separable), GAP head", family=True)
def edgenet(num_classes: int, width: float = 1.0, depths: tuple = (1, 1, 1), kernels: tuple = (3, 3, 3),
            base: tuple = (16, 32, 64), separable: bool = False, head: int = 0, pool: str = "gap",
            stem_stride: int = 1):
    if not (len(depths) == len(kernels) == len(base) == 3):
        raise ValueError("edgenet has three stages: depths, kernels and base take three values each")
    if min(depths) < 1 or min(kernels) < 1 or width <= 0 or head < 0:
        raise ValueError("edgenet needs depths and kernels of at least 1, a positive width and head >= 0")
    if pool not in POOLS:
        raise ValueError(f"edgenet pool must be one of {', '.join(POOLS)}, got {pool!r}")
    if stem_stride not in (1, 2):
        raise ValueError(f"edgenet stem_stride must be 1 or 2, got {stem_stride!r}")
    x = inputs = image_input()
    for stage, (depth, kernel, filters) in enumerate(zip(depths, kernels, base, strict=True), 1):
        for block in range(1, depth + 1):
            name = f"s{stage}b{block}"
            first = stage == 1 and block == 1
            if first:
                x = _conv_bn_relu(x, channels(filters, width), kernel, name, strides=stem_stride)
            else:
                x = (_separable if separable else _conv_bn_relu)(x, channels(filters, width), kernel, name)
        if stage == 2 or (stage == 1 and stem_stride == 1):
            x = layers.MaxPooling2D(2, name=f"pool{stage}")(x)
    if pool == "gap":
        x = layers.GlobalAveragePooling2D(name="gap")(x)
    else:
        x = layers.MaxPooling2D(2, name="pool3")(x)
        x = layers.Flatten(name="flatten")(x)
    if head:
        x = layers.Dense(head, activation="relu", name="fc")(x)
    return keras.Model(inputs, classifier_head(x, num_classes), name="edgenet")
