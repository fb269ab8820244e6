"""The EMNIST study's compact VGG (its Figure 7): VGG-16's depth with fewer filters.

    image 28x28x1
    block 1: 2 x conv 3x3, 32  -> max pool 2x2        -> 14x14x32
    block 2: 2 x conv 3x3, 64  -> max pool 2x2        -> 7x7x64
    block 3: 3 x conv 3x3, 128 -> max pool 2x2        -> 3x3x128
    block 4: 3 x conv 3x3, 128 (no pooling: 3x3 left) -> 3x3x128
    block 5: 3 x conv 3x3, 128 (no pooling)           -> 3x3x128
    flatten -> dense 256 -> dropout -> dense 256 -> dropout -> dense num_classes, softmax

Every conv is conv -> BN -> ReLU: BN folds into the conv at export, so it costs nothing on the edge.
Widths and the pooling choice are explained in docs/architectures.md.
"""

from __future__ import annotations

from edge_emnist.models import register
from edge_emnist.models.keras_api import keras, layers
from edge_emnist.models.layers import classifier_head, image_input

# (filters, convs, pool after) per block: VGG-16's 2-2-3-3-3 conv layout
BLOCKS = ((32, 2, True), (64, 2, True), (128, 3, True), (128, 3, False), (128, 3, False))
DENSE = (256, 256)


@register("custom_vgg", "the study's compact VGG-16-depth network (Figure 7)")
def custom_vgg(num_classes: int, dropout: float = 0.5):
    inputs = image_input()
    x = inputs
    for b, (filters, convs, pool) in enumerate(BLOCKS, start=1):
        for c in range(1, convs + 1):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"block{b}_conv{c}")(x)
            x = layers.BatchNormalization(name=f"block{b}_bn{c}")(x)
            x = layers.ReLU(name=f"block{b}_relu{c}")(x)
        if pool:
            x = layers.MaxPooling2D(2, name=f"block{b}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    for i, units in enumerate(DENSE, start=1):
        x = layers.Dense(units, activation="relu", name=f"fc{i}")(x)
        x = layers.Dropout(dropout, name=f"dropout{i}")(x)
    return keras.Model(inputs, classifier_head(x, num_classes), name="custom_vgg")
