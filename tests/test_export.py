"""Export: every format x quantization on a tiny trained model, checked in the plain runtimes."""

import json
import shutil
from dataclasses import replace

import numpy as np
import onnxruntime as ort
import pytest
from ai_edge_litert.interpreter import Interpreter

from edge_emnist.cli import main
from edge_emnist.data.registry import get_dataset
from edge_emnist.device import formats
from edge_emnist.device.cards import ANSWERS_KEPT, answers_section, card_answers
from edge_emnist.errors import EdgeEmnistError
from edge_emnist.export import artifacts
from edge_emnist.export import onnx as onnx_export
from edge_emnist.export import tflite as tflite_export
from edge_emnist.export.artifacts import ExportOptions, export_run
from edge_emnist.train import TrainConfig, train
from tests.conftest import write_tiny

QUANTIZATIONS = ["none", "fp16", "dynamic", "int8"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """LeNet-5 trained on noisy synthetic MNIST until confident: a real model, small enough for tests."""
    root = tmp_path_factory.mktemp("export")
    data = write_tiny(get_dataset("mnist"), root / "data", counts={"train": 600, "test": 200}, noise=90)
    config = TrainConfig(arch="lenet5", dataset="mnist", epochs=6, batch_size=32, lr=3e-3, patience=6,
                         augment="off")  # a fixed, well-learned model: what export is checked on
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
        assert card["parity"]["top1_agreement"] >= formats.QUANTIZATIONS[quantize].parity_bar
        assert card["size"]["bytes"] == path.stat().st_size and 0 < card["size"]["gzip_bytes"]
        assert card["source"]["weights_sha256"] and card["tools"]["onnxruntime"]
        assert card["input"]["shape"] == [-1, 28, 28, 1] and card["input"]["preprocessing"]
        # the artifact answers the same in the plain runtime, with nothing from edge_emnist
        probabilities = PLAIN[card["format"]](path, images)
        assert probabilities.shape == (200, 10)
        assert np.mean(probabilities.argmax(1) == labels) == pytest.approx(card["accuracy"]["artifact"])
        assert abs(card["accuracy"]["artifact"] - card["accuracy"]["keras"]) <= 0.01
        assert np.array_equal(card_answers(card), probabilities.argmax(1))  # the 200 test images' answers, kept
    assert not list(tmp_path.glob(".tmp-*"))


def test_a_card_keeps_the_first_answers_and_refuses_a_torn_section():
    probabilities = np.eye(47)[np.arange(ANSWERS_KEPT + 500) % 47]
    section = answers_section(probabilities)
    assert section["images"] == ANSWERS_KEPT and len(section["top1"]) < 3 * ANSWERS_KEPT // 2  # about 2.7 KB
    assert np.array_equal(card_answers({"answers": section}), np.arange(ANSWERS_KEPT) % 47)
    assert card_answers({}) is None  # a card from before cards kept answers
    with pytest.raises(EdgeEmnistError, match="hold 2000 images, it says 2001"):
        card_answers({"answers": {**section, "images": ANSWERS_KEPT + 1}})
    with pytest.raises(ValueError, match="256 classes"):
        answers_section(np.eye(300))


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
    monkeypatch.setitem(formats.QUANTIZATIONS, "int8", replace(formats.QUANTIZATIONS["int8"], parity_bar=1.01))
    with pytest.raises(EdgeEmnistError, match="failed parity"):
        export_run(run, ExportOptions(quantize="int8", out_dir=tmp_path), data_dir=data, log=lambda _: None)
    assert list(tmp_path.iterdir()) == []


def test_a_refused_artifact_is_recorded_and_the_others_go_on(tiny_run, tmp_path, monkeypatch, capsys):
    from edge_emnist.device.cards import read_refusals

    run, data, _ = tiny_run
    monkeypatch.setitem(formats.QUANTIZATIONS, "int8", replace(formats.QUANTIZATIONS["int8"], parity_bar=1.01))
    code = main(["export", str(run), "--quantize", "int8", "--data-dir", str(data), "--out-dir", str(tmp_path)])
    assert code == 1 and "2 artifact(s) refused" in capsys.readouterr().err
    refusals = {r["artifact"]: r for r in read_refusals(tmp_path)}
    assert set(refusals) == {"lenet5-mnist-int8.tflite", "lenet5-mnist-int8.onnx"}
    assert refusals["lenet5-mnist-int8.onnx"]["parity"]["checked_on"][0]["isa"] is not None
    monkeypatch.setitem(formats.QUANTIZATIONS, "int8", replace(formats.QUANTIZATIONS["int8"], parity_bar=0.99))
    assert main(["export", str(run), "--quantize", "int8", "--format", "onnx", "--data-dir", str(data),
                 "--out-dir", str(tmp_path)]) == 0
    assert [r["artifact"] for r in read_refusals(tmp_path)] == ["lenet5-mnist-int8.tflite"]  # passed: forgotten


def test_quantized_onnx_is_all_uint8_and_cpu_independent(tiny_run, tmp_path):
    """int8 x int8 products saturate in ONNX Runtime's AVX2 kernels (no VNNI); uint8 x uint8 never do. With only
    uint8 tensors the fused int8 graph answers as the unfused one (float math between Q/DQ) does, on any CPU."""
    import onnx

    from edge_emnist.device.runtimes import OrtModel
    from edge_emnist.export.onnx_unsigned import eight_bit_types

    run, data, (images, _) = tiny_run
    x = images[..., None].astype(np.float32) / 255
    for quantize in ("int8", "dynamic"):
        (path,) = export_run(run, ExportOptions(quantize=quantize, formats=("onnx",), out_dir=tmp_path),
                             data_dir=data, log=lambda _: None)
        assert eight_bit_types(onnx.load(str(path))) == {"uint8"}
        if quantize == "int8":
            fused, unfused = (OrtModel(path, optimization=level).predict(x) for level in ("all", "basic"))
            assert np.array_equal(fused.argmax(1), unfused.argmax(1))


def test_to_unsigned_changes_no_answer(tiny_run, tmp_path, monkeypatch):
    """The uint8 rewrite is exact: the same graph with int8 tensors gives bit-identical outputs."""
    import onnx

    from edge_emnist.device.runtimes import OrtModel
    from edge_emnist.export import onnx as onnx_export
    from edge_emnist.export.onnx_unsigned import to_unsigned

    # The int8-tensor graph is what saturates on AVX2 without VNNI (why export stores uint8): on such a CPU it can
    # miss the parity bar, which is beside the point here (the unfused graphs are compared below).
    monkeypatch.setitem(formats.QUANTIZATIONS, "int8", replace(formats.QUANTIZATIONS["int8"], parity_bar=0.0))
    run, data, (images, _) = tiny_run
    signed = tmp_path / "signed.onnx"
    original = onnx_export._save_unsigned
    onnx_export._save_unsigned = lambda proto, path: onnx.save(proto, str(path))  # keep the int8 tensors
    try:
        (path,) = export_run(run, ExportOptions(quantize="int8", formats=("onnx",), out_dir=tmp_path),
                             data_dir=data, log=lambda _: None)
    finally:
        onnx_export._save_unsigned = original
    path.replace(signed)
    proto = onnx.load(str(signed))
    assert to_unsigned(proto) > 0
    onnx.save(proto, str(tmp_path / "unsigned.onnx"))
    x = images[..., None].astype(np.float32) / 255
    a, b = (OrtModel(tmp_path / name, optimization="basic").predict(x) for name in ("signed.onnx", "unsigned.onnx"))
    np.testing.assert_array_equal(a, b)


def test_card_names_its_artifact_by_sha256_and_a_crash_between_the_two_is_detected(tiny_run, tmp_path,
                                                                                     monkeypatch):
    from edge_emnist.device.cards import card_path
    from edge_emnist.device.files import sha256_file
    from edge_emnist.export.artifacts import artifact_is_current

    run, data, _ = tiny_run
    options = ExportOptions(quantize="none", formats=("onnx",), out_dir=tmp_path)
    (path,) = export_run(run, options, data_dir=data, log=lambda _: None)
    card = json.loads(card_path(path).read_text())
    assert card["sha256"] == sha256_file(path) and artifact_is_current(path)
    assert card["parity"]["checked_on"][0]["cpu"] and card["parity"]["checked_on"][0]["runtime"] == "ort"

    real_convert, real_atomic = artifacts._convert, artifacts.atomic_path

    def other_bytes(*args):  # the same model, but a different file: a re-export after retraining
        import onnx

        real_convert(*args)
        proto = onnx.load(str(args[4]))
        proto.doc_string = "another export"
        onnx.save(proto, str(args[4]))

    def killed_before_the_card(target):
        if str(target).endswith(".json"):
            raise KeyboardInterrupt
        return real_atomic(target)

    monkeypatch.setattr(artifacts, "_convert", other_bytes)
    monkeypatch.setattr(artifacts, "atomic_path", killed_before_the_card)
    with pytest.raises(KeyboardInterrupt):
        export_run(run, options, data_dir=data, log=lambda _: None)
    assert json.loads(card_path(path).read_text()) == card  # the old card stayed beside the new file ...
    assert not artifact_is_current(path)  # ... and no longer matches it: the pair counts as neither


def test_an_artifact_from_other_weights_is_replaced_only_with_force(tiny_run, tmp_path, capsys):
    run, data, _ = tiny_run
    options = ExportOptions(quantize="none", formats=("tflite",), out_dir=tmp_path)
    (path,) = export_run(run, options, data_dir=data, log=lambda _: None)
    card = path.with_name(path.name + ".json")
    card.write_text(card.read_text().replace('"weights_sha256": "', '"weights_sha256": "other'))
    before = path.read_bytes()
    code = main(["export", str(run), "--quantize", "none", "--format", "tflite", "--data-dir", str(data),
                 "--out-dir", str(tmp_path)])
    assert code == 2 and "made from other weights; pass --force" in capsys.readouterr().err
    assert path.read_bytes() == before
    assert main(["export", str(run), "--quantize", "none", "--format", "tflite", "--data-dir", str(data),
                 "--out-dir", str(tmp_path), "--force"]) == 0


def test_interrupted_export_leaves_nothing(tiny_run, tmp_path, monkeypatch):
    run, data, _ = tiny_run

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(onnx_export, "to_onnx", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_run(run, ExportOptions(quantize="int8", formats=("onnx",), out_dir=tmp_path), data_dir=data,
                   log=lambda _: None)
    assert list(tmp_path.iterdir()) == []


def test_converter_failure_is_one_line(tiny_run, tmp_path, monkeypatch, capsys):
    run, data, _ = tiny_run

    def unsupported(*args, **kwargs):
        raise RuntimeError("'tf.Foo' op is neither a custom op nor a flex op\nlong\ntrace")

    monkeypatch.setattr(tflite_export, "to_tflite", unsupported)
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


def test_a_users_export_goes_to_the_workspace_not_the_shipped_models(tiny_run, tmp_path, monkeypatch):
    """`edge-emnist export RUN --quantize int8` (the headline usage) never writes into exported/ by default."""
    run, data, _ = tiny_run
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exported").mkdir()
    assert main(["export", str(run), "--quantize", "none", "--format", "onnx", "--data-dir", str(data)]) == 0
    assert list((tmp_path / "exported").iterdir()) == []
    assert (tmp_path / "runs" / "exported" / "lenet5-mnist-fp32.onnx").exists()


def test_a_card_readers_would_refuse_is_never_written():
    from edge_emnist.device.cards import card_problem

    card = {"artifact": "m.tflite", "sha256": "0" * 64, "format": "tflite", "quantize": "none", "arch": "lenet5",
            "dataset": "mnist", "labels": {str(i): str(i) for i in range(10)}, "input": {"dtype": "float32"},
            "output": {"shape": [-1, 10]}, "parity": {"top1_agreement": 1.0}, "accuracy": {"artifact": 0.9}}
    assert card_problem(card) is None
    assert "without sha256" in card_problem({**card, "sha256": None})
    assert "9 labels for 10 outputs" in card_problem({**card, "labels": {str(i): str(i) for i in range(9)}})


def test_edgenet_exports_with_every_batch_norm_folded(tiny_run, tmp_path):
    """The compact family trains from the command line with its own options, and export folds each batch norm
    into its convolution: the .tflite holds convolutions, pools and the head only, the .onnx no BatchNormalization,
    and both pass the parity check."""
    import onnx

    _, data_dir, _ = tiny_run
    run = tmp_path / "edgenet"
    assert main(["train", "--arch", "edgenet", "--dataset", "mnist", "--option", "width=0.5", "--option",
                 "separable=true", "--epochs", "3", "--batch-size", "32", "--lr", "3e-3", "--augment", "off",
                 "--data-dir", str(data_dir), "--run-dir", str(run)]) == 0
    assert json.loads((run / "config.json").read_text())["model_options"] == {"width": 0.5, "separable": True}
    written = export_run(run, ExportOptions(quantize="none", out_dir=tmp_path / "out"), data_dir=data_dir,
                         log=lambda _: None)
    tflite = next(p for p in written if p.suffix == ".tflite")
    ops = {op["op_name"] for op in Interpreter(model_path=str(tflite))._get_ops_details()}
    assert ops <= {"CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX", "RESHAPE"}
    graph = onnx.load(str(next(p for p in written if p.suffix == ".onnx"))).graph
    assert "BatchNormalization" not in {node.op_type for node in graph.node}


def test_litert_is_tflites_current_name():
    """--format litert (Google's and Ultralytics' name for TFLite now) writes the same .tflite as tflite."""
    assert ExportOptions(formats="litert").formats == ("tflite",)
    assert ExportOptions(formats=("litert", "tflite", "onnx")).formats == ("tflite", "onnx")
    assert ExportOptions(formats="all").formats == ("tflite", "onnx")


def test_litert_on_the_command_line(tiny_run, tmp_path):
    run, data, _ = tiny_run
    assert main(["export", str(run), "--quantize", "none", "--format", "litert", "--data-dir", str(data),
                 "--out-dir", str(tmp_path)]) == 0
    assert [p.suffix for p in tmp_path.iterdir() if not p.name.endswith(".json")] == [".tflite"]


@pytest.mark.parametrize("quantize", ["none", "int8"])
def test_onnx_files_describe_themselves(tiny_run, tmp_path, quantize):
    """Labels, normalization and provenance in metadata_props, where ONNX Runtime and Netron read them; the card's
    sha256 is of the file with its metadata, and the parity check ran on that file."""
    from edge_emnist.device.files import sha256_file

    run, data, _ = tiny_run
    (path,) = export_run(run, ExportOptions(quantize=quantize, formats=("onnx",), out_dir=tmp_path), data_dir=data,
                         log=lambda _: None)
    card = json.loads(path.with_name(path.name + ".json").read_text())
    meta = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
    assert json.loads(meta["labels"]) == [card["labels"][str(i)] for i in range(len(card["labels"]))]
    assert json.loads(meta["normalization"]) == {"mean": [0.0], "std": [255.0]}
    assert meta["weights_sha256"] == card["source"]["weights_sha256"] and meta["name"] == path.stem
    assert meta["orientation"] == card["input"]["orientation"] and "white (255) on black" in meta["preprocessing"]
    assert card["sha256"] == sha256_file(path)
