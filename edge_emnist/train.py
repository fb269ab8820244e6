"""Training runs on Keras 3 (JAX, PyTorch or TensorFlow backend): one folder per run, checkpointed every epoch,
resumable, evaluated on test exactly once.

A run folder holds:
    config.json          the resolved configuration (what `--resume` restores)
    history.csv          one row per finished epoch (early-stopping state is derived from it)
    learning_curves.png  train/validation accuracy and loss
    checkpoints/         the last epoch's weights + optimizer state (epoch-NNNN.weights.h5)
    best.weights.h5      weights of the best validation epoch
    last.weights.h5      weights after the last finished epoch
    metrics.json         written at the end: validation and test accuracy, speed, backend, device, data fingerprint

The `.weights.h5` files have the same layout in Keras 3 and tf_keras, so prune, QAT and export (tf_keras) load
a run whichever backend trained it. Nothing here imports TensorFlow unless it is the chosen backend.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_emnist import engine
from edge_emnist.data import Dataset, load_dataset, stratified_split
from edge_emnist.data.augment import Augment
from edge_emnist.data.download import sha256_of
from edge_emnist.data.pipeline import Batches
from edge_emnist.errors import EdgeEmnistError
from edge_emnist.io import atomic_path, folder_lock, save_figure, save_weights
from edge_emnist.models import create_model, model_entry
from edge_emnist.models.profile import trainable_params

HISTORY_FIELDS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")

# Each takes the Keras module first: the model is built by whichever Keras `engine.load_keras` gave.
OPTIMIZERS = {
    "adam": lambda keras, lr, momentum: keras.optimizers.Adam(lr),
    "nadam": lambda keras, lr, momentum: keras.optimizers.Nadam(lr),
    "sgd": lambda keras, lr, momentum: keras.optimizers.SGD(lr, momentum=momentum),
}
# On a validation-loss plateau of 2 epochs, halve the learning rate (down to 1e-5); None: keep it constant.
LR_SCHEDULES = {
    "constant": None,
    "plateau": lambda keras: keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2,
                                                               min_lr=1e-5),
}
INITIALIZERS = {
    "glorot": None,  # Keras' default (glorot_uniform): leave the builders' weights as they are
    "random": lambda keras, seed: keras.initializers.RandomNormal(stddev=0.05, seed=seed),
    "he": lambda keras, seed: keras.initializers.HeNormal(seed=seed),
    "lecun": lambda keras, seed: keras.initializers.LecunNormal(seed=seed),
}
MIXED_PRECISION = ("auto", "on", "off", "bfloat16", "float16")
CHECKPOINT_PATTERN = "epoch-*.weights.h5"


@dataclass
class TrainConfig:
    arch: str
    dataset: str = "emnist-bymerge"
    epochs: int = 70
    batch_size: int = 256
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9  # SGD only: the study's (Table 6's best cell is SGD with momentum 0.9; Keras' default is 0)
    init: str = "glorot"
    patience: int = 10
    seed: int = 0
    val_fraction: float = 0.1
    # Random handwriting variation (data/augment.py): "on" (the measured defaults), "off", a strength
    # ("0.5"), or "rotation_deg=15,elastic_px=0"; config.json keeps the resolved fields (or false).
    augment: bool | str | dict = "on"
    train_limit: int | None = None  # use only the first N (shuffled, stratified) train images: smoke tests
    mixed_precision: str = "auto"  # auto: bfloat16 on a GPU, float32 on a CPU; on (bfloat16); off; bfloat16; float16
    distribute: str = "auto"  # auto: data parallel over 2+ GPUs; none; mirrored (data parallel over every device)
    model_options: dict = field(default_factory=dict)
    lr_schedule: str = "constant"  # constant (the study's); plateau: halve the LR after 2 epochs without val-loss gain

    def validate(self) -> None:
        model_entry(self.arch)
        checks = [
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.init in INITIALIZERS, f"init must be one of {', '.join(INITIALIZERS)}"),
            (self.epochs >= 1, "epochs must be at least 1"),
            (self.batch_size >= 1, "batch size must be at least 1"),
            (math.isfinite(self.lr) and self.lr > 0, f"learning rate must be a positive finite number, got {self.lr}"),
            (math.isfinite(self.momentum) and 0 <= self.momentum < 1,
             f"momentum must be in [0, 1), got {self.momentum}"),
            (self.patience >= 1, "patience must be at least 1"),
            (0 < self.val_fraction < 1, "validation fraction must be between 0 and 1"),  # False for nan too
            (self.mixed_precision in MIXED_PRECISION, f"mixed precision must be one of {', '.join(MIXED_PRECISION)}"),
            (self.distribute in ("auto", "none", "mirrored"), "distribute must be auto, none or mirrored"),
            (self.lr_schedule in LR_SCHEDULES, f"LR schedule must be one of {', '.join(LR_SCHEDULES)}"),
        ]
        for ok, message in checks:
            if not ok:
                raise EdgeEmnistError(message)
        self.augment = resolve_augment(self.augment)


def resolve_augment(spec) -> dict | bool:
    """The Augment fields a run uses (what config.json records), or False for none."""
    try:
        augment = Augment.parse(spec)
    except (TypeError, ValueError) as error:
        raise EdgeEmnistError(str(error)) from None
    return augment.to_dict() if augment else False


def input_batches(images: np.ndarray, labels: np.ndarray, config: TrainConfig, *, train: bool = False,
                  epoch: int = 0, pad_to: int = 1) -> Batches:
    """Batches for fit/evaluate: shuffled and augmented as the run says when `train`, plain otherwise. Plain
    numpy: each engine wraps them (Keras 3's PyDataset here, tf_keras' Sequence in fine-tuning)."""
    augment = Augment.parse(config.augment) if train else None
    return Batches(images, labels, batch_size=config.batch_size, shuffle=train, augment=augment,
                   seed=config.seed, epoch=epoch, pad_to=pad_to)


def default_run_dir(config: TrainConfig, root: Path = Path("runs")) -> Path:
    return root / f"{config.arch}-{config.dataset}-{config.optimizer}-{config.init}-lr{config.lr:g}-s{config.seed}"


def read_history(run_dir: Path) -> list[dict]:
    path = run_dir / "history.csv"
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()} for row in csv.DictReader(f)]


def write_history(run_dir: Path, history: list[dict]) -> None:
    with atomic_path(run_dir / "history.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=HISTORY_FIELDS)
        writer.writeheader()
        writer.writerows(history)


def best_epoch(history: list[dict]) -> dict | None:
    return max(history, key=lambda row: (row["val_accuracy"], -row["epoch"])) if history else None


def should_stop(history: list[dict], patience: int) -> bool:
    best = best_epoch(history)
    return best is not None and history[-1]["epoch"] - best["epoch"] >= patience


def reinitialize(keras, model, init: str, seed: int) -> None:
    """Re-draw conv and dense kernels with the chosen initializer (biases stay zero)."""
    make = INITIALIZERS[init]
    if make is None:
        return
    for i, layer in enumerate(model.layers):
        kernel = getattr(layer, "kernel", None)
        if kernel is not None:
            kernel.assign(make(keras, seed + i)(kernel.shape, dtype=kernel.dtype))


def clock(seconds: float) -> str:
    """'4:07', or '1:02:09' past an hour: for progress lines."""
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"{minutes}:{secs:02d}"


def epoch_line(row: dict, config: TrainConfig, elapsed: float, history: list[dict]) -> str:
    """One line per epoch: metrics, time, and an upper bound on what is left (early stopping may end it sooner)."""
    mean = float(np.mean([r["seconds"] for r in history[-5:]]))
    left = max(config.epochs - row["epoch"], 0) * mean
    return (f"epoch {row['epoch']}/{config.epochs}  loss {row['loss']:.4f}  acc {row['accuracy']:.4f}  "
            f"val_loss {row['val_loss']:.4f}  val_acc {row['val_accuracy']:.4f}  lr {row['lr']:.2g}  "
            f"{row['seconds']:.1f} s  elapsed {clock(elapsed)}  ETA <= {clock(left)}")


def latest_checkpoint(run_dir: Path) -> tuple[Path | None, int]:
    """(file, epoch) of the newest resumable checkpoint, or (None, 0)."""
    found = sorted((run_dir / "checkpoints").glob(CHECKPOINT_PATTERN))
    if not found:
        return None, 0
    return found[-1], int(found[-1].name.split("-")[1].split(".")[0])


def save_checkpoint(model, run_dir: Path, epoch: int) -> Path:
    """Weights and optimizer state after `epoch`, atomically; the previous checkpoint goes once this one is whole."""
    folder = run_dir / "checkpoints"
    folder.mkdir(exist_ok=True)
    path = folder / f"epoch-{epoch:04d}.weights.h5"
    with atomic_path(path) as tmp:
        model.save_weights(str(tmp))  # a compiled model saves its optimizer's variables too
    for old in folder.glob(CHECKPOINT_PATTERN):
        if old != path:
            old.unlink()
    return path


def restore_checkpoint(model, path: Path) -> None:
    model.optimizer.build(model.trainable_variables)  # the optimizer's slots must exist to be loaded into
    model.load_weights(str(path))


def make_epoch_callback(keras, run_dir: Path, history: list[dict], config: TrainConfig, verbose: int,
                        started: float):
    """After every epoch: append history, save last/best weights and the resumable checkpoint, print one line."""

    class EpochCheckpoint(keras.callbacks.Callback):
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
            if best_epoch(history) is row:
                save_weights(self.model, run_dir / "best.weights.h5")
            save_weights(self.model, run_dir / "last.weights.h5")
            # The history before the checkpoint: a crash between the two leaves a row past the checkpoint, which
            # --resume drops as it re-runs that epoch (the other order lost the epoch's row for good).
            write_history(run_dir, history)
            save_checkpoint(self.model, run_dir, epoch + 1)
            if _can_plot():  # a bare GPU machine may lack matplotlib: `train --resume` of the run draws them later
                plot_learning_curves(history, run_dir / "learning_curves.png", title=run_dir.name)
            if verbose:
                print(epoch_line(row, config, time.perf_counter() - started, history), flush=True)
            if should_stop(history, config.patience):
                self.model.stop_training = True

    return EpochCheckpoint()


def _can_plot() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def plot_learning_curves(history: list[dict], output: Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in history]
    fig, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=100)
    for ax, key, label in [(acc_ax, "accuracy", "accuracy"), (loss_ax, "loss", "loss")]:
        ax.plot(epochs, [r[key] for r in history], "o-", ms=3, label=f"train {label}")
        ax.plot(epochs, [r[f"val_{key}"] for r in history], "s-", ms=3, label=f"validation {label}")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 1.25 on short runs
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(frameon=False)
    best = best_epoch(history)
    if best:
        acc_ax.axvline(best["epoch"], color="grey", ls=":", lw=1)
        acc_ax.set_title(f"best validation accuracy {best['val_accuracy']:.4f} (epoch {best['epoch']})", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, output)


def _prepare_run_dir(config: TrainConfig, run_dir: Path, resume: bool) -> TrainConfig:
    config_path = run_dir / "config.json"
    if config_path.exists():
        if not resume:
            raise EdgeEmnistError(f"{run_dir} already holds a run; pass --resume to continue it, "
                                  "or choose another --run-dir")
        saved = TrainConfig(**json.loads(config_path.read_text()))
        saved.epochs = config.epochs  # a resume may train for longer,
        if config.lr_schedule != "constant":  # and may switch on a schedule (never silently off)
            saved.lr_schedule = config.lr_schedule
        return saved
    run_dir.mkdir(parents=True, exist_ok=True)
    return config


def _save_config(config: TrainConfig, run_dir: Path) -> None:
    with atomic_path(run_dir / "config.json") as tmp:
        tmp.write_text(json.dumps(dataclasses.asdict(config), indent=2) + "\n")


def training_split(config: TrainConfig, data: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The run's train and validation images: the same stratified, seeded split every time it is asked for."""
    train_idx, val_idx = stratified_split(data.train.labels, config.val_fraction, config.seed)
    if config.train_limit:
        rng = np.random.default_rng(config.seed)
        train_idx = np.sort(rng.permutation(train_idx)[: config.train_limit])
        val_idx = np.sort(rng.permutation(val_idx)[: max(config.train_limit // 5, 1)])
    return (data.train.images[train_idx], data.train.labels[train_idx],
            data.train.images[val_idx], data.train.labels[val_idx])


def calibration_sample(config: TrainConfig, x_train: np.ndarray, count: int) -> np.ndarray:
    """A seeded sample of `count` train images as model input (NHWC floats in [0, 1]): what calibrates
    post-training int8 and the starting activation ranges of QAT."""
    picks = np.random.default_rng(config.seed).choice(len(x_train), size=min(count, len(x_train)), replace=False)
    return x_train[np.sort(picks)][..., None].astype(np.float32) / 255.0


def load_trained_model(config: TrainConfig, num_classes: int, weights: Path, keras=None):
    """Rebuild a run's architecture and load its weights, compiled for evaluation (tf_keras unless `keras`)."""
    model = create_model(config.arch, num_classes, keras=keras, **config.model_options)
    model.load_weights(str(weights))
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def default_workers() -> int:
    """Threads making (augmenting) batches ahead of the training step: half the cores, at least 1, at most 8."""
    return max(1, min(8, (os.cpu_count() or 2) // 2))


def train(config: TrainConfig, run_dir: Path | None = None, *, resume: bool = False,
          data_dir: str | Path | None = None, cache_dir: str | Path | None = None, verbose: int | None = None,
          backend: str | None = None, workers: int | None = None) -> dict:
    """Train (or resume) one run on Keras 3; returns the metrics also written to metrics.json.

    `backend`: jax, torch or tensorflow (default: `engine.choose_backend`). A run may be resumed on another
    backend or machine."""
    config.validate()
    run_dir = Path(run_dir or default_run_dir(config))
    if resume and not run_dir.exists():
        raise EdgeEmnistError(f"nothing to resume in {run_dir}: it does not exist")
    backend = engine.choose_backend(backend)
    created = not run_dir.exists()
    try:
        with folder_lock(run_dir):  # a second `train` into the same folder says who holds it
            return _train(config, run_dir, resume, data_dir, cache_dir, 1 if verbose is None else verbose, backend,
                          workers or default_workers())
    except BaseException:
        if created and not (run_dir / "history.csv").exists():  # nothing trained: leave no folder behind
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def check_finite(row: dict, stage: str = "training") -> None:
    """A NaN or infinite loss means the weights are lost: stop with the reason rather than save them."""
    bad = [f"{key} {row[key]}" for key in ("loss", "val_loss") if key in row and not math.isfinite(row[key])]
    if bad:
        raise EdgeEmnistError(f"{stage} diverged in epoch {row['epoch']} ({', '.join(bad)}): nothing of that epoch "
                              "was saved; try a lower --lr")


def _train(config: TrainConfig, run_dir: Path, resume: bool, data_dir, cache_dir, verbose: int, backend: str,
           workers: int) -> dict:
    config = _prepare_run_dir(config, run_dir, resume)
    history = read_history(run_dir)
    if (run_dir / "metrics.json").exists() and history and (
            history[-1]["epoch"] >= config.epochs or should_stop(history, config.patience)):
        if not (run_dir / "learning_curves.png").exists() and _can_plot():  # trained where matplotlib was missing
            plot_learning_curves(history, run_dir / "learning_curves.png", title=run_dir.name)
        return json.loads((run_dir / "metrics.json").read_text())  # finished: nothing more to do

    keras = engine.load_keras(backend)
    keras.utils.set_random_seed(config.seed)
    policy = engine.precision_policy(config.mixed_precision, backend)
    keras.mixed_precision.set_global_policy(policy)
    try:
        data = load_dataset(config.dataset, data_dir, cache_dir)
        x_train, y_train, x_val, y_val = training_split(config, data)
        scope, replicas = engine.distribution(keras, backend, config.distribute)
        pad_to = engine.batch_multiple(backend, replicas)
        if config.batch_size % pad_to:
            raise EdgeEmnistError(f"batch size {config.batch_size} does not split over {replicas} devices: "
                                  f"use a multiple of {replicas}")
        started = time.perf_counter()
        with scope:
            model = create_model(config.arch, data.spec.num_classes, keras=keras, **config.model_options)
            reinitialize(keras, model, config.init, config.seed)
            model.compile(optimizer=OPTIMIZERS[config.optimizer](keras, config.lr, config.momentum),
                          loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                          jit_compile=engine.jit_compile(backend))
            initial_epoch = _resume_state(model, run_dir, history, resume)
            _save_config(config, run_dir)
            callbacks = [make_epoch_callback(keras, run_dir, history, config, verbose, started)]
            if LR_SCHEDULES[config.lr_schedule]:  # after the checkpoint callback, which logs the epoch's own LR
                callbacks.append(LR_SCHEDULES[config.lr_schedule](keras))
            if initial_epoch < config.epochs and not should_stop(history, config.patience):
                if verbose:
                    devices = ", ".join(engine.accelerators(backend)) or "CPU"
                    print(f"training {config.arch} on {config.dataset} with Keras {keras.__version__} on {backend} "
                          f"({devices}, {policy}, {replicas} replica{'s' * (replicas > 1)}), "
                          f"epochs {initial_epoch + 1}-{config.epochs}, patience {config.patience} -> {run_dir}",
                          flush=True)
                train_batches = input_batches(x_train, y_train, config, train=True, epoch=initial_epoch, pad_to=pad_to)
                val_batches = input_batches(x_val, y_val, config, pad_to=pad_to)
                model.fit(engine.batches_for_keras(keras, train_batches, workers),
                          validation_data=engine.batches_for_keras(keras, val_batches),
                          epochs=config.epochs, initial_epoch=initial_epoch, callbacks=callbacks, verbose=0,
                          shuffle=False)
    finally:
        keras.mixed_precision.set_global_policy("float32")

    # Model selection used validation only; test is evaluated once, here, with the best weights, on a plain
    # float32 (undistributed) copy of the model: what export will load too.
    model = load_trained_model(config, data.spec.num_classes, run_dir / "best.weights.h5", keras=keras)
    test_loss, test_accuracy = model.evaluate(
        engine.batches_for_keras(keras, input_batches(data.test.images, data.test.labels, config)), verbose=0)
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
        "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss),
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
        "device": engine.device_description(keras, backend),
        "data": data.provenance.to_dict(),
        "best_weights_sha256": sha256_of(run_dir / "best.weights.h5"),
    }
    with atomic_path(run_dir / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    if verbose:
        print(f"done: {history[-1]['epoch']} epochs in {clock(sum(r['seconds'] for r in history))}, best validation "
              f"{best['val_accuracy']:.4f} (epoch {best['epoch']}), test {test_accuracy:.4f}", flush=True)
    return metrics


def _resume_state(model, run_dir: Path, history: list[dict], resume: bool) -> int:
    """Load the newest checkpoint into the compiled model; drop history rows past it; return the epoch to start at.
    A run from before the Keras 3 engine (no epoch-N checkpoint) continues from last.weights.h5 with a fresh
    optimizer."""
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
    if epoch:
        print(f"resuming {run_dir} after epoch {epoch}", file=sys.stderr)
    return epoch
