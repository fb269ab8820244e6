"""Store a QAT model's ONNX weights as int8.

tf2onnx turns the activation fake-quant nodes of a quantization-aware model into QuantizeLinear /
DequantizeLinear pairs, but it constant-folds the weight fake-quant: the weights come out as float32
values that already lie on tfmot's int8 grid (symmetric, narrow range: per output channel for
convolutions, per tensor for dense layers). The file is then as large as the float32 one, and
onnxruntime sees no quantized weights to run in int8. This pass recovers the int8 integers exactly and
puts a DequantizeLinear in front of each weight, which is what onnxruntime's own static quantizer writes.

A weight is folded only when the integers reproduce it (to float rounding: tf2onnx multiplies batch-norm
factors into convolution weights, which keeps each channel on a grid of its own); any other weight is left
as float32. A convolution whose input comes from a DequantizeLinear also gets its bias as int32 at scale
input x weight, as onnxruntime's quantizer and TFLite store it: that is what lets onnxruntime run the
convolution as QLinearConv instead of dequantizing the weights back to float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Which input of a node is its weight, and along which axis of that weight the output channels run.
WEIGHT_INPUTS = {"Conv": (1, 0), "ConvTranspose": (1, 1), "MatMul": (1, 1)}
BIASED = {"Conv": 2}  # the input that holds the bias
# Ops between a DequantizeLinear and a convolution that leave the quantization scale as it is.
SCALE_KEEPING = {"MaxPool", "Reshape", "Transpose", "Flatten"}
LEVELS = 127  # tfmot weights: 8 bits, narrow range, symmetric
TOLERANCE = 1e-3  # in units of one quantization step


@dataclass(frozen=True)
class FoldedWeight:
    name: str
    per_channel: bool


def grid_scale(weight: np.ndarray, axis: int | None) -> np.ndarray | None:
    """The scale that puts every value of `weight` on an integer in [-127, 127], or None if none does."""
    if axis is None:
        peak = np.abs(weight).max(keepdims=True).reshape(())
    else:
        other = tuple(i for i in range(weight.ndim) if i != axis)
        peak = np.abs(weight).max(axis=other)
    scale = np.where(peak > 0, peak / LEVELS, 1.0).astype(np.float32)
    steps = _steps(weight, scale, axis)
    return scale if np.abs(steps - np.round(steps)).max() <= TOLERANCE else None


def _steps(weight: np.ndarray, scale: np.ndarray, axis: int | None) -> np.ndarray:
    """`weight` in units of its scale, the scale broadcast along `axis` (or one scale for all)."""
    shape = [1] * weight.ndim
    if axis is not None:
        shape[axis] = -1
    return weight / scale.reshape(shape)


def _quantize(weight: np.ndarray, scale: np.ndarray, axis: int | None) -> np.ndarray:
    return np.clip(np.round(_steps(weight, scale, axis)), -LEVELS, LEVELS).astype(np.int8)


def _input_scale(node, producers: dict, initializers: dict) -> np.ndarray | None:
    """The per-tensor scale of a node's first input, if it comes from a DequantizeLinear."""
    from onnx import numpy_helper

    source = producers.get(node.input[0])
    while source is not None and source.op_type in SCALE_KEEPING:
        source = producers.get(source.input[0])
    if source is None or source.op_type != "DequantizeLinear" or source.input[1] not in initializers:
        return None
    scale = numpy_helper.to_array(initializers[source.input[1]])
    return scale if scale.size == 1 else None


def _dequantized(graph, name: str, values: np.ndarray, scale: np.ndarray, axis: int | None):
    """Replace initializer `name` by integer `values` and a DequantizeLinear that outputs `name`."""
    from onnx import helper, numpy_helper

    graph.initializer.extend([
        numpy_helper.from_array(values, f"{name}_quantized"),
        numpy_helper.from_array(scale.astype(np.float32), f"{name}_scale"),
        numpy_helper.from_array(np.zeros(scale.shape, dtype=values.dtype), f"{name}_zero_point"),
    ])
    attributes = {} if axis is None else {"axis": axis}
    return helper.make_node("DequantizeLinear", [f"{name}_quantized", f"{name}_scale", f"{name}_zero_point"],
                            [name], name=f"{name}_DequantizeLinear", **attributes)


def fold_weight_grids(model) -> list[FoldedWeight]:
    """Rewrite `model` (an onnx.ModelProto) in place; returns the weights it stored as int8."""
    from onnx import numpy_helper

    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    producers = {output: node for node in graph.node for output in node.output}
    users: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            users[name] = users.get(name, 0) + 1

    def own_float(name: str):
        init = initializers.get(name)
        return init if init is not None and users.get(name) == 1 and init.data_type == 1 else None  # 1: FLOAT

    folded, dequantizers = [], []
    for node in graph.node:
        if node.op_type not in WEIGHT_INPUTS:
            continue
        position, channel_axis = WEIGHT_INPUTS[node.op_type]
        init = own_float(node.input[position]) if len(node.input) > position else None
        if init is None:
            continue
        weight = numpy_helper.to_array(init)
        if weight.ndim < 2:
            continue
        for axis in (None, channel_axis):  # per tensor first: it is exact whenever it applies
            scale = grid_scale(weight, axis)
            if scale is not None:
                break
        else:
            continue
        graph.initializer.remove(init)
        dequantizers.append(_dequantized(graph, init.name, _quantize(weight, scale, axis), scale, axis))
        folded.append(FoldedWeight(init.name, axis is not None))

        bias_position = BIASED.get(node.op_type)
        bias = own_float(node.input[bias_position]) if bias_position and len(node.input) > bias_position else None
        input_scale = _input_scale(node, producers, initializers)
        if bias is None or input_scale is None:
            continue
        bias_scale = (input_scale.reshape(()) * scale).astype(np.float32)
        values = np.round(numpy_helper.to_array(bias) / bias_scale).astype(np.int32)
        graph.initializer.remove(bias)
        dequantizers.append(_dequantized(graph, bias.name, values, bias_scale, None if scale.ndim == 0 else 0))
    # the dequantizers read only initializers, so they can lead the (topologically sorted) node list
    for position, node in enumerate(dequantizers):
        graph.node.insert(position, node)
    return folded
