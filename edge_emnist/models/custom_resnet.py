"""The EMNIST study's compact ResNet (its Figure 5).

    image 28x28x1
    zero-pad 3                                        -> 34x34x1
    conv 5x5, 32 -> BN -> ReLU                        -> 30x30x32
    zero-pad 1                                        -> 32x32x32
    3 x residual block [3x3, 64; 3x3, 64]             -> 32x32x64  (projection shortcut in the first)
    2 x residual block [3x3, 64 (stride 2 first); 3x3, 64] -> 16x16x64 (projection shortcut in the first)
    global average pooling -> dense num_classes, softmax
"""

from __future__ import annotations

from edge_emnist.models import register
from edge_emnist.models.keras_api import keras, layers
from edge_emnist.models.layers import classifier_head, image_input


def residual_block(x, filters: int, stride: int, name: str):
    """[3x3 conv, BN, ReLU; 3x3 conv, BN] + shortcut, ReLU. 1x1 projection when the shape changes."""
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_proj")(x)
        shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    y = layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = layers.BatchNormalization(name=f"{name}_bn2")(y)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.ReLU(name=f"{name}_out")(y)


# (filters, stride of the first block, blocks) per stage, as in Figure 5
STAGES = ((64, 1, 3), (64, 2, 2))


@register("custom_resnet", "the study's compact ResNet (Figure 5)")
def custom_resnet(num_classes: int):
    inputs = image_input()
    x = layers.ZeroPadding2D(3, name="pad3")(inputs)
    x = layers.Conv2D(32, 5, use_bias=False, name="stem_conv")(x)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    x = layers.ZeroPadding2D(1, name="pad1")(x)
    for stage, (filters, stride, blocks) in enumerate(STAGES, start=1):
        for block in range(blocks):
            x = residual_block(x, filters, stride if block == 0 else 1, name=f"stage{stage}_block{block + 1}")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, classifier_head(x, num_classes), name="custom_resnet")
