"""A model trained elsewhere (Keras 3 .keras, tf_keras .h5, SavedModel) through export, parity, card and bench."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from edge_emnist.cli import main
from edge_emnist.data.registry import get_dataset
from tests.conftest import write_tiny

MAKE = """
import os, sys
os.environ["KERAS_BACKEND"] = "tensorflow"
import numpy as np, keras
for spec in sys.argv[1:]:  # kind:path:classes:size, one model each (one process: TensorFlow is imported once)
    kind, rest = spec.split(":", 1)
    out, classes, size = rest.rsplit(":", 2)
    classes, size = int(classes), int(size)
    rng = np.random.default_rng(0)
    x, y = rng.random((64, size, size)).astype("float32"), rng.integers(0, classes, 64)
    m = keras.Sequential([keras.Input((size, size)), keras.layers.Reshape((size, size, 1)),
                          keras.layers.Conv2D(4, 3, activation="relu"), keras.layers.Flatten(),
                          keras.layers.Dense(classes)])
    m.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    m.fit(x, y, epochs=1, verbose=0)
    m.save(out) if kind == "keras" else m.export(out)
"""


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Models made by a user's own Keras 3 (in a separate process, as theirs would be), and a tf_keras .h5."""
    root = tmp_path_factory.mktemp("imported")
    write_tiny(get_dataset("mnist"), root / "data", counts={"train": 200, "test": 100}, noise=60)
    specs = [f"{kind}:{root / name}:{classes}:{size}" for kind, name, classes, size in (
        ("keras", "logits.keras", 10, 28), ("saved", "saved_model", 10, 28), ("keras", "wrong_classes.keras", 47, 28),
        ("keras", "wrong_size.keras", 10, 32))]
    subprocess.run([sys.executable, "-c", MAKE, *specs], check=True, capture_output=True,
                   env={**os.environ, "KERAS_BACKEND": "tensorflow"}, timeout=300)
    from edge_emnist.tf_keras_env import keras

    h5 = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                           keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    h5.save(str(root / "probabilities.h5"))
    return root


def _export(made, tmp_path, *argv):
    return main(["export", *argv, "--dataset", "mnist", "--quantize", "none", "--data-dir", str(made / "data"),
                 "--out-dir", str(tmp_path / "out")])


@pytest.mark.parametrize("name, outputs", [("logits.keras", "logits"), ("saved_model", "logits"),
                                           ("probabilities.h5", "probabilities")])
def test_a_model_from_elsewhere_exports_with_parity_and_a_card(made, tmp_path, monkeypatch, name, outputs, capsys):
    monkeypatch.chdir(tmp_path)
    assert _export(made, tmp_path, str(made / name)) == 0
    stem = name.split(".")[0]
    run = tmp_path / "runs" / "imported" / f"{stem}-mnist"
    assert json.loads((run / "config.json").read_text())["model_options"]["outputs"] == outputs
    for suffix in (".tflite", ".onnx"):
        card = json.loads((tmp_path / "out" / f"external-{stem}-mnist-fp32{suffix}.json").read_text())
        assert card["arch"] == "external" and card["parity"]["top1_agreement"] == 1.0
        assert card["labels"]["3"] == "3" and card["source"]["run"].endswith(f"{stem}-mnist")
    if outputs == "logits":
        assert "a softmax is appended" in capsys.readouterr().err
    # bench takes it as any artifact, accuracy included (the card names the dataset)
    assert main(["bench", str(tmp_path / "out"), "--runs", "20", "--warmup", "5", "--batch", "1", "--no-yardstick",
                 "--data-dir", str(made / "data"), "--results", str(tmp_path / "b.jsonl")]) == 0
    records = [json.loads(line) for line in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert len(records) == 2 and all(0 <= r["accuracy"] <= 1 for r in records)


def test_an_imported_tf_keras_model_prunes_like_a_built_in_one(made, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _export(made, tmp_path, str(made / "probabilities.h5")) == 0
    run = tmp_path / "runs" / "imported" / "probabilities-mnist"
    assert main(["prune", str(run), "--sparsity", "0.5", "--epochs", "1", "--data-dir", str(made / "data"),
                 "--output", str(tmp_path / "pruned")]) == 0
    assert _export(made, tmp_path, str(tmp_path / "pruned")) == 0
    assert (tmp_path / "out" / "external-probabilities-mnist-p50-fp32.tflite").exists()


@pytest.mark.parametrize("name, extra, message", [
    ("logits.keras", ["--dataset", ""], "say which dataset"),
    ("wrong_classes.keras", [], "answers over 47 classes; the dataset has 10"),
    ("wrong_size.keras", [], "takes input (32, 32)"),
])
def test_what_an_imported_model_cannot_be_is_one_line(made, tmp_path, monkeypatch, capsys, name, extra, message):
    monkeypatch.chdir(tmp_path)
    code = main(["export", str(made / name), "--dataset", "mnist", *extra, "--data-dir", str(made / "data"),
                 "--out-dir", str(tmp_path / "out")])
    assert code == 2 and message in capsys.readouterr().err


def test_an_imported_architecture_is_never_trained(capsys):
    from edge_emnist.errors import EdgeEmnistError
    from edge_emnist.train import TrainConfig, train

    with pytest.raises(EdgeEmnistError, match="trained elsewhere"):
        train(TrainConfig(arch="external", dataset="mnist"))
    with pytest.raises(SystemExit):
        main(["train", "--arch", "external"])
