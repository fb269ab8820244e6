"""Pruning and QAT fine-tuning, and what survives into the exported artifacts."""

import json

import numpy as np
import onnx
import pytest
from ai_edge_litert.interpreter import Interpreter
from onnx import numpy_helper

from edge_emnist.cli import main
from edge_emnist.errors import EdgeEmnistError
from edge_emnist.export.artifacts import ExportOptions, export_run
from edge_emnist.optimize.finetune import optimize_run
from edge_emnist.optimize.prune import PruneConfig, parse_m_by_n
from edge_emnist.optimize.rebuild import build_model
from edge_emnist.runs import open_run
from tests.conftest import trained_tiny_lenet5


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return trained_tiny_lenet5(tmp_path_factory.mktemp("optimize"))


def tflite_weight_zeros(path) -> float:
    """Zero fraction over the model's large constant tensors (the kernels), read with plain ai_edge_litert."""
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    zeros = total = 0
    for detail in interpreter.get_tensor_details():
        # kernels: 2-D or more, first dimension = output channels; activations have the batch (1) first
        shape = detail["shape"]
        if len(shape) < 2 or shape[0] == 1 or detail["dtype"] not in (np.int8, np.float32):
            continue
        values = interpreter.get_tensor(detail["index"])
        zeros, total = zeros + int(np.sum(values == 0)), total + values.size
    return zeros / total


def _zero_points(graph) -> dict[str, tuple[np.ndarray, int]]:
    """Quantized initializer -> its DequantizeLinear zero point (the stored value that means 0.0: 128 for the
    uint8 weights export writes) and the axis a per-channel zero point runs along."""
    initializers = {t.name: t for t in graph.initializer}
    found = {}
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and len(node.input) > 2 and node.input[2] in initializers:
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            found[node.input[0]] = (numpy_helper.to_array(initializers[node.input[2]]), axis)
    return found


def _real_zeros(name: str, values: np.ndarray, zero_points: dict) -> int:
    zero, axis = zero_points.get(name, (np.zeros((), values.dtype), 0))
    if zero.size > 1:
        shape = [1] * values.ndim
        shape[axis] = -1
        zero = zero.reshape(shape)
    return int(np.sum(values == zero))


def onnx_weight_zeros(path) -> float:
    graph = onnx.load(str(path)).graph
    zero_points = _zero_points(graph)
    kernels = [(t.name, numpy_helper.to_array(t)) for t in graph.initializer]
    kernels = [(name, a) for name, a in kernels if a.size >= 1000]
    return sum(_real_zeros(name, a, zero_points) for name, a in kernels) / sum(a.size for _, a in kernels)


def onnx_int8_weight_zeros(path) -> float:
    """Zero fraction over the 8-bit kernels (stored as uint8, see export/onnx_unsigned.py); fails if the kernels
    were left as float32."""
    graph = onnx.load(str(path)).graph
    zero_points = _zero_points(graph)
    kernels = [(t.name, numpy_helper.to_array(t)) for t in graph.initializer if len(t.dims) >= 2]
    assert kernels and all(k.dtype == np.uint8 for _, k in kernels), [k.dtype for _, k in kernels]
    return sum(_real_zeros(name, k, zero_points) for name, k in kernels) / sum(k.size for _, k in kernels)


def test_pruned_run_keeps_zeros_into_smaller_artifacts(trained, tmp_path):
    pruned = trained / "run-p50"
    metrics = optimize_run(trained / "run", prune=PruneConfig(0.5, "polynomial"), epochs=2, output=pruned,
                           data_dir=trained / "data", verbose=0)
    assert metrics["sparsity"]["total"] == pytest.approx(0.5, abs=0.01)
    assert set(metrics["sparsity"]["layers"]) == {"c1", "c3", "c5", "f6", "logits"}
    run = open_run(pruned)
    assert run.tag == "p50" and run.optimization["pruning"]["schedule"] == "polynomial"
    assert run.optimization["source_weights_sha256"]
    for quantize in ("none", "int8"):
        options = ExportOptions(quantize=quantize, out_dir=tmp_path)
        dense = export_run(trained / "run", options, data_dir=trained / "data", log=lambda _: None)
        sparse = export_run(pruned, options, data_dir=trained / "data", log=lambda _: None)
        for dense_path, sparse_path in zip(dense, sparse, strict=True):
            assert "-p50-" in sparse_path.name
            zeros = (tflite_weight_zeros if sparse_path.suffix == ".tflite" else onnx_weight_zeros)(sparse_path)
            assert zeros >= 0.45, (sparse_path.name, zeros)
            cards = [json.loads(p.with_suffix(p.suffix + ".json").read_text()) for p in (dense_path, sparse_path)]
            assert cards[1]["size"]["gzip_bytes"] < 0.85 * cards[0]["size"]["gzip_bytes"]
            assert cards[1]["sparsity"]["total"] == pytest.approx(0.5, abs=0.01)


def test_two_of_four_structured_sparsity(trained):
    metrics = optimize_run(trained / "run", prune=PruneConfig(0.5, "constant", (2, 4)), epochs=1,
                           output=trained / "run-2of4", data_dir=trained / "data", verbose=0)
    assert metrics["sparsity"]["layers"]["c5"]["sparsity"] == pytest.approx(0.5, abs=0.01)
    kernel = build_model(open_run(trained / "run-2of4"), 10).get_layer("c5").kernel.numpy()  # (400, 120)
    # 2:4 along the input axis: every block of 4 consecutive inputs has at most 2 non-zeros per output
    blocks = (kernel.reshape(100, 4, 120) != 0).sum(axis=1)
    assert blocks.max() <= 2


def test_pruning_preserving_qat_keeps_sparsity_into_int8(trained, tmp_path):
    output = trained / "run-p50-qat"
    metrics = optimize_run(trained / "run", prune=PruneConfig(0.5, "constant"), qat=True, epochs=1,
                           output=output, data_dir=trained / "data", verbose=0)
    assert metrics["sparsity"]["total"] >= 0.49
    run = open_run(output)
    assert run.qat and run.pruned and run.tag == "p50-qat"
    (tflite, onnx_path) = export_run(output, ExportOptions(quantize="int8", out_dir=tmp_path),
                                     data_dir=trained / "data", log=lambda _: None)
    assert tflite_weight_zeros(tflite) >= 0.45
    assert onnx_int8_weight_zeros(onnx_path) >= 0.45  # QAT's int8 weights, stored as int8, zeros kept
    card = json.loads(tflite.with_suffix(".tflite.json").read_text())
    assert card["source"]["optimization"]["qat"]["prune_preserving"] is True
    with pytest.raises(EdgeEmnistError, match="quantization-aware"):
        export_run(output, ExportOptions(quantize="none", out_dir=tmp_path), data_dir=trained / "data")


def test_qat_cli_then_export(trained, tmp_path, capsys):
    data = str(trained / "data")
    out = tmp_path / "qat"
    assert main(["qat", str(trained / "run"), "--epochs", "1", "--output", str(out), "--data-dir", data]) == 0
    assert "validation" in capsys.readouterr().out
    assert main(["export", str(out), "--format", "tflite", "--data-dir", data, "--out-dir", str(tmp_path)]) == 0
    assert (tmp_path / "lenet5-mnist-qat-int8.tflite").exists()


def test_prune_cli_prints_sparsity_table(trained, tmp_path, capsys):
    out = tmp_path / "p75"
    code = main(["prune", str(trained / "run"), "--sparsity", "0.75", "--schedule", "constant", "--epochs", "1",
                 "--output", str(out), "--data-dir", str(trained / "data")])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and ["layer", "zeros", "weights", "sparsity"] in [line.split() for line in lines]
    assert any(line.startswith("total") and line.endswith("75.0%") for line in lines)
    assert (out / "optimization.json").exists() and not list(tmp_path.glob(".tmp-*"))


@pytest.mark.parametrize("argv, message", [
    (["--sparsity", "1.5"], "between 0 and 1"),
    (["--m-by-n", "4:2"], "0 < m < n"),
    (["--m-by-n", "two"], "M:N"),
])
def test_bad_prune_arguments(trained, capsys, argv, message):
    with pytest.raises(SystemExit) if argv[0] == "--sparsity" else _no_raise():
        code = main(["prune", str(trained / "run"), *argv, "--data-dir", str(trained / "data")])
        assert code == 2
    assert message in capsys.readouterr().err


def test_qat_follows_pruning_and_keeps_its_zeros(trained):
    """What the pipeline does: train -> prune -> QAT, each a run; the QAT run keeps the pruned zeros."""
    if not (trained / "run-p50").exists():
        optimize_run(trained / "run", prune=PruneConfig(0.5), epochs=1, output=trained / "run-p50",
                     data_dir=trained / "data", verbose=0)
    metrics = optimize_run(trained / "run-p50", qat=True, epochs=1, output=trained / "run-p50-then-qat",
                           data_dir=trained / "data", verbose=0)
    run = open_run(trained / "run-p50-then-qat")
    assert run.tag == "p50-qat" and run.optimization["qat"]["prune_preserving"]
    assert run.optimization["qat"]["calibrated_ranges"] == 3  # lenet5: two output and one post-activation range
    assert run.optimization["source_tag"] == "p50" and run.optimization["pruning"]["sparsity"] == 0.5
    assert metrics["sparsity"]["total"] == pytest.approx(0.5, abs=0.01)


def test_optimizing_further_is_refused(trained):
    if not (trained / "run-p50").exists():
        optimize_run(trained / "run", prune=PruneConfig(0.5), epochs=1, output=trained / "run-p50",
                     data_dir=trained / "data", verbose=0)
    with pytest.raises(EdgeEmnistError, match="already optimized"):
        optimize_run(trained / "run-p50", prune=PruneConfig(0.75), data_dir=trained / "data")
    if not (trained / "run-p50-qat").exists():
        optimize_run(trained / "run-p50", qat=True, epochs=1, data_dir=trained / "data", verbose=0)
    with pytest.raises(EdgeEmnistError, match="already optimized"):
        optimize_run(trained / "run-p50-qat", qat=True, output=trained / "again", data_dir=trained / "data")


def test_parse_m_by_n():
    assert parse_m_by_n("2:4") == (2, 4)


class _no_raise:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_qat_starts_from_calibrated_activation_ranges():
    """tfmot starts every activation range at [-6, 6]; a ReLU output must start at [0, its observed max]."""
    from edge_emnist.models import create_model
    from edge_emnist.optimize.qat import _range_variables, calibrate_ranges, quantize_wrap
    from edge_emnist.tf_keras_env import keras

    model = create_model("simple_cnn", 10)
    images = np.random.default_rng(0).random((64, 28, 28, 1), dtype=np.float32)
    conv1 = keras.Model(model.input, model.get_layer("conv1").output)(images).numpy()  # ReLU inside conv1
    quantized = quantize_wrap(model)
    variables = _range_variables(quantized)
    assert set(variables) == {"conv1", "conv2", "fc1", "logits"}
    assert {float(v["min"].numpy()) for v in variables.values()} == {-6.0}  # what calibration replaces
    settled = calibrate_ranges(model, quantized, images, batch_size=64)  # one batch: mean = that batch
    assert set(settled) == set(variables)
    assert float(variables["conv1"]["min"].numpy()) == 0.0
    assert float(variables["conv1"]["max"].numpy()) == pytest.approx(conv1.max(), rel=1e-5)
    assert float(variables["logits"]["min"].numpy()) < 0  # a linear output keeps its negative side


def test_ranges_only_qat_keeps_the_trained_weights(trained, tmp_path):
    """`qat --ranges-only`: the fake-quant model keeps the trained weights and batch-norm statistics; only the
    activation ranges settle over the training batches."""
    output = tmp_path / "ranges"
    optimize_run(trained / "run", qat=True, epochs=1, ranges_only=True, output=output, data_dir=trained / "data",
                 verbose=0)
    run = open_run(output)
    assert run.qat and run.optimization["qat"]["ranges_only"] is True
    source = build_model(open_run(trained / "run"), 10)
    quantized = build_model(run, 10)
    kernels = {w.name.split("/")[-2] + "/" + w.name.split("/")[-1]: w.numpy() for w in source.weights}
    compared = 0
    for weight in quantized.weights:
        key = weight.name.split("/")[-2] + "/" + weight.name.split("/")[-1]
        if key in kernels and weight.shape == kernels[key].shape:
            np.testing.assert_array_equal(weight.numpy(), kernels[key])
            compared += 1
    assert compared >= 6  # every kernel and bias of LeNet-5's five layers, at least


@pytest.mark.parametrize("argv, message", [
    (["prune", "--sparsity", "0.5", "--ranges-only"], "add --qat"),
    (["qat", "--ranges-only", "--teacher", "RUN"], "teachers would teach nothing"),
])
def test_ranges_only_refusals(trained, capsys, argv, message):
    argv = [a if a != "RUN" else str(trained / "run") for a in argv]
    assert main([argv[0], str(trained / "run"), *argv[1:], "--data-dir", str(trained / "data")]) == 2
    assert message in capsys.readouterr().err
