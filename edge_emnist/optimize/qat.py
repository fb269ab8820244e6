"""Quantization-aware training: fake-quant wrappers so int8 rounding is learned, not suffered."""

from __future__ import annotations

import numpy as np

from edge_emnist.tf_keras_env import keras, tf  # noqa: F401  (sets up tf_keras before tfmot is imported)

# tfmot's moving-average activation quantizers start at [-6, 6] and move 0.1% per step toward each batch's
# range, so after a short fine-tuning a ReLU output still spans about [-3.1, max]: a third or more of its
# 256 levels unused, and a range onnxruntime cannot fuse into QLinearConv (zero point not at the bottom).
# Their variables end in these names; the layer output they quantize is the wrapped layer's output.
ACTIVATION_RANGES = ("output", "post_activation")


def quantize_wrap(model, prune_preserving: bool = False):
    """Wrap every supported layer for 8-bit QAT; on a pruned model keep its zeros (pruning-preserving QAT)."""
    import tensorflow_model_optimization as tfmot

    annotated = tfmot.quantization.keras.quantize_annotate_model(model)
    if prune_preserving:
        scheme = tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
        return tfmot.quantization.keras.quantize_apply(annotated, scheme)
    return tfmot.quantization.keras.quantize_apply(annotated)


def _range_variables(quantized) -> dict[str, dict[str, tf.Variable]]:
    """Wrapped layer name -> {"min": var, "max": var} for each activation range the QAT model keeps."""
    found: dict[str, dict[str, tf.Variable]] = {}
    for wrapper in quantized.layers:
        inner = getattr(wrapper, "layer", None)
        if inner is None:  # the input QuantizeLayer: its [0, 1] range is already right
            continue
        for variable in wrapper.weights:
            leaf = variable.name.split("/")[-1].split(":")[0]  # e.g. output_min
            kind, _, bound = leaf.rpartition("_")
            if kind in ACTIVATION_RANGES and bound in ("min", "max"):
                found.setdefault(inner.name, {})[bound] = variable
    return found


def calibrate_ranges(float_model, quantized, images: np.ndarray, batch_size: int = 64) -> dict[str, tuple]:
    """Start each activation range where the float model's outputs are (mean of per-batch min and max, as the
    moving average would settle), instead of tfmot's [-6, 6]. Returns layer name -> (min, max)."""
    ranges = _range_variables(quantized)
    names = [n for n in ranges if set(ranges[n]) == {"min", "max"}]
    if not names or not len(images):
        return {}
    # a fresh copy: the float model's layers also sit in the graphs that pruning and QAT built from them,
    # so their `.output` may belong to another graph
    copy = keras.models.clone_model(float_model)
    copy.set_weights(float_model.get_weights())
    probe = keras.Model(copy.inputs, [copy.get_layer(n).output for n in names])
    lows, highs = [], []
    for start in range(0, len(images), batch_size):
        outputs = probe(images[start: start + batch_size], training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        lows.append([float(tf.reduce_min(o)) for o in outputs])
        highs.append([float(tf.reduce_max(o)) for o in outputs])
    low, high = np.mean(lows, axis=0), np.mean(highs, axis=0)
    settled = {}
    for name, lo, hi in zip(names, low, high, strict=True):
        lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)  # int8 ranges always hold zero
        if hi - lo < 1e-6:
            continue
        ranges[name]["min"].assign(lo)
        ranges[name]["max"].assign(hi)
        settled[name] = (lo, hi)
    return settled
