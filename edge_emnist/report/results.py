"""Reading benchmark records back: the latest measurement of every setting, grouped by target."""

from __future__ import annotations

import json
from pathlib import Path

from edge_emnist.errors import EdgeEmnistError


def load_records(paths: list[Path]) -> list[dict]:
    records = []
    for path in paths:
        if not path.exists():
            raise EdgeEmnistError(f"no benchmark results at {path} (run `edge-emnist bench` first)")
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    raise EdgeEmnistError(f"{path}:{number} is not a JSON record") from None
    return records


def setting_key(record: dict) -> tuple:
    settings = record.get("settings") or {}
    return (record.get("target"), record.get("artifact"), record.get("runtime"), settings.get("threads"),
            settings.get("xnnpack"), record.get("batch"))


def latest(records: list[dict]) -> list[dict]:
    """A setting measured twice keeps its most recent record (files are appended in time order)."""
    chosen: dict[tuple, dict] = {}
    for record in records:
        if not record.get("skipped"):
            chosen[setting_key(record)] = record
    return list(chosen.values())


def skipped(records: list[dict]) -> list[dict]:
    seen: dict[tuple, dict] = {}
    for record in records:
        if record.get("skipped"):
            seen[(record.get("target"), record.get("runtime"))] = record
    return list(seen.values())


def matches_target(record: dict, target: str | None) -> bool:
    """'cpu' matches 'cpu:vm'; a full label matches itself."""
    label = record.get("target") or ""
    return target is None or label == target or label.split(":", 1)[0] == target


def candidates(records: list[dict], target: str | None, threads: int | None = None) -> list[dict]:
    """Batch-1 records with an accuracy: what latency picks are made from."""
    return [r for r in latest(records)
            if r.get("batch") == 1 and r.get("accuracy") is not None and matches_target(r, target)
            and (threads is None or (r.get("settings") or {}).get("threads") == threads)]


def describe(record: dict) -> str:
    settings = record.get("settings") or {}
    extra = "" if settings.get("xnnpack", True) else ", no XNNPACK"
    return f"{record['artifact']} on {record['runtime']} ({settings.get('threads')} thread(s){extra})"
