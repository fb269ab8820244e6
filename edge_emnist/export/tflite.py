"""Keras -> LiteRT flatbuffer, in the four quantizations the TFLite converter offers."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edge_emnist.device.runtimes import native_stderr_muted
from edge_emnist.tf_keras_env import tf

IO_TYPES = {"int8": tf.int8, "uint8": tf.uint8, "float": tf.float32}


def _float32(converter) -> None:
    pass


def _float16(converter) -> None:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]


def _dynamic(converter) -> None:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]


def _int8(converter) -> None:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]


RECIPES: dict[str, Callable] = {"none": _float32, "fp16": _float16, "dynamic": _dynamic, "int8": _int8}


def to_tflite(model, quantize: str, representative: np.ndarray | None = None, io_type: str = "int8") -> bytes:
    """Convert; int8 calibrates on `representative` (float images in [0, 1]) and uses `io_type` at the edges.

    A QAT model carries its own ranges: DEFAULT optimization turns its fake-quant nodes into int8 kernels.
    """
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    RECIPES[quantize](converter)
    if quantize == "int8":
        if representative is not None:
            samples = representative.astype(np.float32)
            converter.representative_dataset = lambda: ([samples[i: i + 1]] for i in range(len(samples)))
        converter.inference_input_type = IO_TYPES[io_type]
        converter.inference_output_type = IO_TYPES[io_type]
    with warnings.catch_warnings(), native_stderr_muted():  # the converter prints its settings from C++
        # int8 models take their input ranges from the representative data; the converter still warns
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        return converter.convert()


def convert(model, path: Path, *, quantize: str, representative: np.ndarray | None, io_type: str = "int8",
            qat: bool = False) -> None:
    """The table's converter for .tflite (device/formats.py): a QAT model needs nothing else, its fake-quant nodes
    carry the ranges."""
    Path(path).write_bytes(to_tflite(model, quantize, representative, io_type))
