"""The second study's simple network: two convolutions and two dense layers.

    image 28x28x1
    conv 3x3, 32, relu -> max pool 2x2     -> 13x13x32
    conv 3x3, 64, relu -> max pool 2x2     -> 5x5x64
    flatten -> dense 128, relu -> dropout 0.5
    dense num_classes, softmax
"""

from __future__ import annotations

from edge_emnist.models import register
from edge_emnist.models.keras_api import keras, layers
from edge_emnist.models.layers import classifier_head, image_input


@register("simple_cnn", "two conv + two dense layers (second study)")
def simple_cnn(num_classes: int, dropout: float = 0.5):
    inputs = image_input()
    x = layers.Conv2D(32, 3, activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(64, 3, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(128, activation="relu", name="fc1")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(inputs, classifier_head(x, num_classes), name="simple_cnn")
