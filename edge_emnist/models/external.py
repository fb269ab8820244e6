"""A model trained outside edge-emnist, as an architecture: `export my_model.keras --dataset NAME` imports it into
a run folder whose architecture is this one, so export's converters, parity check and card take it as any run.

    image 28x28x1, upright, in [0, 1]            what every edge-emnist model takes
    -> transpose      (orientation=transposed: the model learned raw EMNIST files, which store images transposed)
    -> x 255          (pixels=byte: the model learned 0..255)
    -> reshape        (to the model's own input: 28x28, 28x28x1 or 784)
    -> the model      (a tf_keras .h5 as its own layers; a Keras 3 .keras or a SavedModel called as one layer)
    -> softmax        (outputs=logits)

A tf_keras `.h5` keeps its layers, so `prune` and `qat` work on it as on the built-in architectures; a Keras 3
`.keras` or a SavedModel is one opaque call (its variables are captured, not tracked): it exports in every
quantization, but pruning and QAT need layers tf_keras owns.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from edge_emnist.models import register
from edge_emnist.models.keras_api import keras, layers


class _QuietLambda(logging.Filter):
    """tf_keras warns at every trace that the Lambda's captured variables are untracked: here that is the design
    (the imported file owns them), so the warning only hides the lines that matter."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return "Lambda" not in text and "tracked objects" not in text


ORIENTATIONS = ("upright", "transposed")
PIXELS = ("unit", "byte")
OUTPUTS = ("probabilities", "logits")
KINDS = {".keras": "keras3", ".h5": "tf_keras", ".hdf5": "tf_keras"}  # and a folder with saved_model.pb


def kind_of(path: Path) -> str | None:
    if path.is_dir():
        return "saved_model" if (path / "saved_model.pb").exists() else None
    return KINDS.get(path.suffix.lower())


def load(path: Path):
    """(callable, its input shape without the batch, is it tf_keras layers)."""
    kind = kind_of(path)
    if kind == "tf_keras":
        model = keras.models.load_model(str(path), compile=False)
        return model, tuple(model.input_shape[1:]), True
    if kind == "keras3":
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # the converters trace TensorFlow functions
        import keras as keras3

        if keras3.backend.backend() != "tensorflow":
            raise ValueError(f"a .keras model exports through TensorFlow; this process runs Keras 3 on "
                             f"{keras3.backend.backend()} (set KERAS_BACKEND=tensorflow)")
        model = keras3.saving.load_model(str(path), compile=False)
        return model, tuple(model.input_shape[1:]), False
    if kind == "saved_model":
        import tensorflow as tf

        loaded = tf.saved_model.load(str(path))
        signature = loaded.signatures["serving_default"]
        [spec] = signature.structured_input_signature[1].values()
        [output_name] = signature.structured_outputs

        def call(x):
            return signature(**{list(signature.structured_input_signature[1])[0]: x})[output_name]

        call.keep = loaded  # the variables live as long as the function
        return call, tuple(spec.shape[1:]), False
    raise ValueError(f"{path} is not a .keras, .h5 or SavedModel folder")


@register("external", "a model trained elsewhere (.keras, .h5, SavedModel), imported by `export FILE`",
          imported=True)
def external(num_classes: int, file: str = "", orientation: str = "upright", pixels: str = "unit",
             outputs: str = "probabilities"):
    if orientation not in ORIENTATIONS or pixels not in PIXELS or outputs not in OUTPUTS:
        raise ValueError(f"orientation must be one of {ORIENTATIONS}, pixels one of {PIXELS}, outputs one of "
                         f"{OUTPUTS}")
    model, shape, own_layers = load(Path(file))
    if tuple(shape) not in ((28, 28), (28, 28, 1), (784,)):
        raise ValueError(f"{file} takes input {shape}; edge-emnist models take one 28x28 grey image "
                         "(28x28, 28x28x1 or 784 values)")
    image = keras.Input(shape=(28, 28, 1), name="image")
    x = image
    if orientation == "transposed":
        x = layers.Permute((2, 1, 3), name="transpose")(x)
    if pixels == "byte":
        x = layers.Rescaling(255.0, name="to_bytes")(x)
    if tuple(shape) != (28, 28, 1):
        x = layers.Reshape(shape, name="to_model_input")(x)
    if own_layers:
        y = model(x)
    else:
        logging.getLogger("tensorflow").addFilter(_QuietLambda())
        y = layers.Lambda(lambda t: model(t), name="imported")(x)
    if outputs == "logits":
        y = layers.Activation("softmax", dtype="float32", name="predictions")(y)
    wrapper = keras.Model(image, y, name="external")
    if wrapper.output_shape[-1] != num_classes:
        raise ValueError(f"{file} answers over {wrapper.output_shape[-1]} classes; the dataset has {num_classes}")
    return wrapper
