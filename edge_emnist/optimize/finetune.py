"""Fine-tune a finished run into a new, optimized run folder: pruned, quantization-aware, or both.

The result is a run like any other (config, best weights, metrics) plus optimization.json, so export,
bench and report take it without knowing how it was made.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

from edge_emnist import distill as distillation
from edge_emnist.data import load_dataset
from edge_emnist.device.files import sha256_file
from edge_emnist.errors import EdgeEmnistError
from edge_emnist.io import save_weights
from edge_emnist.keras3 import LR_SCHEDULES, batches_for_keras
from edge_emnist.models.cost import macs, trainable_params
from edge_emnist.optimize import prune as pruning
from edge_emnist.optimize.config import FINETUNE_SCHEDULES
from edge_emnist.optimize.qat import calibrate_ranges, quantize_wrap
from edge_emnist.optimize.rebuild import build_model
from edge_emnist.optimize.structured import prune_filters
from edge_emnist.runs import (
    DistillConfig,
    Run,
    calibration_sample,
    check_finite,
    input_batches,
    open_run,
    optimization_tag,
    training_split,
)
from edge_emnist.tf_keras_env import keras

CALIBRATION_IMAGES = 512  # train images that set the activation ranges before QAT starts


def default_output(source: str | Path, prune: pruning.PruneConfig | None, qat: bool) -> Path:
    """RUN-p50, RUN-2of4, RUN-s50 (structured), RUN-qat, RUN-p50-qat beside the source run."""
    source = Path(source)
    tag = optimization_tag(prune.sparsity if prune else None, prune.m_by_n if prune else None, qat,
                           prune.structured if prune else None, prune.criterion if prune else None)
    return source.with_name(f"{source.name}-{tag}")


def optimize_run(source: str | Path, *, prune: pruning.PruneConfig | None = None, qat: bool = False,
                 epochs: int = 2, qat_epochs: int | None = None, lr: float = 1e-4, lr_schedule: str = "constant",
                 output: str | Path | None = None, distill: DistillConfig | None = None, ranges_only: bool = False,
                 data_dir=None, cache_dir=None, verbose: int | None = None) -> dict:
    """Prune and/or QAT fine-tune `source`; returns the new run's metrics (also in its metrics.json).

    Structured pruning keeps its best validation epoch (its structure is fixed from the first step, so every epoch
    is a candidate); magnitude pruning keeps its last (the sparsity reaches its target only late in the schedule).
    With `distill` (teachers at a soft weight above 0) every fine-tuning stage learns the teachers' softened answers
    beside the labels, as `distill` trains: labels alone pull a distilled student back towards its undistilled
    twin. `ranges_only`: QAT trains nothing but its activation ranges (the whole model frozen, batch norm in
    inference mode), so the fake-quant model is the trained one with ranges settled over the training batches."""
    if not prune and not qat:
        raise EdgeEmnistError("nothing to do: give a sparsity to prune, --qat, or both")
    distill = distill if distill and distill.soft_weight > 0 else None  # at weight 0 teachers would teach nothing
    if ranges_only and not qat:
        raise EdgeEmnistError("--ranges-only is a kind of QAT: add --qat")
    if ranges_only and distill:
        raise EdgeEmnistError("--ranges-only trains no weights, so teachers would teach nothing: drop --teacher")
    if prune:
        prune.validate()
    if epochs < 1 or (qat_epochs is not None and qat_epochs < 1):
        raise EdgeEmnistError("fine-tuning needs at least 1 epoch")
    if not (math.isfinite(lr) and lr > 0):
        raise EdgeEmnistError(f"learning rate must be a positive finite number, got {lr}")
    if lr_schedule not in FINETUNE_SCHEDULES:
        raise EdgeEmnistError(f"fine-tuning LR schedule must be {' or '.join(FINETUNE_SCHEDULES)}, got {lr_schedule!r}")
    run = open_run(source)
    if run.optimization and (prune or run.qat):
        raise EdgeEmnistError(f"{run.path} is already optimized ({run.tag}); start from the trained run "
                              "(only quantization-aware training may follow pruning)")
    output = Path(output or default_output(run.path, prune, qat))
    if output.exists():
        raise EdgeEmnistError(f"{output} already exists; remove it or pass --output")
    verbose = (1 if sys.stdout.isatty() else 2) if verbose is None else verbose
    teacher_runs, taught = [], None
    if distill:
        teacher_runs = distillation.check_teachers(run.config, distill)  # before the data: a typo costs nothing
        taught = distillation.resolved(distill, teacher_runs)
    elif run.config.distill and verbose and not ranges_only:  # ranges-only QAT trains no weights: nothing to lose
        print(f"note: {run.path} was distilled from {len(run.config.distill['teachers'])} teacher(s); fine-tuning "
              "on the labels alone may lose what they taught (pass --teacher to keep learning from them)",
              flush=True)

    keras.utils.set_random_seed(run.config.seed)
    data = load_dataset(run.config.dataset, data_dir, cache_dir)
    x_train, y_train, x_val, y_val = training_split(run.config, data)
    batch = run.config.batch_size
    # The source run's augmentation goes on during fine-tuning: pruning or QAT on plain images would pull the
    # weights back towards the scanner's look the run was trained away from.
    train_ds = batches_for_keras(keras, input_batches(x_train, y_train, run.config, train=True))
    val_ds = batches_for_keras(keras, input_batches(x_val, y_val, run.config))
    model = build_model(run, data.spec.num_classes)
    history = []
    filters = None
    teaching = (distillation.teacher_models(keras, teacher_runs, data.spec.num_classes), taught) if taught else None
    if teaching and verbose:
        print(f"fine-tuning learns from {len(teacher_runs)} teacher(s) at T {taught['temperature']:g}, soft weight "
              f"{taught['soft_weight']:g}", flush=True)

    if prune and prune.structured:
        before = {"params": trainable_params(model), "macs": macs(model)}
        model, plan, widths = prune_filters(model, prune.structured, prune.criterion)
        filters = {"plan": plan, "filters_before": widths, "params_before": before["params"],
                   "macs_before": before["macs"], "params": trainable_params(model), "macs": macs(model)}
        if verbose:
            print(f"structured pruning: {sum(plan.values())} of {sum(widths.values())} filters kept in {len(plan)} "
                  f"layers; parameters {before['params']:,} -> {filters['params']:,}, MACs {before['macs']:,} -> "
                  f"{filters['macs']:,}; fine-tuning {epochs} epochs", flush=True)
        history += _fit(model, train_ds, val_ds, epochs, lr, verbose, "structured", [], lr_schedule,
                        keep_best=True, teaching=teaching)
    elif prune:
        steps = math.ceil(len(y_train) / batch) * epochs
        model = pruning.wrap_for_pruning(model, prune, steps)
        history += _fit(model, train_ds, val_ds, epochs, lr, verbose, "prune", [_pruning_step()], lr_schedule,
                        teaching=teaching)
        model = pruning.strip(model)
    # QAT after magnitude pruning must not refill the pruned weights (structured pruning left none)
    keeps_zeros = bool(prune and not prune.structured) or run.has_zeros
    calibrated = {}
    if qat:
        float_model, model = model, quantize_wrap(model, prune_preserving=keeps_zeros)
        calibrated = calibrate_ranges(float_model, model, calibration_sample(run.config, x_train, CALIBRATION_IMAGES))
        model.trainable = not ranges_only  # frozen: only the quantizers' moving-average ranges move
        history += _fit(model, train_ds, val_ds, qat_epochs or epochs, lr, verbose, "qat", [], lr_schedule,
                        teaching=teaching)
        model.trainable = True

    test_ds = batches_for_keras(keras, input_batches(data.test.images, data.test.labels, run.config))
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    _, val_accuracy = model.evaluate(val_ds, verbose=0)
    _, test_accuracy = model.evaluate(test_ds, verbose=0)
    report = pruning.sparsity_report(model)
    optimization = {
        "source": str(run.path),
        "source_tag": run.tag,
        "source_weights_sha256": sha256_file(run.weights),
        "pruning": (({"structured": prune.structured, "criterion": prune.criterion, "epochs": epochs, **filters}
                     if filters else
                     {"sparsity": prune.sparsity, "schedule": prune.schedule,
                      "m_by_n": list(prune.m_by_n) if prune.m_by_n else None, "epochs": epochs}) if prune
                    else run.optimization.get("pruning")),  # a pruned source passes its pruning on
        "qat": {"epochs": qat_epochs or epochs, "prune_preserving": keeps_zeros, "ranges_only": ranges_only,
                "calibrated_ranges": len(calibrated), "calibration_images": CALIBRATION_IMAGES} if qat else None,
        "lr": lr,
        "lr_schedule": lr_schedule,
        "distill": taught,  # the teachers fine-tuning learned from (with their weights' sha256), or None
        "history": history,
    }
    metrics = {
        "arch": run.config.arch, "dataset": run.config.dataset,
        "val_accuracy": float(val_accuracy), "test_accuracy": float(test_accuracy),
        "source_val_accuracy": run.metrics.get("val_accuracy"),
        "source_test_accuracy": run.metrics.get("test_accuracy"),
        "sparsity": report,
        "filters": filters or (run.metrics.get("filters") if run.filter_plan else None),
        "data": data.provenance.to_dict(),
    }
    _write_run(output, run, model, optimization, metrics)
    return metrics


def _pruning_step():
    import tensorflow_model_optimization as tfmot

    return tfmot.sparsity.keras.UpdatePruningStep()


class _KeepBest(keras.callbacks.Callback):
    """Puts back the weights of the epoch with the best validation accuracy when fitting ends."""

    def __init__(self):
        super().__init__()
        self.best, self.epoch, self.weights = -1.0, None, None

    def on_epoch_end(self, epoch, logs=None):
        accuracy = float((logs or {}).get("val_accuracy", -1.0))
        if accuracy > self.best:
            self.best, self.epoch, self.weights = accuracy, epoch + 1, self.model.get_weights()

    def on_train_end(self, logs=None):
        if self.weights is not None:
            self.model.set_weights(self.weights)


def _fit(model, train_ds, val_ds, epochs, lr, verbose, stage, callbacks, lr_schedule="constant",
         keep_best=False, teaching: tuple[list, dict] | None = None) -> list[dict]:
    """Fit `model` (or, with `teaching` = (teacher models, distillation settings), the distillation wrapper around
    it, which shares its layers); one history row per epoch."""
    trained, loss, metric = model, "sparse_categorical_crossentropy", "accuracy"
    if teaching:
        trained, loss, metric = distillation.distiller(keras, model, teaching[0], model.output_shape[-1], teaching[1])
    trained.compile(optimizer=keras.optimizers.Adam(lr), loss=loss, metrics=[metric])
    schedule = LR_SCHEDULES[lr_schedule]
    keeper = _KeepBest() if keep_best else None
    extra = [schedule(keras, lr, epochs)] if schedule else []
    fitted = trained.fit(train_ds, validation_data=val_ds, epochs=epochs,
                       callbacks=[*callbacks, *extra, *([keeper] if keeper else []),
                                  keras.callbacks.TerminateOnNaN()], verbose=verbose, shuffle=False)
    rows = [{"stage": stage, "epoch": i + 1, **{k: float(v[i]) for k, v in fitted.history.items()}}
            for i in range(len(fitted.history["loss"]))]
    for row in rows:
        check_finite(row, stage)
        if keeper:
            row["kept"] = row["epoch"] == keeper.epoch  # the weights the run holds
    return rows


def _write_run(output: Path, source: Run, model, optimization: dict, metrics: dict) -> None:
    """All files go into a hidden folder first, renamed into place at the end: no half-made run is left."""
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = output.with_name(f".tmp-{output.name}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        shutil.copy(source.path / "config.json", staging / "config.json")
        save_weights(model, staging / "best.weights.h5")
        metrics["best_weights_sha256"] = sha256_file(staging / "best.weights.h5")
        (staging / "optimization.json").write_text(json.dumps(optimization, indent=2) + "\n")
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        staging.rename(output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
