"""A run: its schema (TrainConfig), its folder (config, history, checkpoints, curves, metrics) and the split
helpers every stage that starts from a run uses (train, prune/QAT fine-tuning, export).

A run folder holds:
    config.json          the resolved configuration (what `--resume` restores)
    history.csv          one row per finished epoch (early-stopping state is derived from it)
    learning_curves.png  train/validation accuracy and loss
    tensorboard/         the same per epoch as TensorBoard scalars (`tensorboard --logdir runs/`)
    checkpoints/         the last epoch's weights + optimizer state (epoch-NNNN.weights.h5)
    best.weights.h5      weights of the best validation epoch
    last.weights.h5      weights after the last finished epoch
    metrics.json         written at the end: validation and test accuracy, speed, backend, device, data fingerprint
    optimization.json    (a run made by `prune`/`qat`) what was done, so the model is rebuilt with its wrappers

The `.weights.h5` files have the same layout in Keras 3 and tf_keras, so prune, QAT and export (tf_keras) load
a run whichever backend trained it. Nothing here imports Keras or TensorFlow.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

import numpy as np

from edge_emnist.data import Dataset, stratified_split
from edge_emnist.data.augment import Augment
from edge_emnist.data.batches import Batches
from edge_emnist.data.registry import DATASETS, DEFAULT_DATASET
from edge_emnist.errors import EdgeEmnistError
from edge_emnist.io import atomic_path, save_figure
from edge_emnist.keras3 import DISTRIBUTE, INITIALIZERS, LR_SCHEDULES, MIXED_PRECISION, OPTIMIZERS
from edge_emnist.models import create_model, list_models, model_entry, shape_tag
from edge_emnist.options import fraction, option, positive_float, positive_int

HISTORY_FIELDS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")


CHECKPOINT_PATTERN = "epoch-*.weights.h5"


class Metrics(TypedDict, total=False):
    """metrics.json of a finished run (train writes it; prune/QAT write a shorter one with `sparsity`)."""

    arch: str
    dataset: str
    val_accuracy: float  # of the best epoch: what model selection used
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    test_accuracy: float  # evaluated once, at the end, with the best weights
    test_loss: float
    trainable_params: int
    seconds_per_epoch: float
    ms_per_step: float
    images_per_s: float
    backend: str
    device: dict
    data: dict  # the dataset's provenance: fingerprint, official or not
    best_weights_sha256: str
    sparsity: dict  # optimized runs: per-layer zeros


def augment_spec(text: str) -> str:
    """--augment's type: a spec Augment can parse (a usage error otherwise)."""
    import argparse

    try:
        Augment.parse(text)
    except (TypeError, ValueError) as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def teacher_list(text: str) -> tuple[str, ...]:
    """--teacher's type: RUN[,RUN...], at least one."""
    import argparse

    runs = tuple(part.strip() for part in text.split(",") if part.strip())
    if not runs:
        raise argparse.ArgumentTypeError("name at least one teacher run folder")
    return runs


@dataclass
class DistillConfig:
    """Knowledge distillation (`distill`): the student learns the teachers' softened answers and the labels.

    loss = (1 - soft_weight) x cross-entropy(labels) + soft_weight x T^2 x KL(teachers_T || student_T), where _T is a
    softmax of the logits divided by the temperature T and an ensemble's softened answers are averaged (Hinton et
    al. 2015; T^2 keeps the soft term's gradients on the scale of the hard one's whatever T is)."""

    teachers: tuple[str, ...] = option((), flag="--teacher", type=teacher_list, metavar="RUN[,RUN...]",
                                       help="trained run folder(s) of the same dataset; several make an ensemble")
    temperature: float = option(4.0, type=positive_float, help="softens the answers: higher shows more of the "
                                                               "teachers' second choices")
    soft_weight: float = option(0.5, type=fraction,
                                help="share of the loss from the teachers' answers (0 = labels only)")

    def validate(self) -> None:
        if not self.teachers:
            raise EdgeEmnistError("distillation needs at least one --teacher run")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise EdgeEmnistError(f"temperature must be a positive finite number, got {self.temperature}")
        if not 0 <= self.soft_weight <= 1:  # False for nan too
            raise EdgeEmnistError(f"soft weight must be between 0 and 1, got {self.soft_weight}")


@dataclass
class TrainConfig:
    """One training run's settings: what `train` and `sweep` offer on the command line, what config.json keeps."""

    arch: str = option(help="architecture", choices=list_models, metavar="ARCH")
    dataset: str = option(DEFAULT_DATASET, help="dataset", choices=lambda: DATASETS, metavar="NAME")
    epochs: int = option(70, help="maximum epochs")
    batch_size: int = option(256, help="images per training step")
    optimizer: str = option("adam", help="optimizer", choices=lambda: OPTIMIZERS)
    lr: float = option(1e-3, help="learning rate", type=positive_float)
    # SGD only: the study's (Table 6's best cell is SGD with momentum 0.9; Keras' own default is 0)
    momentum: float = option(0.9, help="SGD momentum, the study's")
    init: str = option("glorot", help="kernel initializer: Keras' glorot, random normal (std 0.05), he, lecun",
                       choices=lambda: INITIALIZERS)
    patience: int = option(10, help="stop after this many epochs without a better validation accuracy")
    seed: int = option(0, help="seeds the split, the shuffling, the augmentation and the weights", type=int)
    val_fraction: float = option(0.1, help="share of train held out for validation, stratified")
    # Random handwriting variation (data/augment.py); config.json keeps the resolved fields (or false).
    augment: bool | str | dict = option(
        "on", type=augment_spec, metavar="SPEC",
        help="random handwriting variation while training: on (rotation 12 deg, shift 2 px, scale 15%, shear 8 deg, "
             "strokes +-1 px, elastic 1 px), off, a strength (0.5 halves every magnitude), or NAME=VALUE,... with "
             "NAME rotation_deg, shift_px, scale, shear_deg, thickness_px, elastic_px, noise; recorded in the run's "
             "config.json")
    train_limit: int | None = option(None, type=positive_int, metavar="N",
                                     help="train on N images only (quick trials; validation shrinks to N/5)")
    mixed_precision: str = option("auto", choices=lambda: MIXED_PRECISION,
                                  help="16-bit compute with a float32 softmax: auto = bfloat16 on a GPU, float32 on a "
                                       "CPU; on = bfloat16; float16 adds loss scaling")
    distribute: str = option("auto", choices=lambda: DISTRIBUTE,
                             help="auto = data parallel over 2+ GPUs (JAX: keras.distribution.DataParallel, "
                                  "TensorFlow: MirroredStrategy); mirrored = over every device, CPUs too")
    model_options: dict = option(default_factory=dict, help="architecture options (resnet50: channels, input_size)",
                                 cli=False)
    # distill: DistillConfig's fields plus each teacher's weights sha256 (what the student learned from)
    distill: dict | None = option(None, help="distillation settings", cli=False)
    lr_schedule: str = option("constant", choices=lambda: LR_SCHEDULES,
                              help="constant (the study's); plateau: halve the LR after 2 epochs without "
                                   "validation-loss gain; cosine: decay it to 0 over --epochs (a resume with more "
                                   "epochs stretches the rest); --resume --lr-schedule X switches X on for the rest "
                                   "of a run")

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
            (self.distribute in DISTRIBUTE, f"distribute must be one of {', '.join(DISTRIBUTE)}"),
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


def distill_tag(config: TrainConfig) -> str:
    """"kd1-t4" for a student of one teacher at temperature 4, "" for a plain run: in run folders and artifact
    names, so a distilled model and a plain one of the same shape never share a file name (or a results row)."""
    if not config.distill:
        return ""
    return f"kd{len(config.distill['teachers'])}-t{config.distill['temperature']:g}"


def default_run_dir(config: TrainConfig, root: Path = Path("runs")) -> Path:
    """runs/<arch>[<shape>]-<dataset>-<optimizer>-<init>-lr<lr>-s<seed>: two shapes of one family never share one."""
    shape = shape_tag(config.arch, config.model_options)
    distilled = f"-{distill_tag(config)}" if config.distill else ""
    return root / (f"{config.arch}{shape}-{config.dataset}{distilled}-{config.optimizer}-{config.init}"
                   f"-lr{config.lr:g}-s{config.seed}")


def summary_line(m: dict, run_dir: Path) -> str:
    """What `train` prints when a run ends."""
    test = f"test {m['test_accuracy']:.4f}" if m.get("test_accuracy") is not None else "test not evaluated"
    return (f"{m['arch']} on {m['dataset']}: validation {m['val_accuracy']:.4f} (epoch {m['best_epoch']} of "
            f"{m['epochs_run']}), {test}, {m['seconds_per_epoch']:.1f} s/epoch, {m['images_per_s']:,.0f} images/s "
            f"-> {run_dir}")


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


def can_plot() -> bool:
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


def prepare_run_dir(config: TrainConfig, run_dir: Path, resume: bool) -> TrainConfig:
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


def save_config(config: TrainConfig, run_dir: Path) -> None:
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


def check_finite(row: dict, stage: str = "training") -> None:
    """A NaN or infinite loss means the weights are lost: stop with the reason rather than save them."""
    bad = [f"{key} {row[key]}" for key in ("loss", "val_loss") if key in row and not math.isfinite(row[key])]
    if bad:
        raise EdgeEmnistError(f"{stage} diverged in epoch {row['epoch']} ({', '.join(bad)}): nothing of that epoch "
                              "was saved; try a lower --lr")


def optimization_tag(sparsity: float | None, m_by_n, qat: bool, structured: float | None = None,
                     criterion: str | None = None) -> str:
    """Short suffix naming the optimizations, for run and artifact names: '', 'p50', 'p50-qat', '2of4-qat', and
    's50' for half the filters removed (structured) by L1 norm, 's50bn' by batch-norm scale: two prunings that
    keep different filters never share a file name."""
    parts = []
    if structured:
        parts.append(f"s{round(100 * structured)}{criterion if criterion and criterion != 'l1' else ''}")
    elif m_by_n:
        parts.append(f"{m_by_n[0]}of{m_by_n[1]}")
    elif sparsity:
        parts.append(f"p{round(100 * sparsity)}")
    if qat:
        parts.append("qat")
    return "-".join(parts)


@dataclass
class Run:
    path: Path
    config: TrainConfig
    metrics: dict
    optimization: dict = field(default_factory=dict)

    @property
    def weights(self) -> Path:
        return self.path / "best.weights.h5"

    @property
    def qat(self) -> bool:
        return bool(self.optimization.get("qat"))

    @property
    def pruned(self) -> bool:
        return bool(self.optimization.get("pruning"))

    @property
    def filter_plan(self) -> dict[str, int] | None:
        """Structured pruning's {layer: filters kept}: the narrowed architecture the weights belong to."""
        return (self.optimization.get("pruning") or {}).get("plan")

    @property
    def has_zeros(self) -> bool:
        """Magnitude pruning left zeros that QAT must keep (structured pruning removed its filters instead)."""
        return self.pruned and not self.filter_plan

    @property
    def tag(self) -> str:
        pruning = self.optimization.get("pruning") or {}
        return optimization_tag(pruning.get("sparsity"), pruning.get("m_by_n"), self.qat, pruning.get("structured"),
                                pruning.get("criterion"))


def check_run_folder(path: str | Path) -> Path:
    """The cheap part of opening a run (no TensorFlow): the CLI calls it before any heavy import, so a typo in
    a path is reported at once."""
    path = Path(path)
    if not path.is_dir():
        raise EdgeEmnistError(f"no run at {path}: not a folder (train one with `edge-emnist train`)")
    if not (path / "config.json").exists():
        raise EdgeEmnistError(f"{path} is not a run folder: config.json is missing")
    if not (path / "best.weights.h5").exists():
        raise EdgeEmnistError(f"{path} has no best.weights.h5 yet: has its training finished its first epoch?")
    return path


def open_run(path: str | Path) -> Run:
    path = check_run_folder(path)
    config_path = path / "config.json"
    try:
        config = TrainConfig(**json.loads(config_path.read_text()))
    except (json.JSONDecodeError, TypeError) as error:
        raise EdgeEmnistError(f"{config_path} is not a valid run config: {error}") from None
    config.validate()
    metrics_path, optimization_path = path / "metrics.json", path / "optimization.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    optimization = json.loads(optimization_path.read_text()) if optimization_path.exists() else {}
    return Run(path, config, metrics, optimization)
