"""Keras -> ONNX through tf2onnx; quantized variants through onnxruntime's own tools.

float32: tf2onnx with a dynamic batch. fp16: onnxruntime's float16 converter, float32 at the edges.
dynamic: weights 8-bit, activations quantized at run time. int8: static QDQ, per channel, calibrated on
train images after onnxruntime's pre-processing (shape inference + graph optimization), as its docs advise.
Every quantized graph then stores its 8-bit tensors as uint8 (onnx_unsigned): the same values, but kernels
that give the same answers on every CPU.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import numpy as np

from edge_emnist.tf_keras_env import tf

OPSET = 17
INPUT_NAME = "image"


def to_onnx_float32(model, path: Path) -> None:
    import onnx
    import tf2onnx

    channels = model.input_shape[-1]
    height, width = model.input_shape[1:3]
    signature = [tf.TensorSpec([None, height, width, channels], tf.float32, name=INPUT_NAME)]
    with contextlib.redirect_stdout(None):
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=OPSET)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def to_onnx_qat(model, path: Path) -> None:
    """A quantization-aware model: tf2onnx writes its fake-quant nodes as QuantizeLinear/DequantizeLinear for
    the activations, and fold_weight_grids stores the weights as the int8 integers QAT trained them on."""
    import onnx

    from edge_emnist.export.onnx_qat import fold_weight_grids

    to_onnx_float32(model, path)
    proto = onnx.load(str(path))
    fold_weight_grids(proto)
    _save_unsigned(proto, path)


def _save_unsigned(proto, path: Path) -> None:
    import onnx

    from edge_emnist.export.onnx_unsigned import to_unsigned

    to_unsigned(proto)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def _calibration_reader(images: np.ndarray, batch: int = 32):
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(images[i: i + batch].astype(np.float32) for i in range(0, len(images), batch))

        def get_next(self):
            x = next(self.batches, None)
            return None if x is None else {INPUT_NAME: x}

    return Reader()


def _quantize(float_path: Path, path: Path, quantize: str, representative: np.ndarray | None) -> None:
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if quantize == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        onnx.save(convert_float_to_float16(onnx.load(str(float_path)), keep_io_types=True), str(path))
        return
    with tempfile.TemporaryDirectory() as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(float_path), str(prepared))
        if quantize == "dynamic":
            quantize_dynamic(str(prepared), str(path), weight_type=QuantType.QInt8)
        else:
            quantize_static(str(prepared), str(path), _calibration_reader(representative),
                            quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    _save_unsigned(onnx.load(str(path)), path)


def to_onnx(model, path: Path, quantize: str, representative: np.ndarray | None = None) -> None:
    """Write `model` to `path` as ONNX in the given quantization (none, fp16, dynamic, int8)."""
    if quantize == "none":
        to_onnx_float32(model, path)
        return
    with tempfile.TemporaryDirectory() as scratch:
        float_path = Path(scratch) / "float32.onnx"
        to_onnx_float32(model, float_path)
        _quantize(float_path, path, quantize, representative)


def convert(model, path: Path, *, quantize: str, representative: np.ndarray | None, io_type: str = "int8",
            qat: bool = False) -> None:
    """The table's converter for .onnx (device/formats.py): a QAT model keeps the integers it trained on."""
    if qat:
        to_onnx_qat(model, path)
    else:
        to_onnx(model, path, quantize, representative)
