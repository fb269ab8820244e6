"""`edge-emnist robustness`: every artifact, through its own runtime, under every condition; one record each.

Three kinds of evidence, none hidden: (1) a seeded sample of the artifact's own test split under the
transformations of `conditions.FAMILIES`; (2) MNIST test, a different collection of digits, scored over the
full output and over the 10 digit classes only (what an app that wants digits gets by masking, see
`classes.py`); (3) characters drawn as pen strokes through the demo's preprocessing (`strokes.py`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edge_emnist.data import load_dataset
from edge_emnist.device.cards import checked_card, read_card
from edge_emnist.device.classes import class_groups, class_index, restrict
from edge_emnist.device.formats import RUNTIME_OF_SUFFIX
from edge_emnist.device.records import checked
from edge_emnist.device.runtimes import open_artifact
from edge_emnist.errors import EdgeEmnistError
from edge_emnist.io import append_jsonl, check_results_file
from edge_emnist.robustness.conditions import DEFAULT_CONDITIONS, FAMILIES, transformed
from edge_emnist.robustness.strokes import stroke_images

SCHEMA_VERSION = 1
STROKES_PER_LABEL = 20


def test_sample(dataset: str, count: int, seed: int, data_dir, cache_dir) -> tuple[np.ndarray, np.ndarray]:
    """`count` test images picked at random (seeded) from the dataset's test split (all of them if it has no
    more): float32 upright, labels."""
    test = load_dataset(dataset, data_dir, cache_dir, splits=("test",)).test
    picks = np.sort(np.random.default_rng(seed).permutation(len(test.labels))[:count])
    return test.images[picks].astype(np.float32) / 255.0, test.labels[picks]


def condition_sets(images: np.ndarray, seed: int) -> list[tuple[str, float, np.ndarray]]:
    return [(family.name, float(strength), transformed(images, family.name, strength, seed))
            for family in FAMILIES.values() for strength in family.strengths]


def _mnist(count: int, seed: int, data_dir, cache_dir) -> tuple[np.ndarray, np.ndarray] | None:
    """MNIST test (all 10,000, or a seeded sample of `count`), or None where MNIST is not to be had."""
    try:
        return test_sample("mnist", count, seed, data_dir, cache_dir)
    except EdgeEmnistError:
        return None


def _strokes(drawn: tuple[np.ndarray, list[str]], labels: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """The drawn characters this model has a class for, with that class's output index."""
    images, names = drawn
    index = [class_index(labels, name) for name in names]
    keep = [i for i, k in enumerate(index) if k is not None]
    return (images[keep], np.array([index[i] for i in keep])) if keep else None


def _predict(model, images: np.ndarray) -> np.ndarray:
    return np.argmax(model.predict(images[..., None], batch_size=256), axis=1)


def _digits_predict(model, images: np.ndarray, digits: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Answers over the full output, and over the digit classes only."""
    probabilities = model.predict(images[..., None], batch_size=256)
    return np.argmax(probabilities, axis=1), restrict(probabilities, digits)


def robust_accuracy(conditions: list[dict]) -> float | None:
    """Mean accuracy over conditions.DEFAULT_CONDITIONS (None if any of them is missing)."""
    found = {(c["family"], c["strength"]): c["accuracy"] for c in conditions}
    values = [found.get((family, float(strength))) for family, strength in DEFAULT_CONDITIONS]
    return None if any(v is None for v in values) else float(np.mean(values))


def _trusted_card(artifact: Path) -> dict:
    """Robustness is accuracy: it needs the card of this very file, and one that matches the model."""
    from edge_emnist.device.files import sha256_file

    card, _ = checked_card(artifact, sha256_file(artifact))
    if card is None:
        read_card(artifact, required=True)  # a missing or unreadable card: its own one-line error
        raise EdgeEmnistError(f"{artifact}: its model card describes another file (sha256 differs); export it again")
    return card


def evaluate(artifacts: list[Path], *, images: int = 2000, mnist_images: int = 10_000, seed: int = 0, threads: int = 2,
             results: Path, data_dir=None, cache_dir=None, log: Callable[[str], None] = print) -> list[dict]:
    """One record per artifact, appended to `results` as each artifact finishes."""
    from edge_emnist.device.host import host_description
    from edge_emnist.targets.machines import LocalMachine

    if min(images, mnist_images) < 100:
        raise EdgeEmnistError("--images and --mnist-images must be at least 100 (fewer make a 1-point difference "
                              "noise)")
    for artifact in artifacts:
        if not artifact.is_file():
            raise EdgeEmnistError(f"no artifact at {artifact}")
        if artifact.suffix not in RUNTIME_OF_SUFFIX:
            raise EdgeEmnistError(f"{artifact}: not a {' or '.join(RUNTIME_OF_SUFFIX)} artifact")
    cards = {a: _trusted_card(a) for a in artifacts}
    check_results_file(results)
    host = host_description()
    target = LocalMachine.label(host)
    prepared: dict[str, tuple] = {}
    mnist = None
    drawn = stroke_images(STROKES_PER_LABEL, seed)  # the same drawings for every artifact, rendered once
    records = []
    for artifact in tqdm(artifacts, desc="robustness", unit="artifact"):
        card = cards[artifact]
        dataset = card.get("dataset")
        if dataset not in prepared:
            x, y = test_sample(dataset, images, seed, data_dir, cache_dir)
            prepared[dataset] = (y, condition_sets(x, seed))
        labels, sets = prepared[dataset]
        started = time.perf_counter()
        model = open_artifact(artifact, threads=threads)
        conditions = [{"family": family, "strength": strength, "images": len(labels),
                       "accuracy": float(np.mean(_predict(model, x) == labels))} for family, strength, x in sets]
        record = {
            "schema": SCHEMA_VERSION, "kind": "robustness", "artifact": artifact.name,
            "artifact_sha256": card["sha256"], "card_sha256": card["sha256"],  # the same: _trusted_card checked it
            "arch": card.get("arch"), "dataset": dataset, "format": card.get("format"),
            "quantize": card.get("quantize"), "variant": card.get("variant"),
            "runtime": RUNTIME_OF_SUFFIX[artifact.suffix], "threads": threads, "seed": seed,
            "data_fingerprint": (card.get("source") or {}).get("data_fingerprint"),
            "augment": (card.get("source") or {}).get("augment"),
            "clean_accuracy": next(c["accuracy"] for c in conditions
                                   if c["strength"] == FAMILIES[c["family"]].identity),
            "robust_accuracy": robust_accuracy(conditions), "conditions": conditions,
        }
        digits = class_groups(card.get("labels") or {}).get("digits")
        if digits and len(digits) == 10:
            mnist = mnist if mnist is not None else _mnist(mnist_images, seed, data_dir, cache_dir)
            if mnist is not None:
                full, masked = _digits_predict(model, mnist[0], digits)
                truth = np.asarray(digits)[mnist[1]]
                record["mnist"] = {"images": len(truth), "accuracy": float(np.mean(full == truth)),
                                   "digits_only_accuracy": float(np.mean(masked == truth))}
        strokes = _strokes(drawn, card.get("labels") or {})
        if strokes is not None:
            record["strokes"] = {"images": len(strokes[1]), "per_label": STROKES_PER_LABEL,
                                 "accuracy": float(np.mean(_predict(model, strokes[0]) == strokes[1]))}
        record.update({"seconds": round(time.perf_counter() - started, 1), "target": target, "host": host,
                       "recorded": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        append_jsonl(results, checked([record]))
        records.append(record)
        log(summary_line(record))
    return records


def summary_line(record: dict) -> str:
    mnist, strokes, robust = record.get("mnist"), record.get("strokes"), record.get("robust_accuracy")
    parts = [f"{record['artifact']:<46} clean {record['clean_accuracy']:.4f}",
             f"robust {robust:.4f}" if robust is not None else "robust -"]
    if mnist:
        parts.append(f"MNIST digits {mnist['digits_only_accuracy']:.4f} (all classes {mnist['accuracy']:.4f})")
    if strokes:
        parts.append(f"strokes {strokes['accuracy']:.4f}")
    return "  ".join(parts)
