"""Opening a finished run folder, trained or optimized, as the one thing export and bench start from.

A run optimized by `prune`/`qat` is a run folder too: the source's config.json, its own weights and
metrics, plus optimization.json saying what was done (pruning, quantization-aware training) so the model
can be rebuilt with the same wrappers before its weights are loaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from edge_emnist.errors import EdgeEmnistError

if TYPE_CHECKING:
    from edge_emnist.train import TrainConfig


def optimization_tag(sparsity: float | None, m_by_n, qat: bool) -> str:
    """Short suffix naming the optimizations, for run and artifact names: '', 'p50', 'p50-qat', '2of4-qat'."""
    parts = []
    if m_by_n:
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
    def tag(self) -> str:
        pruning = self.optimization.get("pruning") or {}
        return optimization_tag(pruning.get("sparsity"), pruning.get("m_by_n"), self.qat)

    def build_model(self, num_classes: int):
        """The run's architecture with its wrappers, weights loaded; a weights/architecture mismatch is one line."""
        from edge_emnist.models import create_model
        from edge_emnist.optimize.qat import quantize_wrap

        model = create_model(self.config.arch, num_classes, **self.config.model_options)
        if self.qat:
            model = quantize_wrap(model, prune_preserving=self.pruned)
        try:
            model.load_weights(str(self.weights))
        except (ValueError, KeyError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise EdgeEmnistError(f"{self.weights} does not fit architecture {self.config.arch} "
                                  f"with {num_classes} classes: {first}") from None
        model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model


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
    from edge_emnist.train import TrainConfig

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
