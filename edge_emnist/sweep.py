"""Grid sweeps (the study's Tables 6 and 8): train every cell, skip finished ones, tabulate.

    edge-emnist sweep --arch lenet5 --grid init=random,he,lecun optimizer=adam,nadam,sgd lr=0.01
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import json
from pathlib import Path

from tqdm import tqdm

from edge_emnist.errors import EdgeEmnistError
from edge_emnist.io import atomic_path
from edge_emnist.runs import TrainConfig
from edge_emnist.tables import markdown_table
from edge_emnist.train import train

SWEEPABLE = {"init": str, "optimizer": str, "lr": float, "batch_size": int, "momentum": float, "seed": int,
             "patience": int, "augment": str}  # augment: on, off or a strength (0.5)


# What the study's grids (Tables 6 and 8) held fixed, as far as its report says: 70 epochs, batch 256, SGD with
# momentum 0.9, no augmentation (none is described). A sweep says which of these its own cells do not share.
STUDY_SETTINGS = {"epochs": 70, "batch_size": 256, "momentum": 0.9, "augment": False}


def differences_from_study(config: TrainConfig) -> list[str]:
    """'augment on (the study: off)'-style notes for every fixed setting that is not the study's."""
    config.validate()  # resolves augment to its fields or False
    notes = []
    for key, study in STUDY_SETTINGS.items():
        ours = getattr(config, key)
        if key == "augment":
            ours, study = ("on" if ours else "off"), "off"
        if ours != study:
            notes.append(f"{key} {ours} (the study: {study})")
    return notes


def parse_grid(items: list[str]) -> dict[str, list]:
    """["init=he,lecun", "lr=0.01"] -> {"init": ["he", "lecun"], "lr": [0.01]}"""
    grid: dict[str, list] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.replace("-", "_")
        if not sep or not values:
            raise EdgeEmnistError(f"grid entry {item!r} must look like key=value1,value2")
        if key not in SWEEPABLE:
            raise EdgeEmnistError(f"cannot sweep {key!r}; sweepable: {', '.join(SWEEPABLE)}")
        try:
            grid[key] = [SWEEPABLE[key](v) for v in values.split(",")]
        except ValueError:
            raise EdgeEmnistError(f"grid entry {item!r}: a value is not a valid {key}") from None
    if not grid:
        raise EdgeEmnistError("empty grid: give at least one key=values")
    return grid


def cells(grid: dict[str, list]) -> list[dict]:
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))]


def cell_name(cell: dict) -> str:
    return ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in cell.items())


def run_sweep(base: TrainConfig, grid: dict[str, list], out_dir: Path, **train_kwargs) -> list[dict]:
    """Train every cell under out_dir/<cell>; finished cells are read back, unfinished ones resumed."""
    out_dir = Path(out_dir)
    results = []
    todo = cells(grid)
    differences = [note for note in differences_from_study(base) if note.split()[0] not in grid]
    if differences:
        tqdm.write(f"sweep: differs from the study's grid in {'; '.join(differences)}")
    for cell in tqdm(todo, desc="sweep", unit="cell"):
        config = dataclasses.replace(base, **cell)
        run_dir = out_dir / cell_name(cell)
        metrics_path = run_dir / "metrics.json"
        if metrics_path.exists():
            metrics = json.loads(metrics_path.read_text())
        else:
            metrics = train(config, run_dir, resume=(run_dir / "config.json").exists(), **train_kwargs)
        results.append({**cell, **{k: metrics[k] for k in
                                   ("val_accuracy", "test_accuracy", "best_epoch", "epochs_run", "seconds_per_epoch")}})
        write_tables(results, grid, out_dir, differences)
    return results


def write_tables(results: list[dict], grid: dict[str, list], out_dir: Path, differences: list[str] = ()) -> None:
    keys = list(grid)
    headers = [*keys, "val accuracy", "test accuracy", "best epoch", "epochs", "s/epoch"]
    rows = [[*(r[k] for k in keys), f"{r['val_accuracy']:.4f}", f"{r['test_accuracy']:.4f}", r["best_epoch"],
             r["epochs_run"], f"{r['seconds_per_epoch']:.1f}"] for r in results]
    with atomic_path(out_dir / "sweep.csv") as tmp, open(tmp, "w", newline="") as f:
        csv.writer(f).writerows([headers, *rows])
    same = f"Differs from the study's grid in: {'; '.join(differences)}." if differences else (
        "The study's fixed settings (epochs, batch size, SGD momentum, no augmentation).")
    text = f"# Sweep\n\n{same}\n\n{markdown_table(headers, rows)}\n"
    # The study's layout: first key down, second across, test accuracy in the cells.
    if len(keys) >= 2 and all(len(grid[k]) == 1 for k in keys[2:]):
        down, across = keys[0], keys[1]
        pivot = {(r[down], r[across]): r["test_accuracy"] for r in results}
        pivot_rows = [[d, *(f"{pivot[(d, a)]:.4f}" if (d, a) in pivot else "" for a in grid[across])]
                      for d in grid[down]]
        pivot_table = markdown_table([down, *map(str, grid[across])], pivot_rows)
        text += f"\n## Test accuracy, {down} x {across}\n\n{pivot_table}\n"
    with atomic_path(out_dir / "sweep.md") as tmp:
        tmp.write_text(text)
