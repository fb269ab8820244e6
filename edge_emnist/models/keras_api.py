"""The Keras the model files build with: tf_keras (Keras 2) by default, Keras 3 while a Keras 3 engine builds.

One model file serves both worlds: Keras 3 trains on JAX, PyTorch or TensorFlow, and tf_keras is what
tensorflow-model-optimization (pruning, QAT) and the TFLite/ONNX exporters need. The architectures use the
functional API only, whose names are the same in both, so `keras` and `layers` here look every attribute up
in the Keras that is active at call time rather than at import time:

    with building_with(keras3):         # the training engine
        model = create_model("lenet5", 47)

Outside such a block the model is a tf_keras model, imported (with TensorFlow) on first use. The weights of
both are the same list in the same order and the same `.weights.h5` layout, so a run trained by one loads in
the other (tests/test_models.py moves them and compares predictions).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from types import ModuleType

_ACTIVE: contextvars.ContextVar[ModuleType | None] = contextvars.ContextVar("edge_emnist_keras", default=None)


def active_keras() -> ModuleType:
    module = _ACTIVE.get()
    if module is None:
        from edge_emnist.tf_keras_env import keras as module  # tf_keras, with TF_USE_LEGACY_KERAS set first
    return module


@contextlib.contextmanager
def building_with(module: ModuleType | None) -> Iterator[None]:
    """Models created inside use `module` (a Keras module); None keeps whatever is active."""
    token = _ACTIVE.set(module or _ACTIVE.get())
    try:
        yield
    finally:
        _ACTIVE.reset(token)


class _Namespace:
    """`keras.layers.Conv2D` resolved in the active Keras when it is used, not when the model file is imported."""

    def __init__(self, *path: str):
        self._path = path

    def __getattr__(self, name: str):
        target = active_keras()
        for part in self._path:
            target = getattr(target, part)
        return getattr(target, name)


keras = _Namespace()
layers = _Namespace("layers")
