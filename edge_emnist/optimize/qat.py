"""Quantization-aware training: fake-quant wrappers so int8 rounding is learned, not suffered."""

from __future__ import annotations

from edge_emnist.backend import tf  # noqa: F401  (sets up tf_keras before tfmot is imported)


def quantize_wrap(model, prune_preserving: bool = False):
    """Wrap every supported layer for 8-bit QAT; on a pruned model keep its zeros (pruning-preserving QAT)."""
    import tensorflow_model_optimization as tfmot

    annotated = tfmot.quantization.keras.quantize_annotate_model(model)
    if prune_preserving:
        scheme = tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
        return tfmot.quantization.keras.quantize_apply(annotated, scheme)
    return tfmot.quantization.keras.quantize_apply(annotated)
