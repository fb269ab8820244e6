"""Knowledge distillation: the loss, the teachers' checks, and a distilled run that is an ordinary run."""

import json
import shutil

import numpy as np
import pytest

from edge_emnist import keras3
from edge_emnist.cli import main
from edge_emnist.data.registry import get_dataset
from edge_emnist.distill import distillation_loss
from edge_emnist.export.artifacts import ExportOptions, export_run
from edge_emnist.models import create_model
from edge_emnist.optimize.config import PruneConfig
from edge_emnist.optimize.finetune import optimize_run
from edge_emnist.train import TrainConfig, train
from tests.conftest import write_tiny


def _cross_entropy(labels, logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(labels)), labels]


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_the_loss_is_hintons():
    keras = keras3.load_keras("tensorflow")
    rng = np.random.default_rng(0)
    student, teacher_a, teacher_b = (rng.standard_normal((8, 5)).astype(np.float32) for _ in range(3))
    labels = rng.integers(0, 5, 8)
    joined = np.concatenate([student, teacher_a, teacher_b], axis=1)
    t, w = 3.0, 0.6
    target = (_softmax(teacher_a / t) + _softmax(teacher_b / t)) / 2  # an ensemble averages its softened answers
    kl = np.sum(target * (np.log(target) - np.log(_softmax(student / t))), axis=1)
    expected = (1 - w) * _cross_entropy(labels, student) + w * t * t * kl
    got = keras.ops.convert_to_numpy(distillation_loss(keras, 5, 2, t, w)(labels, joined))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    labels_only = distillation_loss(keras, 5, 2, t, 0.0)(labels, joined)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(labels_only), _cross_entropy(labels, student), rtol=1e-5)
    same = np.concatenate([student, student], axis=1)  # a student that answers as its teacher: no soft loss
    np.testing.assert_allclose(keras.ops.convert_to_numpy(distillation_loss(keras, 5, 1, t, 1.0)(labels, same)), 0,
                               atol=1e-5)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp("distill")
    write_tiny(get_dataset("mnist"), root / "mnist", counts={"train": 300, "test": 100}, noise=60)
    write_tiny(get_dataset("kmnist"), root / "kmnist", counts={"train": 100, "test": 50}, noise=60)
    write_tiny(get_dataset("emnist-letters"), root / "letters", counts={"train": 104, "test": 52}, noise=60)
    for name, arch in (("teacher", "lenet5"), ("teacher2", "simple_cnn")):
        train(TrainConfig(arch=arch, dataset="mnist", epochs=3, batch_size=32, lr=3e-3), root / name,
              data_dir=root / "mnist", verbose=0)
    train(TrainConfig(arch="lenet5", dataset="kmnist", epochs=1, batch_size=32), root / "kmnist-teacher",
          data_dir=root / "kmnist", verbose=0)
    train(TrainConfig(arch="lenet5", dataset="emnist-letters", epochs=1, batch_size=32), root / "letters-teacher",
          data_dir=root / "letters", verbose=0)
    return root


def _distill(made, *argv):
    return main(["distill", "--arch", "edgenet", "--option", "width=0.5", "--dataset", "mnist", "--epochs", "2",
                 "--batch-size", "32", "--data-dir", str(made / "mnist"), *argv])


def test_a_distilled_run_is_an_ordinary_run(made, tmp_path, capsys):
    run = tmp_path / "student"
    assert _distill(made, "--teacher", f"{made / 'teacher'},{made / 'teacher2'}", "--temperature", "3",
                    "--soft-weight", "0.7", "--run-dir", str(run)) == 0
    assert "validation" in capsys.readouterr().out
    config = json.loads((run / "config.json").read_text())["distill"]
    assert config["temperature"] == 3 and config["soft_weight"] == 0.7 and len(config["teacher_sha256"]) == 2
    # the run keeps the student's weights only: a plain edgenet loads them, and export takes the run as it is
    student = create_model("edgenet", 10, width=0.5)
    student.load_weights(str(run / "best.weights.h5"))
    [path] = export_run(run, ExportOptions(quantize="none", formats=["tflite"], out_dir=tmp_path / "out"),
                        data_dir=made / "mnist", log=lambda _: None)
    # named as distilled (two teachers, T 3): never the same file name as a plain run of the same shape
    assert path.name == "edgenet-width0.5-mnist-kd2-t3-fp32.tflite"
    # resumable like any run, with its teachers from its own config.json
    assert _distill(made, "--run-dir", str(run), "--resume", "--epochs", "3") == 0
    assert len((run / "history.csv").read_text().splitlines()) == 4


def test_default_run_folder_names_the_distillation(made, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _distill(made, "--teacher", str(made / "teacher"), "--epochs", "1") == 0
    [folder] = (tmp_path / "runs").iterdir()
    assert "-kd1-t4-" in folder.name


@pytest.mark.parametrize("teacher, message", [
    ("kmnist-teacher", "learned kmnist"),
    ("letters-teacher", "26 classes"),
    ("nowhere", "no run at"),
])
def test_teachers_that_cannot_teach_are_refused(made, tmp_path, capsys, teacher, message):
    assert _distill(made, "--teacher", str(made / teacher), "--run-dir", str(tmp_path / "s")) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "s").exists()


def test_an_optimized_teacher_is_refused(made, tmp_path, capsys):
    optimize_run(made / "teacher", prune=PruneConfig(0.5), epochs=1, output=tmp_path / "teacher-p50",
                 data_dir=made / "mnist", verbose=0)
    assert _distill(made, "--teacher", str(tmp_path / "teacher-p50"), "--run-dir", str(tmp_path / "s")) == 2
    assert "p50 run" in capsys.readouterr().err


def test_a_changed_teacher_stops_the_resume(made, tmp_path, capsys):
    teacher = tmp_path / "teacher"
    shutil.copytree(made / "teacher", teacher)
    run = tmp_path / "student"
    assert _distill(made, "--teacher", str(teacher), "--epochs", "1", "--run-dir", str(run)) == 0
    shutil.copy(made / "teacher2" / "best.weights.h5", teacher / "best.weights.h5")
    assert _distill(made, "--run-dir", str(run), "--resume") == 2
    assert "changed since this student started" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--soft-weight", "1.5"], "--soft-weight"),
    (["--soft-weight", "nan"], "--soft-weight"),
    (["--temperature", "0"], "--temperature"),
    (["--temperature", "inf"], "--temperature"),
    (["--teacher", ","], "at least one teacher"),
])
def test_bad_distillation_options_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["distill", "--arch", "edgenet", *argv])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_no_teacher_is_one_line(capsys):
    assert main(["distill", "--arch", "edgenet", "--dataset", "mnist"]) == 2
    assert "at least one --teacher" in capsys.readouterr().err


def test_qat_and_pruning_can_keep_learning_from_teachers(made, tmp_path, capsys):
    """QAT (and magnitude pruning under it) fine-tunes through the distillation wrapper on tf_keras: the run
    records its teachers, keeps the student's weights alone, and exports like any QAT run."""
    data = str(made / "mnist")
    out = tmp_path / "qat-kd"
    assert main(["prune", str(made / "teacher2"), "--sparsity", "0.5", "--schedule", "constant", "--qat",
                 "--epochs", "1", "--teacher", f"{made / 'teacher'},{made / 'teacher2'}", "--temperature", "2",
                 "--output", str(out), "--data-dir", data]) == 0
    assert "learns from 2 teacher(s) at T 2" in capsys.readouterr().out
    optimization = json.loads((out / "optimization.json").read_text())
    taught = optimization["distill"]
    assert taught["temperature"] == 2 and len(taught["teacher_sha256"]) == 2
    assert [row["stage"] for row in optimization["history"]] == ["prune", "qat"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["sparsity"]["total"] == pytest.approx(0.5, abs=0.02)  # the pruning step ran inside the wrapper
    [path] = export_run(out, ExportOptions(quantize="int8", formats=["tflite"], out_dir=tmp_path / "out"),
                        data_dir=made / "mnist", log=lambda _: None)
    assert path.exists()


def test_a_distilled_source_fine_tuned_on_labels_says_so(made, tmp_path, capsys):
    student = tmp_path / "student"
    assert _distill(made, "--teacher", str(made / "teacher"), "--epochs", "1", "--run-dir", str(student)) == 0
    capsys.readouterr()
    assert main(["qat", str(student), "--epochs", "1", "--output", str(tmp_path / "q"), "--data-dir",
                 str(made / "mnist")]) == 0
    assert "pass --teacher to keep learning" in capsys.readouterr().out
    assert json.loads((tmp_path / "q" / "optimization.json").read_text())["distill"] is None


@pytest.mark.parametrize("teacher, message", [
    ("kmnist-teacher", "learned kmnist"),
    ("letters-teacher", "26 classes"),
    ("nowhere", "no run at"),
])
def test_fine_tuning_refuses_teachers_that_cannot_teach(made, tmp_path, capsys, teacher, message):
    assert main(["qat", str(made / "teacher"), "--teacher", str(made / teacher), "--output", str(tmp_path / "q"),
                 "--data-dir", str(made / "mnist")]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "q").exists()


def test_fine_tuning_distillation_options_are_checked_on_the_command_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["qat", "somewhere", "--teacher", "t", "--soft-weight", "2"])
    assert exit_info.value.code == 2 and "--soft-weight" in capsys.readouterr().err
