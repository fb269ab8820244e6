"""The model card: the JSON beside every exported artifact (`model.tflite` -> `model.tflite.json`) that says
what the model takes and what each output means. One module writes its sections (export), reads it (bench,
robustness, the demo, the report, pick) and holds it against the model it describes.

Whether a missing card is an error is the caller's choice (`required=`), the wording of the error is not.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Iterable
from pathlib import Path
from typing import TypedDict

import numpy as np

from edge_emnist.device.classes import class_groups
from edge_emnist.device.host import package_versions
from edge_emnist.device.records import decode_top1, encode_top1
from edge_emnist.errors import EdgeEmnistError


class Card(TypedDict, total=False):
    """What export writes beside every artifact (`model.tflite.json`); CARD_REQUIRED must be there."""

    artifact: str  # the file's name
    sha256: str  # of the file: a card is valid only beside the very bytes it names
    format: str  # a formats.FORMATS name
    quantize: str  # a formats.QUANTIZATIONS name
    variant: str
    arch: str
    dataset: str
    model: dict  # trainable_params, macs
    labels: dict  # {"0": "0", ..., "46": "t"}: output index -> character
    class_groups: dict  # digits, letters, uppercase, lowercase: output indices
    input: dict  # name, shape, dtype, quantization, value_range, from_pixels, preprocessing, orientation
    output: dict  # name, shape, dtype, quantization, meaning
    source: dict  # run, weights, weights_sha256, optimization, data_fingerprint, augment
    sparsity: dict
    size: dict  # bytes, gzip_bytes
    parity: dict  # top-1 agreement with the Keras model, the bar, where it was checked
    accuracy: dict  # split, images, artifact, keras
    answers: dict  # split, images, top1 (base64 of one byte per image): the artifact's answers on the first images
    tools: dict


INPUTS = ("grey", "rgb")  # what a model takes: the training's 28x28x1, or 28x28x3 (app-ready) turned grey inside


def card_input(card: dict | None) -> str | None:
    """The input kind (INPUTS) a card describes: rgb for three channels, grey for one; None without a card."""
    shape = ((card or {}).get("input") or {}).get("shape")
    if not shape:
        return None
    return "rgb" if shape[-1] == 3 else "grey"


CARD_REQUIRED = ("artifact", "sha256", "format", "quantize", "arch", "dataset", "labels", "input", "output", "parity",
                 "accuracy")


def card_problem(card: dict) -> str | None:
    """None for a card a reader can use; else what is missing (checked when export writes one, too)."""
    missing = [key for key in CARD_REQUIRED if card.get(key) in (None, "", {})]
    if missing:
        return f"a model card without {', '.join(missing)}"
    if len(card["labels"]) != ((card["output"].get("shape") or [None])[-1] or len(card["labels"])):
        return f"a model card with {len(card['labels'])} labels for {card['output']['shape'][-1]} outputs"
    return None


REFUSED = "refused.jsonl"  # in an export folder: the artifacts that missed their parity bar, with the numbers
CARD_OK, CARD_MISSING, CARD_OF_ANOTHER_FILE = "ok", "missing", "another file"  # checked_card's verdicts


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


def find_card(name: str, folders: Iterable[Path]) -> dict | None:
    """The card of the artifact called `name` in the first folder that has a readable one: measured artifacts
    too big to ship keep their cards outside exported/."""
    for folder in folders:
        card = read_card(Path(folder) / name)
        if card is not None:
            return card
    return None


class CardShelf:
    """The cards of artifacts by name, each read once: a report or a pick asks several questions of the same card
    (is the record superseded, what input it takes, its MACs, is its robustness record current). Searched in
    `folders` in order, or in the folders a question names (pick looks where each record was measured)."""

    def __init__(self, folders: Iterable[Path] = ()):
        self.folders = tuple(Path(f) for f in folders)
        self._read: dict[tuple, dict | None] = {}

    def __bool__(self) -> bool:
        return bool(self.folders)

    def find(self, name: str, folders: Iterable[Path] | None = None) -> dict | None:
        where = self.folders if folders is None else tuple(Path(f) for f in folders)
        key = (name, where)
        if key not in self._read:
            self._read[key] = find_card(name, where)
        return self._read[key]


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


# --- answers: what the artifact said on the first test images ---------------------------------------------

# A card keeps the artifact's top-1 answers on the first ANSWERS_KEPT test images (2 KB as base64): any machine can
# run the file on those and compare answers, the exact check scoring the whole split gives, in a fraction of the
# time (custom_resnet's int8 ONNX takes 85-130 s over 23,265 images on a 2-core AVX2 CPU).
ANSWERS_KEPT = 2000


def answers_section(probabilities: np.ndarray, split: str = "test") -> dict:
    """The card's `answers`: the top-1 class of the first ANSWERS_KEPT rows of `probabilities`, one byte each."""
    top1 = np.asarray(probabilities)[:ANSWERS_KEPT].argmax(-1)
    return {"split": split, "images": int(top1.size), "top1": encode_top1(top1)}


def card_answers(card: dict) -> np.ndarray | None:
    """The top-1 answers a card keeps (answers_section), or None for a card written before cards kept them."""
    section = card.get("answers")
    if not section:
        return None
    top1 = np.array(decode_top1(section["top1"]), np.int64)
    if len(top1) != section["images"]:
        raise EdgeEmnistError(f"{card.get('artifact')}: the card's answers hold {len(top1)} images, it says "
                              f"{section['images']}")
    return top1


# --- writing: the sections export fills in ---------------------------------------------------------------

TOOLS = ("edge-emnist", "tensorflow", "tf-keras", "tensorflow-model-optimization", "ai-edge-litert", "tf2onnx",
         "onnx", "onnxruntime", "numpy")

PREPROCESSING = (
    "28x28 grayscale, character white (255) on black (0), upright as a person reads it, centred as in "
    "(E)MNIST; scale pixels to [0, 1] with x / 255. The EMNIST IDX files store every image transposed: "
    "transpose raw EMNIST images before feeding them."
)


def tool_versions() -> dict[str, str | None]:
    return {"python": platform.python_version(), **package_versions(TOOLS)}


def tensor_spec(name: str, shape, dtype: np.dtype, quantization: tuple[float, int] | None) -> dict:
    spec = {"name": name, "shape": [int(d) for d in shape], "dtype": np.dtype(dtype).name}
    if quantization and quantization[0]:
        scale, zero_point = quantization
        spec["quantization"] = {"scale": float(scale), "zero_point": int(zero_point),
                                "real_value": "(q - zero_point) * scale"}
    return spec


def class_groups_section(labels: dict[str, str]) -> dict:
    """Output indices of the digits, letters, capitals and small letters, and how an app uses them."""
    return {**class_groups(labels),
            "how": "to answer only within a group (a digits-only field, a letters-only one), take the argmax of "
                   "the output over that group's indices instead of over all of them: no retraining, no other "
                   "model (docs/embedding.md)"}


def input_section(io: dict, transposed: bool) -> dict:
    """The card's input: the tensor's own spec, its value range, and how pixels become input (`transposed`: the
    dataset's files store images transposed, as EMNIST's do)."""
    section = dict(io)
    quant = io.get("quantization")
    if quant:
        # q = x / scale + zero_point with x = pixel / 255: for scale 1/255 the raw pixel maps straight through
        section["value_range"] = [int(quant["zero_point"]), int(round(1 / quant["scale"] + quant["zero_point"]))]
        section["from_pixels"] = "q = round(pixel / 255 / scale) + zero_point"
    else:
        section["value_range"] = [0.0, 1.0]
    section["preprocessing"] = PREPROCESSING
    section["orientation"] = "upright (EMNIST raw files are transposed)" if transposed else "upright"
    return section
