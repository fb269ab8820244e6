"""The training loop: one run on Keras 3 (JAX, PyTorch or TensorFlow backend), checkpointed every epoch,
resumable, evaluated on test exactly once. The run's schema and folder are runs.py's; this is the loop.

Nothing here imports TensorFlow unless it is the chosen backend.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from edge_emnist import distill, keras3
from edge_emnist.data import load_dataset
from edge_emnist.device.files import sha256_file
from edge_emnist.errors import EdgeEmnistError
from edge_emnist.io import atomic_path, folder_lock, save_weights
from edge_emnist.keras3 import INITIALIZERS, LR_SCHEDULES, OPTIMIZERS
from edge_emnist.models import create_model, model_entry
from edge_emnist.models.cost import trainable_params
from edge_emnist.progress import clock
from edge_emnist.runs import (  # noqa: F401  (TrainConfig: the schema, imported from here by callers of train)
    TrainConfig,
    best_epoch,
    can_plot,
    check_finite,
    default_run_dir,
    input_batches,
    latest_checkpoint,
    load_trained_model,
    plot_learning_curves,
    prepare_run_dir,
    read_history,
    restore_checkpoint,
    save_checkpoint,
    save_config,
    should_stop,
    training_split,
    write_history,
)
from edge_emnist.tensorboard_log import epoch_scalars, open_log


def reinitialize(keras, model, init: str, seed: int) -> None:
    """Re-draw conv and dense kernels with the chosen initializer (biases stay zero)."""
    make = INITIALIZERS[init]
    if make is None:
        return
    for i, layer in enumerate(model.layers):
        kernel = getattr(layer, "kernel", None)
        if kernel is not None:
            kernel.assign(make(keras, seed + i)(kernel.shape, dtype=kernel.dtype))


def epoch_line(row: dict, config: TrainConfig, elapsed: float, history: list[dict]) -> str:
    """One line per epoch: metrics, time, and an upper bound on what is left (early stopping may end it sooner)."""
    mean = float(np.mean([r["seconds"] for r in history[-5:]]))
    left = max(config.epochs - row["epoch"], 0) * mean
    return (f"epoch {row['epoch']}/{config.epochs}  loss {row['loss']:.4f}  acc {row['accuracy']:.4f}  "
            f"val_loss {row['val_loss']:.4f}  val_acc {row['val_accuracy']:.4f}  lr {row['lr']:.2g}  "
            f"{row['seconds']:.1f} s  elapsed {clock(elapsed)}  ETA <= {clock(left)}")


def make_epoch_callback(keras, run_dir: Path, history: list[dict], config: TrainConfig, verbose: int,
                        started: float, student=None, tracker=None):
    """After every epoch: append history, save last/best weights and the resumable checkpoint, print one line.
    `student`: the model whose weights the run keeps when fit trains a wrapper around it (distillation)."""

    class EpochCheckpoint(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.scalars = open_log(run_dir)  # tensorboard --logdir runs/

        def on_train_end(self, logs=None):
            if self.scalars:
                self.scalars.close()

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            lr = self.model.optimizer.learning_rate
            row = {
                "epoch": epoch + 1,
                "loss": float(logs["loss"]), "accuracy": float(logs["accuracy"]),
                "val_loss": float(logs["val_loss"]), "val_accuracy": float(logs["val_accuracy"]),
                "lr": float(keras.ops.convert_to_numpy(lr)),
                "seconds": time.perf_counter() - self.epoch_started,
            }
            check_finite(row)
            history.append(row)
            kept = student or self.model
            if best_epoch(history) is row:
                save_weights(kept, run_dir / "best.weights.h5")
            save_weights(kept, run_dir / "last.weights.h5")
            # The history before the checkpoint: a crash between the two leaves a row past the checkpoint, which
            # --resume drops as it re-runs that epoch (the other order lost the epoch's row for good).
            write_history(run_dir, history)
            save_checkpoint(self.model, run_dir, epoch + 1)
            if self.scalars:
                self.scalars.add(row["epoch"], epoch_scalars(row))
            if tracker:
                tracker.metrics({k: v for k, v in row.items() if k != "epoch"}, step=row["epoch"])
            if can_plot():  # a bare GPU machine may lack matplotlib: `train --resume` of the run draws them later
                plot_learning_curves(history, run_dir / "learning_curves.png", title=run_dir.name)
            if verbose:
                print(epoch_line(row, config, time.perf_counter() - started, history), flush=True)
            if should_stop(history, config.patience):
                self.model.stop_training = True

    return EpochCheckpoint()


def default_workers() -> int:
    """Threads making (augmenting) batches ahead of the training step: half the cores, at least 1, at most 8."""
    return max(1, min(8, (os.cpu_count() or 2) // 2))


def train(config: TrainConfig, run_dir: Path | None = None, *, resume: bool = False,
          data_dir: str | Path | None = None, cache_dir: str | Path | None = None, verbose: int | None = None,
          backend: str | None = None, workers: int | None = None, evaluate_test: bool = True,
          tracking: str | None = None) -> dict:
    """Train (or resume) one run on Keras 3; returns the metrics also written to metrics.json.

    `backend`: jax, torch or tensorflow (default: `keras3.choose_backend`). A run may be resumed on another
    backend or machine. `evaluate_test=False` leaves the test split untouched (a search selects on validation;
    only its winners are ever scored on test): the metrics then have no test figures. `tracking`: an MLflow URI or
    folder (tracking.py) that also gets the parameters, every epoch's metrics and the curves."""
    config.validate()
    if model_entry(config.arch).imported:
        raise EdgeEmnistError(f"{config.arch} models are trained elsewhere: `edge-emnist export FILE --dataset NAME` "
                              "imports one")
    run_dir = Path(run_dir or default_run_dir(config))
    if resume and not run_dir.exists():
        raise EdgeEmnistError(f"nothing to resume in {run_dir}: it does not exist")
    backend = keras3.choose_backend(backend)
    created = not run_dir.exists()
    try:
        with folder_lock(run_dir):  # a second `train` into the same folder says who holds it
            return _train(config, run_dir, resume, data_dir, cache_dir, 1 if verbose is None else verbose, backend,
                          workers or default_workers(), evaluate_test, tracking)
    except BaseException:
        if created and not (run_dir / "history.csv").exists():  # nothing trained: leave no folder behind
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _train(config: TrainConfig, run_dir: Path, resume: bool, data_dir, cache_dir, verbose: int, backend: str,
           workers: int, evaluate_test: bool = True, tracking: str | None = None) -> dict:
    config = prepare_run_dir(config, run_dir, resume)
    history = read_history(run_dir)
    if (run_dir / "metrics.json").exists() and history and (
            history[-1]["epoch"] >= config.epochs or should_stop(history, config.patience)):
        if not (run_dir / "learning_curves.png").exists() and can_plot():  # trained where matplotlib was missing
            plot_learning_curves(history, run_dir / "learning_curves.png", title=run_dir.name)
        return json.loads((run_dir / "metrics.json").read_text())  # finished: nothing more to do

    tracker = None
    if tracking:  # before any work: an unreachable tracking server is one line, not a lost training
        from edge_emnist.tracking import Tracker

        tracker = Tracker(tracking, run_dir)
        tracker.params({**dataclasses.asdict(config), "backend": backend})
    keras = keras3.load_keras(backend)
    keras.utils.set_random_seed(config.seed)
    policy = keras3.precision_policy(config.mixed_precision, backend)
    keras.mixed_precision.set_global_policy(policy)
    try:
        data = load_dataset(config.dataset, data_dir, cache_dir)
        x_train, y_train, x_val, y_val = training_split(config, data)
        scope, replicas = keras3.distribution(keras, backend, config.distribute)
        pad_to = keras3.batch_multiple(backend, replicas)
        if config.batch_size % pad_to:
            raise EdgeEmnistError(f"batch size {config.batch_size} does not split over {replicas} devices: "
                                  f"use a multiple of {replicas}")
        started = time.perf_counter()
        with scope:
            model = create_model(config.arch, data.spec.num_classes, keras=keras, **config.model_options)
            reinitialize(keras, model, config.init, config.seed)
            fitted, loss, metric = model, "sparse_categorical_crossentropy", "accuracy"
            if config.distill:  # fit trains the student inside a wrapper that also runs the teachers
                teachers = distill.teacher_models(keras, distill.recorded_teachers(config.distill),
                                                  data.spec.num_classes)
                fitted, loss, metric = distill.distiller(keras, model, teachers, data.spec.num_classes,
                                                         config.distill)
            fitted.compile(optimizer=OPTIMIZERS[config.optimizer](keras, config.lr, config.momentum),
                           loss=loss, metrics=[metric], jit_compile=keras3.jit_compile(backend))
            initial_epoch = _resume_state(fitted, run_dir, history, resume, kept=model)
            save_config(config, run_dir)
            callbacks = [make_epoch_callback(keras, run_dir, history, config, verbose, started, student=model,
                                             tracker=tracker)]
            if LR_SCHEDULES[config.lr_schedule]:  # after the checkpoint callback, which logs the epoch's own LR
                callbacks.append(LR_SCHEDULES[config.lr_schedule](keras, config.lr, config.epochs))
            if initial_epoch < config.epochs and not should_stop(history, config.patience):
                if verbose:
                    devices = ", ".join(keras3.accelerators(backend)) or "CPU"
                    taught = (f" distilled from {len(config.distill['teachers'])} teacher(s) at T "
                              f"{config.distill['temperature']:g}" if config.distill else "")
                    print(f"training {config.arch}{taught} on {config.dataset} with Keras {keras.__version__} on "
                          f"{backend} "
                          f"({devices}, {policy}, {replicas} replica{'s' * (replicas > 1)}), "
                          f"epochs {initial_epoch + 1}-{config.epochs}, patience {config.patience} -> {run_dir}",
                          flush=True)
                train_batches = input_batches(x_train, y_train, config, train=True, epoch=initial_epoch, pad_to=pad_to)
                val_batches = input_batches(x_val, y_val, config, pad_to=pad_to)
                fitted.fit(keras3.batches_for_keras(keras, train_batches, workers),
                          validation_data=keras3.batches_for_keras(keras, val_batches),
                          epochs=config.epochs, initial_epoch=initial_epoch, callbacks=callbacks, verbose=0,
                          shuffle=False)
    finally:
        keras.mixed_precision.set_global_policy("float32")

    # Model selection used validation only; test is evaluated once, here, with the best weights, on a plain
    # float32 (undistributed) copy of the model: what export will load too.
    model = load_trained_model(config, data.spec.num_classes, run_dir / "best.weights.h5", keras=keras)
    test_loss, test_accuracy = model.evaluate(
        keras3.batches_for_keras(keras, input_batches(data.test.images, data.test.labels, config)),
        verbose=0) if evaluate_test else (None, None)
    best = best_epoch(history)
    steps_per_epoch = math.ceil(len(y_train) / config.batch_size)
    seconds_per_epoch = float(np.mean([r["seconds"] for r in history]))
    metrics = {
        "arch": config.arch,
        "dataset": config.dataset,
        "val_accuracy": best["val_accuracy"],
        "best_epoch": best["epoch"],
        "epochs_run": history[-1]["epoch"],
        "stopped_early": should_stop(history, config.patience),
        "test_accuracy": float(test_accuracy) if evaluate_test else None,
        "test_loss": float(test_loss) if evaluate_test else None,
        "trainable_params": trainable_params(model),
        "total_params": int(model.count_params()),
        "seconds_per_epoch": seconds_per_epoch,
        "ms_per_step": 1000 * seconds_per_epoch / steps_per_epoch,
        "images_per_s": len(y_train) / seconds_per_epoch,
        "train_images": int(len(y_train)),
        "val_images": int(len(y_val)),
        "test_images": int(len(data.test)),
        "mixed_precision": policy != "float32",
        "precision": policy,
        "replicas": replicas,
        "augment": config.augment,
        "backend": backend,
        "engine": f"keras {keras.__version__}",
        "device": keras3.device_description(keras, backend),
        "data": data.provenance.to_dict(),
        "best_weights_sha256": sha256_file(run_dir / "best.weights.h5"),
    }
    with atomic_path(run_dir / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    if tracker:
        tracker.metrics({f"final_{key}": metrics[key] for key in ("val_accuracy", "test_accuracy", "test_loss",
                                                                   "trainable_params", "images_per_s")
                         if metrics.get(key) is not None})
        for name in ("learning_curves.png", "metrics.json", "config.json"):
            tracker.artifact(run_dir / name)
        tracker.close()
    if verbose:
        print(f"done: {history[-1]['epoch']} epochs in {clock(sum(r['seconds'] for r in history))}, best validation "
              f"{best['val_accuracy']:.4f} (epoch {best['epoch']})"
              + (f", test {test_accuracy:.4f}" if evaluate_test else ", test not evaluated"), flush=True)
    return metrics


def _resume_state(model, run_dir: Path, history: list[dict], resume: bool, kept) -> int:
    """Load the newest checkpoint into the compiled model; drop history rows past it; return the epoch to start at.
    A run from before the Keras 3 engine (no epoch-N checkpoint) continues from last.weights.h5 with a fresh
    optimizer. A folder carried to another machine with only its checkpoint, history and config (the smallest that
    resumes: benchmarks/custom_resnet_converge.sh commits one) gets its best.weights.h5 back from the checkpoint when
    the checkpoint's epoch is the best one; `kept`: the model whose weights the run keeps (the student)."""
    if not resume:
        return 0
    path, epoch = latest_checkpoint(run_dir)
    if path is not None:
        restore_checkpoint(model, path)
    elif history and (run_dir / "last.weights.h5").exists():
        model.load_weights(str(run_dir / "last.weights.h5"))
        epoch = history[-1]["epoch"]
        print(f"{run_dir} has no Keras 3 checkpoint: continuing from last.weights.h5 with a fresh optimizer",
              file=sys.stderr)
    history[:] = [row for row in history if row["epoch"] <= epoch]
    if path is not None:
        _restore_best(kept, run_dir, history, epoch)
    if epoch:
        print(f"resuming {run_dir} after epoch {epoch}", file=sys.stderr)
    return epoch


def _restore_best(kept, run_dir: Path, history: list[dict], epoch: int) -> None:
    """best.weights.h5 for a folder that came without it, from the checkpoint just restored; an error where the best
    epoch is an earlier one (its weights are gone, and training on would keep a worse model as the best)."""
    best = best_epoch(history)
    if best is None or (run_dir / "best.weights.h5").exists():
        return
    if best["epoch"] != epoch:
        raise EdgeEmnistError(f"{run_dir} has no best.weights.h5 and its best epoch ({best['epoch']}) is not its "
                              f"checkpoint's ({epoch}): copy the whole run folder")
    save_weights(kept, run_dir / "best.weights.h5")
