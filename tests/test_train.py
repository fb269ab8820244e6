import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from edge_emnist.cli import main
from edge_emnist.data.augment import Augment
from edge_emnist.data.registry import get_dataset
from edge_emnist.errors import EdgeEmnistError
from edge_emnist.sweep import parse_grid
from edge_emnist.train import TrainConfig, read_history, train
from tests.conftest import write_tiny


@pytest.fixture
def tiny_data(tmp_path):
    spec = get_dataset("emnist-balanced")
    write_tiny(spec, tmp_path / "data", counts={"train": 6 * 47, "test": 2 * 47})
    return tmp_path / "data"


def config(**overrides):
    return TrainConfig(**{"arch": "lenet5", "dataset": "emnist-balanced", "epochs": 2, "batch_size": 32,
                          **overrides})


def test_run_folder_holds_everything(tiny_data, tmp_path):
    run = tmp_path / "run"
    metrics = train(config(), run, data_dir=tiny_data, verbose=0)
    assert {p.name for p in run.iterdir()} >= {"config.json", "history.csv", "learning_curves.png", "checkpoints",
                                               "best.weights.h5", "last.weights.h5", "metrics.json"}
    assert [row["epoch"] for row in read_history(run)] == [1, 2]
    assert metrics["trainable_params"] == 64_851 and metrics["test_images"] == 94
    assert metrics["data"]["official"] is False and len(metrics["data"]["fingerprint"]) == 64
    assert 0 <= metrics["test_accuracy"] <= 1 and metrics["images_per_s"] > 0
    assert json.loads((run / "metrics.json").read_text()) == metrics
    assert (run / "learning_curves.png").read_bytes().startswith(b"\x89PNG")
    # augmentation is on by default, and the run records exactly what it used
    assert metrics["augment"] == Augment().to_dict() == json.loads((run / "config.json").read_text())["augment"]


def test_a_resumed_run_sees_the_batches_an_uninterrupted_one_sees(tiny_data, tmp_path):
    """Order and augmentation are a function of (seed, epoch, batch): resuming after epoch 1 gives epoch 2 the
    same loss as running both epochs at once."""
    train(config(epochs=2), tmp_path / "whole", data_dir=tiny_data, verbose=0)
    train(config(epochs=1), tmp_path / "split", data_dir=tiny_data, verbose=0)
    train(config(epochs=2), tmp_path / "split", resume=True, data_dir=tiny_data, verbose=0)
    whole, split = read_history(tmp_path / "whole"), read_history(tmp_path / "split")
    assert [r["loss"] for r in whole] == pytest.approx([r["loss"] for r in split], rel=1e-5)


def test_augmentation_can_be_set_or_switched_off(tiny_data, tmp_path, capsys):
    metrics = train(config(epochs=1, augment="off"), tmp_path / "off", data_dir=tiny_data, verbose=0)
    assert metrics["augment"] is False
    metrics = train(config(epochs=1, augment="rotation_deg=20,elastic_px=0"), tmp_path / "set", data_dir=tiny_data,
                    verbose=0)
    assert metrics["augment"]["rotation_deg"] == 20 and metrics["augment"]["elastic_px"] == 0
    with pytest.raises(SystemExit):
        main(["train", "--arch", "lenet5", "--augment", "spin=3"])
    assert "not NAME=VALUE" in capsys.readouterr().err


def test_seeded_runs_reproduce(tiny_data, tmp_path):
    first = train(config(init="he"), tmp_path / "a", data_dir=tiny_data, verbose=0)
    second = train(config(init="he"), tmp_path / "b", data_dir=tiny_data, verbose=0)
    assert read_history(tmp_path / "a")[-1]["loss"] == read_history(tmp_path / "b")[-1]["loss"]
    assert first["test_accuracy"] == second["test_accuracy"]


def test_existing_run_needs_resume(tiny_data, tmp_path):
    train(config(epochs=1), tmp_path / "run", data_dir=tiny_data, verbose=0)
    with pytest.raises(EdgeEmnistError, match="already holds a run; pass --resume"):
        train(config(epochs=1), tmp_path / "run", data_dir=tiny_data, verbose=0)
    with pytest.raises(EdgeEmnistError, match="nothing to resume"):
        train(config(), tmp_path / "missing", resume=True, data_dir=tiny_data, verbose=0)


def test_resume_extends_a_finished_run(tiny_data, tmp_path):
    train(config(epochs=1), tmp_path / "run", data_dir=tiny_data, verbose=0)
    metrics = train(config(epochs=3), tmp_path / "run", resume=True, data_dir=tiny_data, verbose=0)
    assert [row["epoch"] for row in read_history(tmp_path / "run")] == [1, 2, 3] and metrics["epochs_run"] == 3


def test_resume_can_switch_on_the_plateau_schedule(tiny_data, tmp_path):
    from edge_emnist.keras3 import LR_SCHEDULES

    train(config(epochs=1), tmp_path / "run", data_dir=tiny_data, verbose=0)
    train(config(epochs=2), tmp_path / "run", resume=True, data_dir=tiny_data, verbose=0)  # default: unchanged
    assert json.loads((tmp_path / "run" / "config.json").read_text())["lr_schedule"] == "constant"
    train(config(epochs=3, lr_schedule="plateau"), tmp_path / "run", resume=True, data_dir=tiny_data, verbose=0)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["lr_schedule"] == "plateau"
    train(config(epochs=4), tmp_path / "run", resume=True, data_dir=tiny_data, verbose=0)  # never silently off
    assert json.loads((tmp_path / "run" / "config.json").read_text())["lr_schedule"] == "plateau"
    import keras

    callback = LR_SCHEDULES["plateau"](keras, 1e-3, 4)
    assert (callback.monitor, callback.factor, callback.patience) == ("val_loss", 0.5, 2)
    with pytest.raises(EdgeEmnistError, match="LR schedule must be one of"):
        train(config(lr_schedule="linear"), tmp_path / "other", data_dir=tiny_data, verbose=0)


def test_cosine_schedule_decays_the_lr_epoch_by_epoch(tiny_data, tmp_path):
    from edge_emnist.keras3 import cosine_lr

    assert cosine_lr(0, 1e-3, 4) == pytest.approx(1e-3) and cosine_lr(2, 1e-3, 4) == pytest.approx(5e-4)
    assert cosine_lr(4, 1e-3, 4) == pytest.approx(0) and cosine_lr(9, 1e-3, 4) == pytest.approx(0)
    train(config(epochs=3, lr=1e-3, lr_schedule="cosine"), tmp_path / "run", data_dir=tiny_data, verbose=0)
    lrs = [row["lr"] for row in read_history(tmp_path / "run")]
    assert lrs == pytest.approx([cosine_lr(epoch, 1e-3, 3) for epoch in range(3)], rel=1e-4)


def test_killed_run_resumes_where_it_stopped(tiny_data, tmp_path):
    run = tmp_path / "run"
    # 12 epochs: the kill lands after epoch 2, with 10 epochs (seconds on tiny data) to spare
    argv = [sys.executable, "-m", "edge_emnist.cli", "train", "--arch", "lenet5", "--dataset", "emnist-balanced",
            "--epochs", "12", "--patience", "12", "--batch-size", "16", "--data-dir", str(tiny_data),
            "--run-dir", str(run)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(read_history(run)) < 2:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(read_history(run))
    assert 2 <= done < 12 and not (run / "metrics.json").exists()
    assert main(argv[3:] + ["--resume"]) == 0
    epochs = [row["epoch"] for row in read_history(run)]
    assert epochs == list(range(1, 13)) and json.loads((run / "metrics.json").read_text())["epochs_run"] == 12


def test_a_kill_between_history_and_checkpoint_loses_no_epoch_row(tiny_data, tmp_path, monkeypatch):
    """Epoch 2's row is written, its checkpoint is not: --resume re-runs epoch 2 and keeps every row once."""
    import edge_emnist.train as training

    real_save = training.save_checkpoint

    def killed_at_epoch_2(model, run_dir, epoch):
        if epoch == 2:
            raise KeyboardInterrupt
        return real_save(model, run_dir, epoch)

    monkeypatch.setattr(training, "save_checkpoint", killed_at_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train(config(epochs=3), tmp_path / "run", data_dir=tiny_data, verbose=0)
    assert [row["epoch"] for row in read_history(tmp_path / "run")] == [1, 2]
    assert training.latest_checkpoint(tmp_path / "run")[1] == 1
    monkeypatch.setattr(training, "save_checkpoint", real_save)
    train(config(epochs=3), tmp_path / "run", resume=True, data_dir=tiny_data, verbose=0)
    assert [row["epoch"] for row in read_history(tmp_path / "run")] == [1, 2, 3]
    assert [p.name for p in (tmp_path / "run" / "checkpoints").iterdir()] == ["epoch-0003.weights.h5"]


def test_a_run_carried_with_only_its_checkpoint_resumes_and_gets_its_best_weights_back(tiny_data, tmp_path):
    """The smallest folder that resumes elsewhere: config, history and the newest checkpoint. Its best weights come
    back from the checkpoint when that epoch is the best; an earlier best epoch (weights gone) is a one-line error."""
    import shutil

    from edge_emnist.runs import write_history

    train(config(epochs=2), tmp_path / "run", data_dir=tiny_data, verbose=0)
    for case in ("latest", "earlier"):
        carried = tmp_path / case
        (carried / "checkpoints").mkdir(parents=True)
        for name in ("config.json", "history.csv", "checkpoints/epoch-0002.weights.h5"):
            shutil.copy(tmp_path / "run" / name, carried / name)
        history = read_history(carried)
        history[0]["val_accuracy"], history[1]["val_accuracy"] = (0.1, 1.0) if case == "latest" else (0.2, 0.1)
        write_history(carried, history)
        if case == "earlier":
            with pytest.raises(EdgeEmnistError, match=r"no best.weights.h5 and its best epoch \(1\) is not its "
                                                      r"checkpoint's \(2\)"):
                train(config(epochs=3), carried, resume=True, data_dir=tiny_data, verbose=0)
            continue
        metrics = train(config(epochs=3), carried, resume=True, data_dir=tiny_data, verbose=0)
        assert [row["epoch"] for row in read_history(carried)] == [1, 2, 3] and metrics["epochs_run"] == 3
        assert metrics["test_accuracy"] is not None
        # epoch 2 stays the best (1.0): its weights, as the uncarried run kept them after epoch 2
        assert _weights(carried / "best.weights.h5") == _weights(tmp_path / "run" / "last.weights.h5")


def _weights(path) -> list[bytes]:
    import h5py

    found = []
    with h5py.File(path) as f:
        f.visititems(lambda name, item: found.append(name.encode() + item[()].tobytes())
                     if isinstance(item, h5py.Dataset) else None)
    return found


def test_saved_weights_hold_no_optimizer_state(tiny_data, tmp_path):
    import h5py

    train(config(epochs=1), tmp_path / "run", data_dir=tiny_data, verbose=0)
    for name in ("best.weights.h5", "last.weights.h5"):
        with h5py.File(tmp_path / "run" / name) as f:
            assert "optimizer" not in f and "layers" in f


def test_early_stopping_uses_validation(tiny_data, tmp_path):
    metrics = train(config(epochs=30, patience=1, lr=0.5, optimizer="sgd"), tmp_path / "run",
                    data_dir=tiny_data, verbose=0)
    history = read_history(tmp_path / "run")
    assert metrics["stopped_early"] and len(history) < 30
    assert metrics["val_accuracy"] == max(row["val_accuracy"] for row in history)


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_data_parallel_on_two_logical_cpus(tiny_data, tmp_path, backend):
    """Several devices train one model: JAX through keras.distribution, TensorFlow through MirroredStrategy."""
    pytest.importorskip(backend)
    env = {**os.environ, "EDGE_EMNIST_LOGICAL_CPUS": "2"}
    subprocess.run([sys.executable, "-m", "edge_emnist.cli", "train", "--arch", "lenet5", "--dataset",
                    "emnist-balanced", "--epochs", "1", "--batch-size", "32", "--distribute", "mirrored",
                    "--backend", backend, "--data-dir", str(tiny_data), "--run-dir", str(tmp_path / "run")],
                   env=env, check=True, capture_output=True)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["replicas"] == 2 and metrics["backend"] == backend


def test_sweep_trains_every_cell_then_skips_them(tiny_data, tmp_path, capsys, monkeypatch):
    argv = ["sweep", "--arch", "lenet5", "--dataset", "emnist-balanced", "--epochs", "1", "--batch-size", "32",
            "--grid", "init=he,lecun", "optimizer=adam,sgd", "lr=0.01", "--data-dir", str(tiny_data),
            "--out", str(tmp_path / "sweep")]
    assert main(argv) == 0
    table = (tmp_path / "sweep" / "sweep.md").read_text()
    assert "## Test accuracy, init x optimizer" in table
    assert table.count("| he |") == 3  # two long-table rows, one pivot row
    assert len((tmp_path / "sweep" / "sweep.csv").read_text().splitlines()) == 5

    def must_not_train(*args, **kwargs):
        raise AssertionError("a finished cell was trained again")

    monkeypatch.setattr("edge_emnist.sweep.train", must_not_train)
    assert main(argv) == 0


@pytest.mark.parametrize("items,message", [
    (["init"], "must look like key=value1,value2"),
    (["colour=red"], "cannot sweep 'colour'"),
    (["lr=fast"], "not a valid lr"),
    ([], "empty grid"),
])
def test_bad_grids(items, message):
    with pytest.raises(EdgeEmnistError, match=message):
        parse_grid(items)


def test_bad_training_arguments(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--arch", "vgg99"])
    assert "invalid choice" in capsys.readouterr().err
    with pytest.raises(EdgeEmnistError, match="learning rate must be a positive finite number"):
        TrainConfig(arch="lenet5", lr=0).validate()


def test_two_trainings_into_one_folder(tiny_data, tmp_path):
    from edge_emnist.io import folder_lock

    with folder_lock(tmp_path / "run"), pytest.raises(EdgeEmnistError, match="is in use by process"):
        train(config(), tmp_path / "run", data_dir=tiny_data, verbose=0)


@pytest.mark.parametrize("backend", ["jax", "tensorflow", "torch"])
def test_every_backend_trains_a_run_that_tf_keras_opens(tiny_data, tmp_path, backend):
    """Train on a Keras 3 backend (its own process: the backend is fixed at import), then open the run the way
    prune/QAT/export do (tf_keras): the same weights give the same test accuracy."""
    pytest.importorskip(backend)
    from edge_emnist.data import load_dataset
    from edge_emnist.optimize.rebuild import build_model
    from edge_emnist.runs import input_batches, open_run

    run = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "edge_emnist.cli", "train", "--arch", "lenet5", "--dataset",
                             "emnist-balanced", "--epochs", "2", "--batch-size", "32", "--backend", backend,
                             "--data-dir", str(tiny_data), "--run-dir", str(run)],
                            check=True, capture_output=True, text=True)
    assert f"on {backend} (CPU" in result.stdout and "epoch 2/2" in result.stdout and "ETA" in result.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["backend"] == backend and metrics["device"]["keras"].startswith("3.")
    opened = open_run(run)
    data = load_dataset("emnist-balanced", tiny_data)
    batches = input_batches(data.test.images, data.test.labels, opened.config)
    predictions = np.concatenate([build_model(opened, 47).predict(x, verbose=0).argmax(1) for x, _ in batches])
    assert np.mean(predictions == data.test.labels) == pytest.approx(metrics["test_accuracy"], abs=1e-6)


def test_training_on_jax_needs_no_tensorflow(tiny_data, tmp_path):
    """The GPU machine has JAX and PyTorch but no TensorFlow: with TensorFlow and tf_keras made unimportable (as
    there), the whole training path still runs (libraries may try them optionally, and must be let down gently)."""
    pytest.importorskip("jax")
    code = ("import sys; sys.modules.update(tensorflow=None, tf_keras=None); from edge_emnist.cli import main; "
            f"main(['train', '--arch', 'lenet5', '--dataset', 'emnist-balanced', '--epochs', '1', '--batch-size', "
            f"'32', '--backend', 'jax', '--data-dir', {str(tiny_data)!r}, '--run-dir', {str(tmp_path / 'run')!r}])")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                   env={**os.environ, "KERAS_BACKEND": "jax"})
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["backend"] == "jax"


def test_backend_choice_errors(monkeypatch):
    from edge_emnist import keras3

    with pytest.raises(EdgeEmnistError, match="unknown Keras backend 'mxnet'"):
        keras3.choose_backend("mxnet")
    loaded = keras3.loaded_backend()
    if loaded:  # this process already runs Keras 3 on one backend: another is refused, with what to do
        other = next(name for name in keras3.BACKENDS if name != loaded)
        with pytest.raises(EdgeEmnistError, match=f"already running on {loaded}.*--backend {other} in a new process"):
            keras3.choose_backend(other)
    monkeypatch.setattr(keras3, "loaded_backend", lambda: None)
    monkeypatch.setattr(keras3.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EdgeEmnistError, match=r"torch backend is not installed: pip install 'edge-emnist\[torch\]'"):
        keras3.choose_backend("torch")
    with pytest.raises(SystemExit):
        main(["train", "--arch", "lenet5", "--backend", "theano"])


def test_default_backend_is_the_fastest_for_the_machine(monkeypatch):
    """TensorFlow on a CPU (measured fastest there: benchmarks/train_step.md); the first installed of jax, torch,
    tensorflow where nvidia-smi names a GPU."""
    from edge_emnist import keras3
    from edge_emnist.device import host

    monkeypatch.setattr(keras3, "installed_backends", lambda: ["jax", "torch", "tensorflow"])
    monkeypatch.setattr(host, "gpu_names", lambda: [])
    assert keras3.default_backend() == "tensorflow"
    monkeypatch.setattr(host, "gpu_names", lambda: ["NVIDIA H100 80GB HBM3"])
    assert keras3.default_backend() == "jax"
    monkeypatch.setattr(keras3, "installed_backends", lambda: ["torch"])
    assert keras3.default_backend() == "torch"


def test_a_run_writes_tensorboard_scalars(tiny_data, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    train(config(), run, data_dir=tiny_data, verbose=0)
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert {"loss/train", "loss/validation", "accuracy/validation", "learning_rate"} <= set(events.Tags()["scalars"])
    history = read_history(run)
    assert [e.step for e in events.Scalars("accuracy/validation")] == [1, 2]
    assert events.Scalars("accuracy/validation")[-1].value == pytest.approx(history[-1]["val_accuracy"], abs=1e-6)


def test_mlflow_tracks_parameters_epochs_and_curves_and_a_resume_continues_the_same_run(tiny_data, tmp_path):
    mlflow = pytest.importorskip("mlflow")
    run, store = tmp_path / "run", tmp_path / "mlruns"
    argv = ["train", "--arch", "lenet5", "--dataset", "emnist-balanced", "--epochs", "2", "--batch-size", "32",
            "--data-dir", str(tiny_data), "--run-dir", str(run), "--mlflow", str(store)]
    assert main(argv) == 0
    known = json.loads((run / "mlflow.json").read_text())
    assert known["tracking_uri"] == f"sqlite:///{store.resolve() / 'mlflow.db'}"
    client = mlflow.tracking.MlflowClient(known["tracking_uri"])
    tracked = client.get_run(known["run_id"])
    assert tracked.data.params["arch"] == "lenet5" and tracked.data.params["epochs"] == "2"
    assert [m.step for m in client.get_metric_history(known["run_id"], "val_accuracy")] == [1, 2]
    assert "final_test_accuracy" in tracked.data.metrics
    assert {a.path for a in client.list_artifacts(known["run_id"])} >= {"learning_curves.png", "metrics.json"}
    assert main([*argv[:6], "3", *argv[7:], "--resume"]) == 0  # --epochs 3: one more epoch, same MLflow run
    assert json.loads((run / "mlflow.json").read_text())["run_id"] == known["run_id"]
    assert [m.step for m in client.get_metric_history(known["run_id"], "val_accuracy")] == [1, 2, 3]


def test_an_unreachable_tracking_server_is_one_line_before_training(tiny_data, tmp_path, capsys):
    pytest.importorskip("mlflow")
    code = main(["train", "--arch", "lenet5", "--dataset", "emnist-balanced", "--epochs", "1", "--data-dir",
                 str(tiny_data), "--run-dir", str(tmp_path / "run"), "--mlflow", "http://127.0.0.1:9"])
    assert code == 2 and "cannot track in MLflow at http://127.0.0.1:9" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
