"""Small pieces shared by the architectures."""

from __future__ import annotations

from edge_emnist.models.keras_api import keras, layers


def classifier_head(x, num_classes: int, name: str = "predictions"):
    """Dense logits, then a float32 softmax: correct under mixed precision, and one op in TFLite/ONNX."""
    logits = layers.Dense(num_classes, name="logits")(x)
    return layers.Activation("softmax", dtype="float32", name=name)(logits)


def image_input(channels: int = 1, size: int = 28):
    return keras.Input(shape=(size, size, channels), name="image")
