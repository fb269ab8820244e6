"""Reading benchmark records back: the latest measurement of every setting, grouped by target."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from edge_emnist.device.records import kind_of
from edge_emnist.errors import EdgeEmnistError

if TYPE_CHECKING:
    from edge_emnist.device.cards import CardShelf


def load_records(paths: list[Path], warn=None) -> list[dict]:
    """The records of the JSONL files that any reader can still use, each checked against the record schema
    (device.records), streamed: a file of 200,000 records costs the memory of its distinct settings, because
    only the latest record per setting (and per file measured) can count. A torn last line (a crash mid-append)
    is skipped with a warning; a bad line anywhere else means the file is not a results file."""
    kept: dict[tuple, dict] = {}
    for record in iter_records(paths, warn):
        key = (kind_of(record), setting_key(record), record.get("artifact_sha256"))
        kept.pop(key, None)  # the latest of each goes to the end: the order stays the order of the files
        kept[key] = record
    return list(kept.values())


def iter_records(paths: list[Path], warn=None) -> Iterator[dict]:
    """Every record of the files in order, one line in memory at a time."""
    from edge_emnist.device.records import problem
    from edge_emnist.io import check_results_file

    for path in paths:
        check_results_file(path, must_exist=True)
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as f:
            pending: tuple[int, str] | None = None  # a bad line is only forgiven when it is the last one
            for number, line in enumerate(f, 1):
                if pending:
                    raise EdgeEmnistError(f"{path}:{pending[0]} is not a JSON record")
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    pending = (number, line)
                    continue
                wrong = problem(record)
                if wrong:
                    raise EdgeEmnistError(f"{path}:{number} is not a result record: {wrong}")
                yield upgrade(record)
            if pending:
                (warn or _stderr)(f"warning: {path}:{pending[0]}: skipped a torn last line (an interrupted "
                                  "write); the next `bench` append cuts it off")


def _stderr(line: str) -> None:
    import sys

    print(line, file=sys.stderr)


def upgrade(record: dict) -> dict:
    """Schema-1 records named a local CPU target by hostname only ("cpu:vm"), which cloud machines share
    whatever their CPU; give them the ISA tier their own host description shows, as schema 2 does."""
    from edge_emnist.device.host import isa_tier

    host = record.get("host")
    target = record.get("target") or ""
    if record.get("schema") == 1 and host and target == f"cpu:{host.get('hostname')}":
        record["target"] = f"{target}-{isa_tier(host)}"
    return record


def setting_key(record: dict) -> tuple:
    settings = record.get("settings") or {}
    return (record.get("target"), record.get("artifact"), record.get("runtime"), settings.get("threads"),
            settings.get("xnnpack"), record.get("batch"))


def latest(records: list[dict]) -> list[dict]:
    """A setting measured twice keeps its most recent record (files are appended in time order)."""
    chosen: dict[tuple, dict] = {}
    for record in records:
        if not record.get("skipped") and not record.get("failed") and not record.get("kind"):  # no profiles
            chosen[setting_key(record)] = record
    return list(chosen.values())


def failed(records: list[dict]) -> list[dict]:
    """Settings whose latest record is a failure (a later success clears it)."""
    seen: dict[tuple, dict] = {}
    for record in records:
        if not record.get("skipped"):
            seen[setting_key(record)[:5]] = record
    return [r for r in seen.values() if r.get("failed")]


def skipped(records: list[dict]) -> list[dict]:
    """The latest reason each runtime could not run (measured records of that runtime clear it)."""
    seen: dict[str, dict] = {}
    for record in records:
        if record.get("skipped"):
            seen[record.get("runtime")] = record
        elif record.get("runtime") in seen and not record.get("failed"):
            del seen[record["runtime"]]
    return list(seen.values())


def matches_target(record: dict, target: str | None) -> bool:
    """'cpu' matches 'cpu:vm'; a full label matches itself."""
    label = record.get("target") or ""
    return target is None or label == target or label.split(":", 1)[0] == target


def candidates(records: list[dict], target: str | None, threads: int | None = None) -> list[dict]:
    """Batch-1 records with an accuracy: what latency picks are made from (never emulated ones: their
    latency is the emulator's)."""
    return [r for r in latest(records)
            if r.get("batch") == 1 and r.get("accuracy") is not None and matches_target(r, target)
            and not r.get("emulated")
            and (threads is None or (r.get("settings") or {}).get("threads") == threads)]


def describe(record: dict) -> str:
    settings = record.get("settings") or {}
    extra = "" if settings.get("xnnpack", True) else ", no XNNPACK"
    return f"{record['artifact']} on {record['runtime']} ({settings.get('threads')} thread(s){extra})"


def _moment(text: str | None):
    from datetime import datetime

    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else None


def superseded(record: dict, card: dict | None) -> bool:
    """True when the record measured an earlier file than the one its card now describes: the sha256 differs
    where both are known, or (older records hold no sha256) it was recorded before the artifact was exported."""
    if not card:
        return False
    measured, current = record.get("artifact_sha256"), card.get("sha256")
    if measured and current:
        return measured != current
    recorded, exported = _moment(record.get("recorded")), _moment(card.get("exported_at"))
    return bool(recorded and exported and recorded < exported)


def drop_superseded(records: list[dict], cards: CardShelf) -> tuple[list[dict], list[dict]]:
    """(current records, superseded ones), judged by the artifacts' cards now."""
    kept, gone = [], []
    for record in records:
        name = record.get("artifact")
        (gone if name and superseded(record, cards.find(name)) else kept).append(record)
    return kept, gone


def records_or(paths: list[Path] | None, committed: Path) -> list[dict]:
    """The named record files; by default the committed one where it exists (else none)."""
    if paths is None:
        paths = [committed] if committed.exists() else []
    return load_records(paths) if paths else []


def fill_inputs(records: list[dict], cards: CardShelf, folders_of=None) -> None:
    """Give every record its artifact's input kind (device.cards.INPUTS) from its card, for records made before
    bench wrote it; None stays where no card says. `folders_of(record)`: where that record's card is, when not
    in the shelf's own folders."""
    from edge_emnist.device.cards import card_input

    for record in records:
        if not record.get("input") and record.get("artifact"):
            where = folders_of(record) if folders_of else None
            record["input"] = card_input(cards.find(record["artifact"], where))


def of_input(records: list[dict], kind: str | None) -> list[dict]:
    """The records of artifacts taking `kind` input (None: all); one whose kind no card says is kept."""
    return [r for r in records if kind is None or r.get("input") in (kind, None)]
