"""Magnitude pruning: schedules and the sparsity report."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_emnist.errors import EdgeEmnistError
from edge_emnist.tf_keras_env import tf  # noqa: F401  (sets up tf_keras before tfmot is imported)

SCHEDULES = ("polynomial", "constant")


@dataclass
class PruneConfig:
    sparsity: float = 0.5
    schedule: str = "polynomial"
    m_by_n: tuple[int, int] | None = None  # structured: keep m of every n weights (2:4)

    def validate(self) -> None:
        if self.m_by_n and not 0 < self.m_by_n[0] < self.m_by_n[1]:
            raise EdgeEmnistError(f"--m-by-n needs 0 < m < n, got {self.m_by_n[0]}:{self.m_by_n[1]}")
        if not 0 < self.sparsity < 1:
            raise EdgeEmnistError(f"sparsity must be between 0 and 1 (exclusive), got {self.sparsity}")
        if self.schedule not in SCHEDULES:
            raise EdgeEmnistError(f"schedule must be one of {', '.join(SCHEDULES)}")


def parse_m_by_n(text: str) -> tuple[int, int]:
    try:
        m, n = (int(part) for part in text.split(":"))
    except ValueError:
        raise EdgeEmnistError(f"--m-by-n wants M:N such as 2:4, got {text!r}") from None
    return m, n


def wrap_for_pruning(model, config: PruneConfig, total_steps: int):
    """Polynomial ramps 0 -> target over the first 3/4 of fine-tuning, so the last quarter recovers at the target."""
    import tensorflow_model_optimization as tfmot

    sparsity = tfmot.sparsity.keras
    frequency = max(1, min(100, total_steps // 20))
    if config.schedule == "polynomial":
        schedule = sparsity.PolynomialDecay(0.0, config.sparsity, begin_step=0,
                                            end_step=max(1, int(0.75 * total_steps)), frequency=frequency)
    else:
        schedule = sparsity.ConstantSparsity(config.sparsity, begin_step=0, frequency=frequency)
    options = {"pruning_schedule": schedule}
    if config.m_by_n:
        options["sparsity_m_by_n"] = config.m_by_n
    return sparsity.prune_low_magnitude(model, **options)


def strip(model):
    import tensorflow_model_optimization as tfmot

    return tfmot.sparsity.keras.strip_pruning(model)


def sparsity_report(model) -> dict:
    """Zero fraction of every conv/dense kernel, and over all of them (biases and BN are never pruned)."""
    layers, zeros, total = {}, 0, 0
    for variable in model.weights:
        name = variable.name.split(":")[0]
        if not name.endswith("kernel") or "quantize" in name:
            continue
        values = variable.numpy()
        layer_zeros = int(np.sum(values == 0))
        layers[name.rsplit("/", 1)[0]] = {"zeros": layer_zeros, "size": int(values.size),
                                          "sparsity": layer_zeros / values.size}
        zeros, total = zeros + layer_zeros, total + int(values.size)
    return {"layers": layers, "total": zeros / total if total else 0.0, "zeros": zeros, "kernel_weights": total}
