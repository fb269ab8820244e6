"""Fixtures: tiny IDX datasets written at test time, and the shared real data when it is present."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from edge_emnist.data import source
from edge_emnist.data.idx import write_idx
from edge_emnist.data.registry import SPLITS, DatasetSpec, get_dataset
from edge_emnist.data.source import NO_DOWNLOAD_ENV

os.environ.setdefault("MPLBACKEND", "Agg")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def glyph(label: int) -> np.ndarray:
    """A 28x28 image that is not symmetric under transposition: a bar at the top, plus the label's bits."""
    image = np.zeros((28, 28), np.uint8)
    image[2:5, 4:24] = 255  # horizontal bar near the top (upright); transposed it becomes a vertical bar
    for bit in range(7):
        if label >> bit & 1:
            image[10 + 2 * bit, 6:22] = 200
    return image


def write_tiny(spec: DatasetSpec, folder: Path, counts: dict[str, int] | None = None, seed: int = 0,
               transpose_on_disk: bool | None = None, noise: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Write spec's four files with a few images per class; returns the upright arrays per split.

    `noise` adds uniform pixel noise up to that value, so images of a class differ (export parity needs that).
    """
    counts = counts or {"train": 3 * spec.num_classes, "test": spec.num_classes}
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    on_disk_transposed = spec.transposed if transpose_on_disk is None else transpose_on_disk
    for split in SPLITS:
        labels = np.arange(counts[split]) % spec.num_classes
        rng.shuffle(labels)
        upright = np.stack([glyph(int(lab)) for lab in labels])
        if noise:
            noisy = upright.astype(np.int16) + rng.integers(0, noise + 1, upright.shape)
            upright = np.clip(noisy, 0, 255).astype(np.uint8)
        stored = upright.transpose(0, 2, 1) if on_disk_transposed else upright
        write_idx(folder / spec.filename(split, "images"), stored)
        write_idx(folder / spec.filename(split, "labels"), (labels + spec.label_offset).astype(np.uint8))
        written[split] = (upright, labels)
    return written


def trained_tiny_lenet5(root: Path) -> Path:
    """A LeNet-5 run trained on noisy synthetic MNIST (root/run, data in root/data): what the fine-tuning tests
    (magnitude and structured pruning, QAT) start from."""
    from edge_emnist.train import TrainConfig, train

    write_tiny(get_dataset("mnist"), root / "data", counts={"train": 600, "test": 200}, noise=90)
    config = TrainConfig(arch="lenet5", dataset="mnist", epochs=6, batch_size=32, lr=3e-3, patience=6)
    train(config, root / "run", data_dir=root / "data", verbose=0)
    return root


@pytest.fixture
def tiny_bymerge(tmp_path: Path) -> tuple[DatasetSpec, Path, dict]:
    spec = get_dataset("emnist-bymerge")
    folder = tmp_path / "emnist"
    return spec, folder, write_tiny(spec, folder)


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "emnist-dev").is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never read the user's data settings or cache, and never download."""
    monkeypatch.delenv("EDGE_EMNIST_DATA", raising=False)
    monkeypatch.delenv("EDGE_EMNIST_MIRROR", raising=False)
    monkeypatch.delenv(NO_DOWNLOAD_ENV, raising=False)  # `--no-download` sets it for the process
    monkeypatch.setenv("EDGE_EMNIST_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(source, "_said", set())  # each test sees its own once-per-process notices


# The fast tier (`pytest -m "not slow"`) leaves out what trains, exports or benchmarks a model, drives a browser or
# reads the shared real data: tests that use these fixtures, and every test of these modules.
SLOW_FIXTURES = {"artifacts", "tiny_run", "trained", "data", "made", "bymerge_test", "shared_data", "browser",
                 "tiny_data"}
SLOW_MODULES = {"test_train.py", "test_real_data.py", "test_portable_int8.py", "test_onnx_qat.py",
                "test_pipeline_command.py", "test_robustness.py"}


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) or item.path.name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
