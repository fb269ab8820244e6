"""`edge-emnist runner DIR`: the device runner (and a test split) in a folder, for a device without SSH."""

from __future__ import annotations

import shutil
from pathlib import Path

from edge_emnist.device import RUNNER_FILES
from edge_emnist.errors import EdgeEmnistError
from edge_emnist.io import atomic_path


def write_runner(out: Path, *, dataset: str | None = None, force: bool = False, data_dir=None,
                 cache_dir=None) -> list[Path]:
    """Copy the runner's files (and `dataset`'s test split as upright uint8 .npz) into `out`; returns what was
    written. Each file is written beside its name and renamed over it, so a symbolic link already there is
    replaced, never written through."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise EdgeEmnistError(f"{out} exists and is not a folder")
    targets = [out / p.name for p in RUNNER_FILES] + ([out / f"{dataset}-test.npz"] if dataset else [])
    clashes = [p.name for p in targets if p.exists() or p.is_symlink()]
    if clashes and not force:
        raise EdgeEmnistError(f"{out} already has {', '.join(clashes)} (--force replaces them)")
    test = None
    if dataset:
        from edge_emnist.data import load_dataset

        test = load_dataset(dataset, data_dir, cache_dir, splits=("test",)).test
    out.mkdir(parents=True, exist_ok=True)
    for source in RUNNER_FILES:
        with atomic_path(out / source.name) as tmp:
            shutil.copyfile(source, tmp)
    if test is not None:
        import numpy as np

        with atomic_path(targets[-1]) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, images=test.images, labels=test.labels)
    return targets


def how_to_use(out: Path, written: list[Path], dataset: str | None) -> str:
    """What `runner DIR` prints: the files, and the device-side commands that use them."""
    data = written[-1].name if dataset else "TEST.npz"
    return (f"wrote {', '.join(p.name for p in written)} to {out}/ (Python 3.9+, numpy, and ai-edge-litert or "
            "onnxruntime there). On the device:\n"
            "  python runner.py model.tflite --threads 1,4 --batch 1,32 --json out.json      # latency, memory\n"
            f"  python runner.py model.tflite --data {data} --json out.json   # + accuracy\n"
            "  python runner.py model.tflite --profile --json profile.json                   # per operator\n"
            "back here: edge-emnist bench --import out.json --target arm:pi5")
