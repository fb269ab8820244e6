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
