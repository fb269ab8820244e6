"""LeNet-5 (LeCun et al. 1998) on 28x28x1.

    image 28x28x1
    C1  conv 5x5, 6, same, tanh      -> 28x28x6
    S2  average pool 2x2             -> 14x14x6
    C3  conv 5x5, 16, valid, tanh    -> 10x10x16
    S4  average pool 2x2             -> 5x5x16
    C5  dense 120, tanh              (400 -> 120)
    F6  dense 84, tanh
    out dense num_classes, softmax   (64,851 trainable parameters at 47 classes)

`lenet5_relu` is the same graph with ReLU and max pooling: ops that LiteRT's XNNPACK delegate runs in
int8, where tanh and average pooling fall back to slower reference kernels.
"""

from __future__ import annotations

from edge_emnist.models import register
from edge_emnist.models.keras_api import keras, layers
from edge_emnist.models.layers import classifier_head, image_input


def _lenet5(num_classes: int, activation: str, pool: type, name: str):
    inputs = image_input()
    x = layers.Conv2D(6, 5, padding="same", activation=activation, name="c1")(inputs)
    x = pool(2, name="s2")(x)
    x = layers.Conv2D(16, 5, padding="valid", activation=activation, name="c3")(x)
    x = pool(2, name="s4")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(120, activation=activation, name="c5")(x)
    x = layers.Dense(84, activation=activation, name="f6")(x)
    return keras.Model(inputs, classifier_head(x, num_classes), name=name)


@register("lenet5", "LeNet-5 as in LeCun 1998: tanh, average pooling")
def lenet5(num_classes: int):
    return _lenet5(num_classes, "tanh", layers.AveragePooling2D, "lenet5")


@register("lenet5_relu", "LeNet-5 with ReLU and max pooling, for XNNPACK int8 kernels")
def lenet5_relu(num_classes: int):
    return _lenet5(num_classes, "relu", layers.MaxPooling2D, "lenet5_relu")
