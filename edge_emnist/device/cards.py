"""Reading model cards: the JSON beside every exported artifact (`model.tflite` -> `model.tflite.json`).

One reader for bench, robustness, the demo, the report and export: whether a missing card is an error is the
caller's choice (`required=`), the wording of the error is not.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from edge_emnist.errors import EdgeEmnistError

REFUSED = "refused.jsonl"  # in an export folder: the artifacts that missed their parity bar, with the numbers


def card_path(artifact: Path) -> Path:
    """model.tflite -> model.tflite.json"""
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".json")


def read_card(artifact: Path, *, required: bool = False) -> dict | None:
    """The artifact's card; None where it is missing or unreadable, or with `required` a one-line error."""
    path = card_path(artifact)
    try:
        card = json.loads(path.read_text())
        if not isinstance(card, dict):
            raise ValueError("not a JSON object")
        return card
    except (OSError, ValueError) as error:
        if required:
            reason = "missing" if isinstance(error, FileNotFoundError) else "unreadable"
            raise EdgeEmnistError(f"{artifact}: model card {path} is {reason} (it says what the model takes and "
                                  "what each output means; export the artifact again)") from None
        return None


def card_mismatch(card: dict, io: dict) -> str | None:
    """None when the card can describe a model with this I/O (runtimes.model_io); else what differs. A card that
    lies about the classes or the input's quantization would make every accuracy and every app answer wrong."""
    labels = card.get("labels") or {}
    classes = io.get("classes")
    if classes is not None and len(labels) != classes:
        return f"the card lists {len(labels)} labels for a model with {classes} outputs"
    card_classes = ((card.get("output") or {}).get("shape") or [None])[-1]
    if classes is not None and card_classes not in (None, -1) and card_classes != classes:
        return f"the card says {card_classes} outputs, the model has {classes}"
    spec = card.get("input") or {}
    if spec.get("dtype") and spec["dtype"] != io.get("input_dtype"):
        return f"the card says {spec['dtype']} input, the model takes {io.get('input_dtype')}"
    quant = spec.get("quantization") or {}
    if io.get("input_scale") is not None or quant:
        scale, zero_point = quant.get("scale"), quant.get("zero_point")
        ours = io.get("input_scale")
        if (scale is None or ours is None or abs(scale - ours) > 1e-6 * abs(ours)
                or zero_point != io["input_zero_point"]):
            return (f"the card's input quantization (scale {scale}, zero point {zero_point}) is not the model's "
                    f"(scale {io.get('input_scale')}, zero point {io.get('input_zero_point')})")
    return None


def checked_card(artifact: Path, sha256: str) -> tuple[dict | None, str]:
    """(the card to trust or None, its status): "ok" for a card of this very file that matches the model,
    "missing" for none, "another file" for a card whose sha256 is not this file's. A card of this file that
    contradicts the model is refused with a one-line error: nothing measured with it would mean anything."""
    from edge_emnist.device.runtimes import model_io

    card = read_card(artifact)
    if card is None:
        return None, CARD_MISSING
    if card.get("sha256") != sha256:
        return None, CARD_OF_ANOTHER_FILE
    wrong = card_mismatch(card, model_io(artifact))
    if wrong:
        raise EdgeEmnistError(f"{artifact}: {wrong}; export the artifact again (its card must describe it)")
    return card, CARD_OK


CARD_OK, CARD_MISSING, CARD_OF_ANOTHER_FILE = "ok", "missing", "another file"


def find_card(name: str, folders: Iterable[Path]) -> dict | None:
    """The card of the artifact called `name` in the first folder that has a readable one: measured artifacts
    too big to ship keep their cards outside exported/."""
    for folder in folders:
        card = read_card(Path(folder) / name)
        if card is not None:
            return card
    return None


def read_refusals(folder: Path) -> list[dict]:
    """The refusals recorded in an export folder (the latest per artifact name; a torn line is skipped)."""
    path = Path(folder) / REFUSED
    found: dict[str, dict] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            found[record.get("artifact")] = record
    return list(found.values())
