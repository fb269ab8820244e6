"""TensorBoard scalars of a run (`tensorboard --logdir runs/`), written with TensorBoard's own event writer.

TensorBoard's writer imports TensorFlow unless told not to; a JAX or PyTorch run must not load TensorFlow for a
log line, so its TensorFlow-free stub is selected (the switch TensorBoard's own no-TensorFlow build uses). Where
TensorBoard is not installed (a bare GPU machine), runs simply have no such log.
"""

from __future__ import annotations

import importlib.util
import sys
import time
import types
from pathlib import Path

FOLDER = "tensorboard"  # inside the run folder


def available() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


class ScalarLog:
    """One event file per process in `folder`; `add(step, {tag: value})` per epoch."""

    def __init__(self, folder: Path) -> None:
        sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        folder.mkdir(parents=True, exist_ok=True)
        self._event, self._summary = event_pb2.Event, summary_pb2.Summary
        self._writer = EventFileWriter(str(folder))

    def add(self, step: int, values: dict[str, float]) -> None:
        summary = self._summary(value=[self._summary.Value(tag=tag, simple_value=float(value))
                                       for tag, value in values.items()])
        self._writer.add_event(self._event(wall_time=time.time(), step=step, summary=summary))
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def open_log(run_dir: Path) -> ScalarLog | None:
    return ScalarLog(run_dir / FOLDER) if available() else None


def epoch_scalars(row: dict) -> dict[str, float]:
    """A history row as TensorBoard tags: train and validation side by side under one name."""
    return {"loss/train": row["loss"], "loss/validation": row["val_loss"], "accuracy/train": row["accuracy"],
            "accuracy/validation": row["val_accuracy"], "learning_rate": row["lr"], "seconds_per_epoch": row["seconds"]}
