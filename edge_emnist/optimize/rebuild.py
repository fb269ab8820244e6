"""A finished run's model as tf_keras builds it for fine-tuning and export: its architecture (narrowed by a
structured pruning plan), the QAT wrappers its optimization.json names, and its best weights."""

from __future__ import annotations

from edge_emnist.errors import EdgeEmnistError
from edge_emnist.models import create_model
from edge_emnist.optimize.qat import quantize_wrap
from edge_emnist.optimize.structured import narrow
from edge_emnist.runs import Run


def build_model(run: Run, num_classes: int):
    """The run's architecture with its wrappers, weights loaded; a weights/architecture mismatch is one line."""
    model = create_model(run.config.arch, num_classes, **run.config.model_options)
    if run.filter_plan:
        model = narrow(model, run.filter_plan)
    if run.qat:
        model = quantize_wrap(model, prune_preserving=run.has_zeros)
    try:
        model.load_weights(str(run.weights))
    except (ValueError, KeyError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise EdgeEmnistError(f"{run.weights} does not fit architecture {run.config.arch} "
                              f"with {num_classes} classes: {first}") from None
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
