"""Export: every format x quantization on a tiny trained model, checked in the plain runtimes."""

import json
import shutil

import numpy as np
import onnxruntime as ort
import pytest
from ai_edge_litert.interpreter import Interpreter

from edge_emnist.cli import main
from edge_emnist.data.registry import get_dataset
from edge_emnist.errors import EdgeEmnistError
from edge_emnist.export import artifacts
from edge_emnist.export.artifacts import PARITY_BAR, ExportOptions, export_run
from edge_emnist.train import TrainConfig, train
from tests.conftest import write_tiny

QUANTIZATIONS = ["none", "fp16", "dynamic", "int8"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """LeNet-5 trained on noisy synthetic MNIST until confident: a real model, small enough for tests."""
    root = tmp_path_factory.mktemp("export")
    data = write_tiny(get_dataset("mnist"), root / "data", counts={"train": 600, "test": 200}, noise=90)
    config = TrainConfig(arch="lenet5", dataset="mnist", epochs=6, batch_size=32, lr=3e-3, patience=6)
    metrics = train(config, root / "run", data_dir=root / "data", verbose=0)
    assert metrics["test_accuracy"] > 0.9  # the fixture is meaningful only if the model learned
    return root / "run", root / "data", data["test"]


def plain_litert(path, images):
    """What an app does with only ai_edge_litert: quantize the input by the tensor's own parameters."""
    interpreter = Interpreter(model_path=str(path))
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(inp["index"], [len(images), 28, 28, 1])
    interpreter.allocate_tensors()
    x = images[..., None].astype(np.float32) / 255
    if inp["dtype"] != np.float32:
        scale, zero = inp["quantization"]
        x = np.clip(np.round(x / scale) + zero, np.iinfo(inp["dtype"]).min, np.iinfo(inp["dtype"]).max)
    interpreter.set_tensor(inp["index"], x.astype(inp["dtype"]))
    interpreter.invoke()
    y = interpreter.get_tensor(out["index"])
    if out["dtype"] != np.float32:
        scale, zero = out["quantization"]
        y = (y.astype(np.float32) - zero) * scale
    return y


def plain_ort(path, images):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": images[..., None].astype(np.float32) / 255})[0]


PLAIN = {"tflite": plain_litert, "onnx": plain_ort}


@pytest.mark.parametrize("quantize", QUANTIZATIONS)
def test_every_format_and_quantization(tiny_run, tmp_path, quantize):
    run, data, (images, labels) = tiny_run
    paths = export_run(run, ExportOptions(quantize=quantize, out_dir=tmp_path), data_dir=data, log=lambda _: None)
    assert sorted(p.suffix for p in paths) == [".onnx", ".tflite"]
    for path in paths:
        card = json.loads(path.with_suffix(path.suffix + ".json").read_text())
        assert card["artifact"] == path.name and card["quantize"] == quantize
        assert card["labels"]["7"] == "7" and len(card["labels"]) == 10
        assert card["parity"]["top1_agreement"] >= PARITY_BAR[quantize]
        assert card["size"]["bytes"] == path.stat().st_size and 0 < card["size"]["gzip_bytes"]
        assert card["source"]["weights_sha256"] and card["tools"]["onnxruntime"]
        assert card["input"]["shape"] == [-1, 28, 28, 1] and card["input"]["preprocessing"]
        # the artifact answers the same in the plain runtime, with nothing from edge_emnist
        probabilities = PLAIN[card["format"]](path, images)
        assert probabilities.shape == (200, 10)
        assert np.mean(probabilities.argmax(1) == labels) == pytest.approx(card["accuracy"]["artifact"])
        assert abs(card["accuracy"]["artifact"] - card["accuracy"]["keras"]) <= 0.01
    assert not list(tmp_path.glob(".tmp-*"))


@pytest.mark.parametrize("io", ["uint8", "float"])
def test_int8_edges_are_selectable(tiny_run, tmp_path, io):
    run, data, (images, labels) = tiny_run
    options = ExportOptions(quantize="int8", formats=("tflite",), io_type=io, out_dir=tmp_path)
    (path,) = export_run(run, options, data_dir=data, log=lambda _: None)
    card = json.loads(path.with_suffix(".tflite.json").read_text())
    expected = {"uint8": "uint8", "float": "float32"}[io]
    assert card["input"]["dtype"] == expected and card["output"]["dtype"] == expected
    if io == "uint8":  # scale 1/255, zero point 0: the app feeds raw pixels
        assert card["input"]["quantization"]["zero_point"] == 0 and card["input"]["value_range"] == [0, 255]
    assert np.mean(plain_litert(path, images).argmax(1) == labels) == pytest.approx(card["accuracy"]["artifact"])


def test_failed_parity_leaves_nothing(tiny_run, tmp_path, monkeypatch):
    run, data, _ = tiny_run
    monkeypatch.setitem(PARITY_BAR, "int8", 1.01)
    with pytest.raises(EdgeEmnistError, match="failed parity"):
        export_run(run, ExportOptions(quantize="int8", out_dir=tmp_path), data_dir=data, log=lambda _: None)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_export_leaves_nothing(tiny_run, tmp_path, monkeypatch):
    run, data, _ = tiny_run

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(artifacts, "to_onnx", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_run(run, ExportOptions(quantize="int8", formats=("onnx",), out_dir=tmp_path), data_dir=data,
                   log=lambda _: None)
    assert list(tmp_path.iterdir()) == []


def test_converter_failure_is_one_line(tiny_run, tmp_path, monkeypatch, capsys):
    run, data, _ = tiny_run

    def unsupported(*args, **kwargs):
        raise RuntimeError("'tf.Foo' op is neither a custom op nor a flex op\nlong\ntrace")

    monkeypatch.setattr(artifacts, "to_tflite", unsupported)
    code = main(["export", str(run), "--format", "tflite", "--data-dir", str(data), "--out-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1] == ("edge-emnist: error: tflite conversion of lenet5 (int8) failed: "
                                     "'tf.Foo' op is neither a custom op nor a flex op")
    assert list(tmp_path.iterdir()) == []


def test_cli_export_int8(tiny_run, tmp_path):
    run, data, _ = tiny_run
    assert main(["export", str(run), "--quantize", "int8", "--data-dir", str(data), "--out-dir", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "lenet5-mnist-int8.onnx", "lenet5-mnist-int8.onnx.json", "lenet5-mnist-int8.tflite",
        "lenet5-mnist-int8.tflite.json"]


def test_bad_runs_are_one_line_errors(tiny_run, tmp_path, capsys):
    run, data, _ = tiny_run
    other = tmp_path / "other-arch"
    shutil.copytree(run, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "arch": "simple_cnn"}))
    cases = {
        tmp_path / "missing": "no run at",
        tmp_path: "config.json is missing",
        other: "does not fit architecture simple_cnn",
    }
    for path, message in cases.items():
        code = main(["export", str(path), "--data-dir", str(data), "--out-dir", str(tmp_path / "out")])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and message in err[-1] and err[-1].startswith("edge-emnist: error:"), err
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
