"""Magnitude pruning: schedules and the sparsity report."""

from __future__ import annotations

import numpy as np

from edge_emnist.optimize.config import SCHEDULES, PruneConfig, parse_m_by_n  # noqa: F401  (their home is config)
from edge_emnist.tf_keras_env import tf  # noqa: F401  (sets up tf_keras before tfmot is imported)


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


def report_lines(metrics: dict, output) -> list[str]:
    """What `prune`/`qat` print: every kernel's zeros, the total, and the accuracy against the source run's."""
    sparsity, filters = metrics["sparsity"], metrics.get("filters")
    if filters:  # structured: what was removed, not zeros
        lines = [f"{'layer':<40} {'filters':>10} {'kept':>10}"]
        lines += [f"{name:<40} {filters['filters_before'][name]:>10,} {kept:>10,}"
                  for name, kept in filters["plan"].items()]
        lines.append(f"parameters {filters['params_before']:,} -> {filters['params']:,}, MACs "
                     f"{filters['macs_before']:,} -> {filters['macs']:,} "
                     f"({filters['macs_before'] / max(filters['macs'], 1):.2f}x fewer)")
        return [*lines, _accuracy_line(metrics, output)]
    lines = [f"{'layer':<40} {'zeros':>10} {'weights':>10} {'sparsity':>9}"]
    lines += [f"{name:<40} {layer['zeros']:>10,} {layer['size']:>10,} {layer['sparsity']:>9.1%}"
              for name, layer in sparsity["layers"].items()]
    lines.append(f"{'total':<40} {sparsity['zeros']:>10,} {sparsity['kernel_weights']:>10,} {sparsity['total']:>9.1%}")
    return [*lines, _accuracy_line(metrics, output)]


def _accuracy_line(metrics: dict, output) -> str:
    source = metrics.get("source_test_accuracy")
    before = f" (source {source:.4f})" if source is not None else ""
    return f"validation {metrics['val_accuracy']:.4f}, test {metrics['test_accuracy']:.4f}{before} -> {output}"
