"""The result record: what one measurement of one artifact on one machine writes, and the check every reader
applies before trusting a line of a results file.

Kinds: a measurement (one artifact x runtime x setting x batch), `skipped` (a runtime this machine cannot
run, with the machine's own reason), `failed` (an artifact that broke on a runtime) and `profile` (where
the time of one inference goes, per operator). Plain Python: the runner ships it to devices.
"""

from __future__ import annotations

import base64
from typing import TypedDict

SCHEMA_VERSION = 2  # 2: artifact_sha256, load (load average around the timed runs), latency spread, busy
# p99 over p50 above this says the timed runs were disturbed (another process, frequency scaling): the record
# keeps its numbers but is flagged busy, and `bench` warns. A quiet machine measured here stays under 3.
BUSY_SPREAD = 5.0
# How a measurement is taken unless asked otherwise (the runner's and bench's defaults): timed batch-1 runs (p90
# wants a few hundred at least), untimed runs first, and the batch sizes.
DEFAULT_RUNS = 1000
DEFAULT_WARMUP = 50
DEFAULT_BATCHES = (1, 32)

# Fields a record of each kind must have before a report or a pick may read it.
REQUIRED = {
    "measured": ("artifact", "runtime", "settings", "batch", "latency", "size_bytes", "gzip_bytes"),
    "skipped": ("runtime", "skipped"),
    "failed": ("artifact", "runtime", "failed"),
    "profile": ("artifact", "runtime", "settings", "operators", "total_ms"),
    "robustness": ("artifact", "conditions"),
}
LATENCY_FIELDS = ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "runs")


class Latency(TypedDict):
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    runs: int


class Measured(TypedDict, total=False):
    """One artifact x runtime x setting x batch (what the runner measures; bench labels it)."""

    schema: int
    artifact: str
    artifact_sha256: str
    runtime: str
    settings: dict  # {"threads": N, ...the runtime's options}: formats.settings
    batch: int
    latency: Latency
    accuracy: float | None
    size_bytes: int
    gzip_bytes: int
    host: dict  # device.host.host_description
    target: str  # cpu:<hostname>-<ISA tier>, gpu:<name>, qemu-..., <arch>:<device>
    card: str  # card_status: ok, missing, another file
    input: str | None  # the card's input kind (cards.INPUTS: grey, rgb); older records: read from the card
    artifact_path: str
    answers: dict  # images, agreement, differ: the top-1 answers here against those the card kept at export


class Skipped(TypedDict):
    schema: int
    runtime: str
    artifact: None
    skipped: str


class Failed(TypedDict):
    schema: int
    artifact: str
    runtime: str
    settings: dict
    failed: str


class Profile(TypedDict, total=False):
    schema: int
    kind: str  # "profile"
    artifact: str
    runtime: str
    settings: dict
    operators: list
    total_ms: float
    unavailable: str


def encode_top1(top1) -> str:
    """Top-1 classes (ints under 256) as base64, one byte each: how a card keeps answers and a runner returns them."""
    classes = [int(v) for v in top1]
    if classes and max(classes) > 255:
        raise ValueError("a card keeps answers for at most 256 classes")
    return base64.b64encode(bytes(classes)).decode("ascii")


def decode_top1(text: str) -> list[int]:
    return list(base64.b64decode(text))


def kind_of(record: dict) -> str:
    if record.get("kind"):
        return record["kind"]
    return "skipped" if record.get("skipped") else "failed" if record.get("failed") else "measured"


def skipped(runtime: str, reason: str) -> Skipped:
    return {"schema": SCHEMA_VERSION, "runtime": runtime, "artifact": None, "skipped": reason}


def failed(artifact: str, runtime: str, threads: int | None, reason: str) -> Failed:
    return {"schema": SCHEMA_VERSION, "artifact": artifact, "runtime": runtime, "settings": {"threads": threads},
            "failed": reason}


def profile_unavailable(artifact: str, runtime: str, threads: int, reason: str) -> dict:
    return {"schema": SCHEMA_VERSION, "kind": "profile", "artifact": artifact, "runtime": runtime,
            "settings": {"threads": threads}, "unavailable": reason}


def card_status(record: dict) -> str:
    """"ok" where the measured file had a current model card beside it; "missing" or "another file" where not
    (records from before the `card` field: judged by whether bench read a card, which names the architecture)."""
    return record.get("card") or ("ok" if record.get("card_sha256") or record.get("arch") else "missing")


def problem(record: object) -> str | None:
    """None for a record every reader can use; else what is wrong with it, in a few words."""
    if not isinstance(record, dict):
        return "not a JSON object"
    schema = record.get("schema")
    if not isinstance(schema, int) or not 1 <= schema <= SCHEMA_VERSION:
        return f"schema {schema!r} is not one this version reads (1..{SCHEMA_VERSION})"
    kind = kind_of(record)
    if kind not in REQUIRED:
        return f"unknown record kind {kind!r}"
    required = REQUIRED[kind] if not record.get("unavailable") else ("artifact", "runtime")
    missing = [name for name in required if record.get(name) is None]
    if missing:
        return f"a {kind} record without {', '.join(missing)}"
    if kind == "measured":
        latency = record["latency"]
        if not isinstance(latency, dict) or any(not isinstance(latency.get(f), (int, float)) for f in LATENCY_FIELDS):
            return f"latency lacks one of {', '.join(LATENCY_FIELDS)}"
        if not isinstance(record["batch"], int) or record["batch"] < 1:
            return f"batch {record['batch']!r} is not a positive integer"
        accuracy = record.get("accuracy")
        if accuracy is not None and not (isinstance(accuracy, (int, float)) and 0 <= accuracy <= 1):
            return f"accuracy {accuracy!r} is outside [0, 1]"
    return None


def checked(records: list[dict]) -> list[dict]:
    """The records, once each passed the check every reader applies: a writer never appends what a reader would
    refuse (a ValueError here is a bug in the writer, not the user's input)."""
    for record in records:
        wrong = problem(record)
        if wrong:
            raise ValueError(f"refusing to write a record that breaks the schema ({wrong}): {str(record)[:200]}")
    return records
