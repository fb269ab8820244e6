"""Training runs: one folder per run, checkpointed every epoch, resumable, evaluated on test exactly once.

A run folder holds:
    config.json          the resolved configuration (what `--resume` restores)
    history.csv          one row per finished epoch (early-stopping state is derived from it)
    learning_curves.png  train/validation accuracy and loss
    checkpoints/         the last epoch's model + optimizer state (tf.train.Checkpoint)
    best.weights.h5      weights of the best validation epoch
    last.weights.h5      weights after the last finished epoch
    metrics.json         written at the end: validation and test accuracy, speed, device, data fingerprint
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_emnist.backend import KerasBatches, keras, tf
from edge_emnist.data import Dataset, load_dataset, stratified_split
from edge_emnist.data.augment import Augment
from edge_emnist.data.download import sha256_of
from edge_emnist.data.pipeline import Batches
from edge_emnist.errors import EdgeEmnistError
from edge_emnist.io import atomic_path, folder_lock, save_figure, save_weights
from edge_emnist.models import create_model, model_entry
from edge_emnist.models.profile import trainable_params

HISTORY_FIELDS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")

OPTIMIZERS = {
    "adam": lambda lr, momentum: keras.optimizers.Adam(lr),
    "nadam": lambda lr, momentum: keras.optimizers.Nadam(lr),
    "sgd": lambda lr, momentum: keras.optimizers.SGD(lr, momentum=momentum),
}
# On a validation-loss plateau of 2 epochs, halve the learning rate (down to 1e-5); None: keep it constant.
LR_SCHEDULES = {
    "constant": None,
    "plateau": lambda: keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, min_lr=1e-5),
}
INITIALIZERS = {
    "glorot": None,  # Keras' default (glorot_uniform): leave the builders' weights as they are
    "random": lambda seed: keras.initializers.RandomNormal(stddev=0.05, seed=seed),
    "he": lambda seed: keras.initializers.HeNormal(seed=seed),
    "lecun": lambda seed: keras.initializers.LecunNormal(seed=seed),
}


@dataclass
class TrainConfig:
    arch: str
    dataset: str = "emnist-bymerge"
    epochs: int = 70
    batch_size: int = 256
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    init: str = "glorot"
    patience: int = 10
    seed: int = 0
    val_fraction: float = 0.1
    # Random handwriting variation (data/augment.py): "on" (the measured defaults), "off", a strength
    # ("0.5"), or "rotation_deg=15,elastic_px=0"; config.json keeps the resolved fields (or false).
    augment: bool | str | dict = "on"
    train_limit: int | None = None  # use only the first N (shuffled, stratified) train images: smoke tests
    mixed_precision: str = "auto"  # auto: on when a GPU is visible
    distribute: str = "auto"  # auto: MirroredStrategy with 2+ GPUs; none; mirrored
    model_options: dict = field(default_factory=dict)
    lr_schedule: str = "constant"  # constant (the study's); plateau: halve the LR after 2 epochs without val-loss gain

    def validate(self) -> None:
        model_entry(self.arch)
        checks = [
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.init in INITIALIZERS, f"init must be one of {', '.join(INITIALIZERS)}"),
            (self.epochs >= 1, "epochs must be at least 1"),
            (self.batch_size >= 1, "batch size must be at least 1"),
            (self.lr > 0, "learning rate must be positive"),
            (self.patience >= 1, "patience must be at least 1"),
            (0 < self.val_fraction < 1, "validation fraction must be between 0 and 1"),
            (self.mixed_precision in ("auto", "on", "off"), "mixed precision must be auto, on or off"),
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


def keras_batches(images: np.ndarray, labels: np.ndarray, config: TrainConfig, *, train: bool = False,
                  epoch: int = 0) -> KerasBatches:
    """Batches for model.fit/evaluate: shuffled and augmented as the run says when `train`, plain otherwise."""
    augment = Augment.parse(config.augment) if train else None
    return KerasBatches(Batches(images, labels, batch_size=config.batch_size, shuffle=train, augment=augment,
                                seed=config.seed, epoch=epoch))


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


def device_description() -> dict:
    gpus = tf.config.list_physical_devices("GPU")
    names = [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus]
    return {
        "gpus": names,
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "platform": platform.platform(),
    }


def strategy_for(config: TrainConfig) -> tf.distribute.Strategy:
    gpus = tf.config.list_logical_devices("GPU")
    devices = gpus or tf.config.list_logical_devices("CPU")
    if config.distribute == "mirrored" or (config.distribute == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    return tf.distribute.get_strategy()


def reinitialize(model, init: str, seed: int) -> None:
    """Re-draw conv and dense kernels with the chosen initializer (biases stay zero)."""
    make = INITIALIZERS[init]
    if make is None:
        return
    for i, layer in enumerate(model.layers):
        kernel = getattr(layer, "kernel", None)
        if kernel is not None:
            kernel.assign(make(seed + i)(kernel.shape, dtype=kernel.dtype))


class EpochCheckpoint(keras.callbacks.Callback):
    """After every epoch: append history, save last/best weights and the resumable checkpoint."""

    def __init__(self, run_dir: Path, history: list[dict], checkpoint: tf.train.CheckpointManager,
                 epoch_var: tf.Variable, config: TrainConfig):
        super().__init__()
        self.run_dir, self.history, self.manager, self.epoch_var, self.config = (
            run_dir, history, checkpoint, epoch_var, config)
        self.started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        lr = self.model.optimizer.learning_rate
        row = {
            "epoch": epoch + 1,
            "loss": float(logs["loss"]), "accuracy": float(logs["accuracy"]),
            "val_loss": float(logs["val_loss"]), "val_accuracy": float(logs["val_accuracy"]),
            "lr": float(lr.numpy() if hasattr(lr, "numpy") else lr),
            "seconds": time.perf_counter() - self.started,
        }
        self.history.append(row)
        if best_epoch(self.history) is row:
            save_weights(self.model, self.run_dir / "best.weights.h5")
        save_weights(self.model, self.run_dir / "last.weights.h5")
        # The history before the checkpoint: a crash between the two leaves a row past the checkpoint, which
        # --resume drops as it re-runs that epoch (the other order lost the epoch's row for good).
        write_history(self.run_dir, self.history)
        self.epoch_var.assign(epoch + 1)
        self.manager.save(checkpoint_number=epoch + 1)
        plot_learning_curves(self.history, self.run_dir / "learning_curves.png", title=self.run_dir.name)
        if should_stop(self.history, self.config.patience):
            self.model.stop_training = True


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


def load_trained_model(config: TrainConfig, num_classes: int, weights: Path):
    """Rebuild a run's architecture and load its weights, compiled for evaluation."""
    model = create_model(config.arch, num_classes, **config.model_options)
    model.load_weights(str(weights))
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def train(config: TrainConfig, run_dir: Path | None = None, *, resume: bool = False,
          data_dir: str | Path | None = None, cache_dir: str | Path | None = None, verbose: int | None = None) -> dict:
    """Train (or resume) one run; returns the metrics also written to metrics.json."""
    config.validate()
    run_dir = Path(run_dir or default_run_dir(config))
    if resume and not run_dir.exists():
        raise EdgeEmnistError(f"nothing to resume in {run_dir}: it does not exist")
    with folder_lock(run_dir):  # a second `train` into the same folder says who holds it
        return _train(config, run_dir, resume, data_dir, cache_dir, verbose)


def _train(config: TrainConfig, run_dir: Path, resume: bool, data_dir, cache_dir, verbose: int | None) -> dict:
    config = _prepare_run_dir(config, run_dir, resume)
    history = read_history(run_dir)
    if (run_dir / "metrics.json").exists() and history and (
            history[-1]["epoch"] >= config.epochs or should_stop(history, config.patience)):
        return json.loads((run_dir / "metrics.json").read_text())  # finished: nothing to do

    keras.utils.set_random_seed(config.seed)
    gpus = tf.config.list_physical_devices("GPU")
    mixed = config.mixed_precision == "on" or (config.mixed_precision == "auto" and bool(gpus))
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")

    data = load_dataset(config.dataset, data_dir, cache_dir)
    x_train, y_train, x_val, y_val = training_split(config, data)

    strategy = strategy_for(config)
    replicas = strategy.num_replicas_in_sync
    with strategy.scope():
        model = create_model(config.arch, data.spec.num_classes, **config.model_options)
        reinitialize(model, config.init, config.seed)
        optimizer = OPTIMIZERS[config.optimizer](config.lr, config.momentum)
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer, epoch=epoch_var)
    manager = tf.train.CheckpointManager(checkpoint, str(run_dir / "checkpoints"), max_to_keep=1)
    if resume and manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).expect_partial()
        history = [row for row in history if row["epoch"] <= int(epoch_var.numpy())]
        print(f"resuming {run_dir} after epoch {int(epoch_var.numpy())}", file=sys.stderr)
    _save_config(config, run_dir)

    initial_epoch = int(epoch_var.numpy())
    train_ds = keras_batches(x_train, y_train, config, train=True, epoch=initial_epoch)
    val_ds = keras_batches(x_val, y_val, config)
    callbacks = [EpochCheckpoint(run_dir, history, manager, epoch_var, config)]  # first: logs the epoch's own LR
    if LR_SCHEDULES[config.lr_schedule]:
        callbacks.append(LR_SCHEDULES[config.lr_schedule]())
    if verbose is None:
        verbose = 2  # one line per epoch: Keras' per-batch bar guesses "ETA 52:07" from step 1
    if initial_epoch < config.epochs and not should_stop(history, config.patience):
        model.fit(train_ds, validation_data=val_ds, epochs=config.epochs, initial_epoch=initial_epoch,
                  callbacks=callbacks, verbose=verbose, shuffle=False)

    # Model selection used validation only; test is evaluated once, here, with the best weights, on a plain
    # (undistributed) copy of the model: what export will load too.
    model = load_trained_model(config, data.spec.num_classes, run_dir / "best.weights.h5")
    test_loss, test_accuracy = model.evaluate(keras_batches(data.test.images, data.test.labels, config), verbose=0)
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
        "mixed_precision": mixed,
        "replicas": replicas,
        "augment": config.augment,
        "device": device_description(),
        "data": data.provenance.to_dict(),
        "best_weights_sha256": sha256_of(run_dir / "best.weights.h5"),
    }
    with atomic_path(run_dir / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
