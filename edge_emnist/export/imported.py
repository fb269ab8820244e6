"""`edge-emnist export my_model.keras --dataset NAME`: a model trained elsewhere becomes a run folder (architecture
`external`, models/external.py), then exports like any run: the same converters, parity check on the whole test
split, card, metadata.

What the file cannot say is asked for: the dataset (what its outputs mean, and the test split to check it on),
the orientation of the images it learned and their pixel scale. Whether it outputs probabilities or logits is
measured: rows of the first test images that do not sum to 1 get a softmax appended.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edge_emnist.data import load_dataset
from edge_emnist.data.registry import get_dataset
from edge_emnist.device.files import sha256_file
from edge_emnist.errors import EdgeEmnistError
from edge_emnist.io import atomic_path, save_weights
from edge_emnist.models import create_model
from edge_emnist.models.external import kind_of
from edge_emnist.runs import TrainConfig, save_config

IMPORTED_RUNS = Path("runs/imported")


def is_model_file(path: Path) -> bool:
    return kind_of(Path(path)) is not None


def import_model(path: Path, *, dataset: str | None, orientation: str = "upright", pixels: str = "unit",
                 root: Path = IMPORTED_RUNS, data_dir=None, cache_dir=None, log=print) -> Path:
    """The run folder of an imported model (made again when the file changed)."""
    path = Path(path).resolve()
    if not dataset:
        raise EdgeEmnistError(f"{path.name} was trained elsewhere: say which dataset its outputs are the classes of "
                              "(--dataset NAME; `edge-emnist data list` names them)")
    spec = get_dataset(dataset)
    options = {"file": str(path), "orientation": orientation, "pixels": pixels, "outputs": "probabilities"}
    try:
        model = create_model("external", spec.num_classes, **options)
    except (ValueError, OSError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise EdgeEmnistError(f"cannot import {path}: {first}") from None
    data = load_dataset(dataset, data_dir, cache_dir)
    sample = data.test.images[:256, ..., None].astype(np.float32) / 255.0
    answers = np.asarray(model.predict(sample, verbose=0))
    if not (np.all(answers >= -1e-6) and np.allclose(answers.sum(axis=1), 1.0, atol=1e-3)):
        log(f"{path.name}: its outputs are not probabilities (rows do not sum to 1): a softmax is appended")
        options["outputs"] = "logits"
        model = create_model("external", spec.num_classes, **options)
    digest = sha256_file(path) if path.is_file() else _folder_digest(path)
    run_dir = root / f"{path.stem}-{dataset}"
    known = run_dir / "metrics.json"
    if known.exists() and json.loads(known.read_text()).get("source_sha256") == digest:
        return run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    config = TrainConfig(arch="external", dataset=dataset, epochs=1, augment="off", model_options=options)
    config.validate()
    save_config(config, run_dir)
    save_weights(model, run_dir / "best.weights.h5")  # a .h5's own layers; empty for an opaque .keras/SavedModel
    accuracy = float(np.mean(answers.argmax(axis=1) == data.test.labels[:256]))
    log(f"imported {path} -> {run_dir} ({options['outputs']}, accuracy {accuracy:.4f} on the first 256 test images)")
    with atomic_path(known) as tmp:
        tmp.write_text(json.dumps({"arch": "external", "dataset": dataset, "source_file": str(path),
                                   "source_sha256": digest, "imported_options": options}, indent=2) + "\n")
    return run_dir


def _folder_digest(folder: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(folder)).encode())
        digest.update(sha256_file(file).encode())
    return digest.hexdigest()
