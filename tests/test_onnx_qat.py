"""Folding a QAT model's fake-quantized float weights into int8 ONNX initializers."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge_emnist.export.onnx_qat import fold_weight_grids, grid_scale


def on_grid(shape, axis, seed=0) -> np.ndarray:
    """Weights as tfmot's fake quant leaves them: integers in [-127, 127] times a scale (per channel or not)."""
    rng = np.random.default_rng(seed)
    steps = rng.integers(-127, 128, size=shape)
    steps.flat[0] = 127  # the largest magnitude sits at the range edge, as with tfmot's symmetric ranges
    scales = rng.uniform(0.001, 0.05, size=shape[axis] if axis is not None else 1)
    view = [1] * len(shape)
    if axis is not None:
        view[axis] = -1
        steps[(slice(None),) * axis + (slice(None),) + (0,) * (len(shape) - axis - 1)] = 127
    return (steps * scales.reshape(view)).astype(np.float32)


def qdq_conv_model(weight: np.ndarray, bias: np.ndarray) -> onnx.ModelProto:
    """Input -> Q/DQ (as tf2onnx writes activations) -> Conv with float weight and bias initializers."""
    channels = weight.shape[0]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
        helper.make_node("Conv", ["xd", "w", "b"], ["y"], pads=[1, 1, 1, 1]),
    ]
    graph = helper.make_graph(
        nodes, "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, weight.shape[1], 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, 6, 6])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b"),
         numpy_helper.from_array(np.array(0.02, np.float32), "s"),
         numpy_helper.from_array(np.array(128, np.uint8), "z")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), options).run(None, {"x": x})[0]


@pytest.mark.parametrize("axis", [None, 0])
def test_grid_scale_recovers_the_step(axis):
    weight = on_grid((8, 3, 3, 3), axis)
    scale = grid_scale(weight, axis)
    assert scale is not None and scale.shape == (() if axis is None else (8,))


def test_off_grid_weights_have_no_scale():
    weight = np.random.default_rng(1).normal(size=(8, 3, 3, 3)).astype(np.float32)
    assert grid_scale(weight, None) is None and grid_scale(weight, 0) is None


def test_folded_conv_computes_the_same_and_stores_int8():
    weight, bias = on_grid((8, 3, 3, 3), axis=0), np.linspace(-0.5, 0.5, 8).astype(np.float32)
    model = qdq_conv_model(weight, bias)
    x = np.random.default_rng(2).uniform(-2, 2, size=(1, 3, 6, 6)).astype(np.float32)
    before = run(model, x)
    folded = fold_weight_grids(model)
    onnx.checker.check_model(model)
    assert [f.per_channel for f in folded] == [True]
    stored = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    assert stored["w_quantized"].dtype == np.int8 and "w" not in stored
    assert stored["b_quantized"].dtype == np.int32  # at scale input x weight, so onnxruntime can fuse QLinearConv
    # the weights are exact; the bias moves by at most half its int32 step (input scale x weight scale)
    np.testing.assert_allclose(run(model, x), before, atol=0.5 * stored["b_scale"].max() + 1e-6)


def test_off_grid_weights_are_left_alone():
    weight = np.random.default_rng(3).normal(size=(4, 1, 3, 3)).astype(np.float32)
    model = qdq_conv_model(weight, np.zeros(4, np.float32))
    assert fold_weight_grids(model) == []
    assert {t.name for t in model.graph.initializer} >= {"w", "b"}
