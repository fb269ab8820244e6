"""App-ready artifacts: RGB input turned grey inside the model, TFLite metadata and ONNX metadata_props that the
consumers read, and MediaPipe's Image Classifier giving LiteRT's answers with no glue code."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edge_emnist.cli import main
from edge_emnist.device.runtimes import LiteRTModel, OrtModel
from edge_emnist.export import tflite_metadata
from edge_emnist.export.artifacts import ExportOptions, export_run
from tests.test_export import tiny_run  # noqa: F401  (the module's trained LeNet-5 fixture)

ROOT = Path(__file__).resolve().parents[1]
MEDIAPIPE_CHECK = """
import sys, numpy as np, mediapipe as mp
from mediapipe.tasks import python as tasks
from mediapipe.tasks.python import vision
model, images, out = sys.argv[1], np.load(sys.argv[2]), sys.argv[3]
options = vision.ImageClassifierOptions(base_options=tasks.BaseOptions(model_asset_path=model), max_results=1)
with vision.ImageClassifier.create_from_options(options) as classifier:
    top = []
    for image in images:
        rgb = np.ascontiguousarray(np.repeat(image[..., None], 3, -1))  # a grey frame, as a canvas gives it
        frame = mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)
        best = classifier.classify(frame).classifications[0].categories[0]
        top.append((best.index, best.category_name))
np.save(out, np.array([t[0] for t in top]))
print("\\n".join(name for _, name in top))
"""


def mediapipe_python() -> str | None:
    """A Python with mediapipe 0.10.21 (its own environment: it pins numpy < 2 and protobuf < 5, which TensorFlow
    2.21's cannot share): $EDGE_EMNIST_MEDIAPIPE_PYTHON, else .venv-mediapipe/ beside the checkout."""
    candidate = os.environ.get("EDGE_EMNIST_MEDIAPIPE_PYTHON") or str(ROOT / ".venv-mediapipe" / "bin" / "python")
    if not Path(candidate).exists():
        return None
    probe = subprocess.run([candidate, "-c", "import mediapipe.tasks.python.vision"], capture_output=True)
    return candidate if probe.returncode == 0 else None


def through_mediapipe(python: str, model: Path, images: np.ndarray, tmp_path: Path) -> tuple[np.ndarray, list[str]]:
    np.save(tmp_path / "images.npy", images)
    done = subprocess.run([python, "-c", MEDIAPIPE_CHECK, str(model), str(tmp_path / "images.npy"),
                           str(tmp_path / "top.npy")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return np.load(tmp_path / "top.npy"), done.stdout.split()


def test_rgb_input_is_turned_grey_inside_and_checked_against_the_grey_model(tiny_run, tmp_path):  # noqa: F811
    run, data, (images, labels) = tiny_run
    paths = export_run(run, ExportOptions(quantize="none", input="rgb", out_dir=tmp_path), data_dir=data,
                       log=lambda _: None)
    assert sorted(p.name for p in paths) == ["lenet5-mnist-fp32-rgb.onnx", "lenet5-mnist-fp32-rgb.tflite"]
    grey = export_run(run, ExportOptions(quantize="none", formats=("tflite",), out_dir=tmp_path / "grey"),
                      data_dir=data, log=lambda _: None)[0]
    x = images[..., None].astype(np.float32) / 255
    expected = LiteRTModel(grey).predict(x)
    for path in paths:
        card = json.loads(path.with_name(path.name + ".json").read_text())
        assert card["input"]["shape"][-1] == 3 and card["parity"]["top1_agreement"] == 1.0
        model = LiteRTModel(path) if path.suffix == ".tflite" else OrtModel(path)
        rgb = np.repeat(x, 3, axis=-1)
        rgb[..., 0] = 0  # a coloured frame: only the luma of it counts
        np.testing.assert_allclose(model.predict(x), expected, atol=1e-5)  # grey in, repeated to RGB
        assert model.predict(rgb).shape == expected.shape


def test_int8_rgb_takes_raw_uint8_pixels(tiny_run, tmp_path):  # noqa: F811
    run, data, (images, _) = tiny_run
    [path] = export_run(run, ExportOptions(quantize="int8", io_type="uint8", input="rgb", formats=("tflite",),
                                           out_dir=tmp_path), data_dir=data, log=lambda _: None)
    assert path.name == "lenet5-mnist-int8-uint8io-rgb.tflite"
    model = LiteRTModel(path)
    assert np.dtype(model.input["dtype"]) == np.uint8 and list(model.input["shape"]) == [1, 28, 28, 3]
    scale, zero_point = model.input["quantization"]
    assert zero_point == 0 and scale == pytest.approx(1 / 255)  # raw pixels map straight through


def test_tflite_metadata_names_labels_normalization_and_colour(tiny_run, tmp_path):  # noqa: F811
    run, data, _ = tiny_run
    [path] = export_run(run, ExportOptions(quantize="none", input="rgb", formats=("tflite",), out_dir=tmp_path),
                        data_dir=data, log=lambda _: None)
    meta = tflite_metadata.read(path)
    card = json.loads(path.with_name(path.name + ".json").read_text())
    assert meta["labels"] == [card["labels"][str(i)] for i in range(10)] and meta["name"] == path.stem
    assert meta["mean"] == [0.0] * 3 and meta["std"] == [255.0] * 3 and meta["color_space"] == "rgb"
    again = tflite_metadata.ClassifierFacts(name="again", description="", version="0", author="",
                                            labels=meta["labels"], channels=3, size=28, mean=[0.0] * 3,
                                            std=[255.0] * 3, value_range=(0, 255))
    tflite_metadata.embed(path, again)
    size = path.stat().st_size
    tflite_metadata.embed(path, again)  # replaced, not added: the file does not grow
    assert tflite_metadata.read(path)["name"] == "again" and path.stat().st_size == size


def test_a_file_without_metadata_reads_as_empty(tmp_path):
    from edge_emnist.export.tflite import convert
    from edge_emnist.models import create_model

    path = tmp_path / "plain.tflite"
    convert(create_model("lenet5", 10), path, quantize="none", representative=None)
    assert tflite_metadata.read(path) == {}


def test_bad_input_choice_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(tmp_path), "--input", "bgr"])
    assert exit_info.value.code == 2 and "--input" in capsys.readouterr().err


@pytest.mark.slow
def test_mediapipe_image_classifier_reads_the_metadata_and_agrees_with_litert(tiny_run, tmp_path):  # noqa: F811
    python = mediapipe_python()
    if not python:
        pytest.skip("no Python with mediapipe 0.10.21 (make .venv-mediapipe: see docs/embedding.md)")
    run, data, (images, labels) = tiny_run
    [path] = export_run(run, ExportOptions(quantize="none", input="rgb", formats=("tflite",), out_dir=tmp_path),
                        data_dir=data, log=lambda _: None)
    top, names = through_mediapipe(python, path, images, tmp_path)
    litert = LiteRTModel(path).predict(images[..., None].astype(np.float32) / 255).argmax(axis=1)
    np.testing.assert_array_equal(top, litert)
    card = json.loads(path.with_name(path.name + ".json").read_text())
    assert names == [card["labels"][str(i)] for i in litert]  # the embedded labels, no glue code


SHIPPED_APP_READY = sorted((ROOT / "exported").glob("*-rgb.tflite"))


@pytest.mark.slow
@pytest.mark.parametrize("path", SHIPPED_APP_READY, ids=lambda p: p.name)
def test_shipped_app_ready_files_through_mediapipe(path, shared_data, tmp_path):
    python = mediapipe_python()
    if not python:
        pytest.skip("no Python with mediapipe 0.10.21 (make .venv-mediapipe: see docs/embedding.md)")
    from edge_emnist.data import load_dataset

    test = load_dataset("emnist-bymerge", shared_data).test
    images = test.images[:500]
    top, _ = through_mediapipe(python, path, images, tmp_path)
    litert = LiteRTModel(path).predict(images[..., None].astype(np.float32) / 255).argmax(axis=1)
    np.testing.assert_array_equal(top, litert)
