"""`edge-emnist bench`: every artifact x runtime x setting, one runner process each, results appended as JSONL.

Each setting runs in a fresh process (the same runner.py that goes to devices), so peak memory is its own
and one runtime's threads never warm another's caches. LiteRT figures are checked against Google's
`litert-benchmark`, run on the same file with the same threads.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edge_emnist.bench.runner import RUNTIME_OF_SUFFIX, SCHEMA_VERSION
from edge_emnist.errors import EdgeEmnistError
from edge_emnist.export.card import card_path

RUNNER = Path(__file__).with_name("runner.py")
CPU_RUNTIMES = ("litert", "ort")
GPU_RUNTIMES = ("ort-cuda", "ort-tensorrt", "litert-gpu")
YARDSTICK_TOLERANCE = 0.10


@dataclass
class BenchOptions:
    runtimes: tuple[str, ...] = CPU_RUNTIMES
    threads: tuple[int, ...] = (1,)
    batches: tuple[int, ...] = (1, 32)
    runs: int = 1000
    warmup: int = 50
    xnnpack: bool = True
    accuracy: bool = True
    yardstick: bool = True
    target: str | None = None  # a label for where this ran (default: cpu:<hostname>)
    results: Path = Path("benchmarks/results/bench.jsonl")

    def validate(self) -> None:
        known = CPU_RUNTIMES + GPU_RUNTIMES
        unknown = [r for r in self.runtimes if r not in known]
        if unknown:
            raise EdgeEmnistError(f"unknown runtime {unknown[0]!r}: choose from {', '.join(known)}")
        if self.runs < 1:
            raise EdgeEmnistError("--runs must be at least 1 (the headline figures want 1000 or more)")
        if min(self.threads) < 1 or min(self.batches) < 1:
            raise EdgeEmnistError("threads and batch sizes must be positive")


def read_card(artifact: Path) -> dict:
    card = card_path(artifact)
    return json.loads(card.read_text()) if card.exists() else {}


def gpu_unavailable_reason(runtime: str) -> str | None:
    """None if the GPU target can run here; else why not (reported as a skipped record, never dropped)."""
    if runtime.startswith("ort-"):
        import onnxruntime as ort

        provider = {"ort-cuda": "CUDAExecutionProvider", "ort-tensorrt": "TensorrtExecutionProvider"}[runtime]
        if provider not in ort.get_available_providers():
            return f"onnxruntime has no {provider} here (install onnxruntime-gpu on a CUDA machine)"
        return "GPU execution in bench is not implemented yet"
    return "LiteRT's GPU accelerator is not wired into the bench yet (use litert-benchmark --use_gpu on the device)"


def _test_data(cards: list[dict], data_dir, cache_dir, scratch: Path) -> dict[str, Path]:
    """One .npz of the test split per dataset the artifacts were trained on, for the runner's accuracy."""
    from edge_emnist.data import load_dataset

    files = {}
    for name in sorted({c["dataset"] for c in cards if c.get("dataset")}):
        test = load_dataset(name, data_dir, cache_dir, splits=("test",)).test
        files[name] = scratch / f"{name}.npz"
        np.savez(files[name], images=test.images, labels=test.labels)
    return files


def run_runner(artifact: Path, threads: int, options: BenchOptions, data: Path | None) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "out.json"
        command = [sys.executable, str(RUNNER), str(artifact), "--threads", str(threads),
                   "--batch", ",".join(map(str, options.batches)), "--runs", str(options.runs),
                   "--warmup", str(options.warmup), "--json", str(out)]
        if not options.xnnpack:
            command.append("--no-xnnpack")
        if data is not None:
            command += ["--data", str(data)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0 or not out.exists():
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise EdgeEmnistError(f"runner failed on {artifact.name} ({threads} threads): {tail}")
        return json.loads(out.read_text())


def litert_benchmark(artifact: Path, threads: int, runs: int, warmup: int) -> dict | None:
    """Google's own latency figure for the same file and threads (None when the tool is missing)."""
    tool = shutil.which("litert-benchmark") or str(Path(sys.executable).with_name("litert-benchmark"))
    if not Path(tool).exists():
        return None
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "lb.json"
        subprocess.run([tool, "--model", str(artifact), "--num_threads", str(threads), "--num_runs", str(runs),
                        "--warmup_runs", str(warmup), "--result_json", str(out)], capture_output=True, text=True)
        if not out.exists():
            return None
        latency = json.loads(out.read_text())["latency"]
    return {"median_ms": latency["median_ms"], "avg_ms": latency["avg_ms"], "std_ms": latency["std_ms"],
            "runs": latency["num_runs"], "resolution_ms": 0.01}


def yardstick_check(ours_p50: float, theirs_median: float, resolution: float = 0.01) -> dict:
    """Agreement within 10%, allowing for litert-benchmark printing milliseconds with two decimals."""
    difference = abs(ours_p50 - theirs_median)
    relative = difference / theirs_median if theirs_median else float("inf")
    return {"relative_difference": relative,
            "agrees": relative <= YARDSTICK_TOLERANCE or difference <= resolution / 2 + 1e-9}


def append_records(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        for record in records:
            f.write(json.dumps(record, separators=(",", ":")) + "\n")


def label_records(records: list[dict], card: dict, target: str, session: str) -> None:
    for record in records:
        record.update({
            "target": target, "session": session, "recorded": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "arch": card.get("arch"), "dataset": card.get("dataset"), "quantize": card.get("quantize"),
            "format": card.get("format"),
            "optimization": (card.get("source") or {}).get("optimization"),
            "reference_accuracy": (card.get("accuracy") or {}).get("artifact"),
        })


def bench(artifacts: list[Path], options: BenchOptions, *, data_dir=None, cache_dir=None,
          log=print) -> list[dict]:
    """Measure every applicable combination; returns the records also appended to options.results."""
    options.validate()
    for artifact in artifacts:
        if not artifact.exists():
            raise EdgeEmnistError(f"no artifact at {artifact}")
        if artifact.suffix not in RUNTIME_OF_SUFFIX:
            raise EdgeEmnistError(f"{artifact}: not a .tflite or .onnx artifact")
    cards = {a: read_card(a) for a in artifacts}
    session = time.strftime("%Y%m%dT%H%M%S")
    records: list[dict] = []
    with tempfile.TemporaryDirectory() as scratch:
        data = _test_data(list(cards.values()), data_dir, cache_dir, Path(scratch)) if options.accuracy else {}
        jobs = [(a, t) for a in artifacts for t in options.threads if RUNTIME_OF_SUFFIX[a.suffix] in options.runtimes]
        for artifact, threads in tqdm(jobs, desc="bench", unit="setting", disable=not jobs):
            card = cards[artifact]
            result = run_runner(artifact, threads, options, data.get(card.get("dataset")))
            host = result["host"]
            target = options.target or f"cpu:{host['hostname']}"
            found = result["records"]
            if options.yardstick and artifact.suffix == ".tflite" and options.xnnpack:
                theirs = litert_benchmark(artifact, threads, options.runs, options.warmup)
                for record in found:
                    if theirs and record["batch"] == 1:
                        ours = record["latency"]["p50_ms"]
                        check = yardstick_check(ours, theirs["median_ms"], theirs["resolution_ms"])
                        record["yardstick"] = {"litert_benchmark": theirs, **check}
            label_records(found, card, target, session)
            records += found
        for runtime in options.runtimes:
            if runtime in GPU_RUNTIMES:
                reason = gpu_unavailable_reason(runtime)
                skipped = {"schema": SCHEMA_VERSION, "runtime": runtime, "skipped": reason, "artifact": None}
                label_records([skipped], {}, options.target or "gpu", session)
                records.append(skipped)
                log(f"skipped {runtime}: {reason}")
    append_records(options.results, records)
    return records


def import_results(paths: list[Path], target: str | None = None) -> list[dict]:
    """Records a device wrote with `runner.py --json`, labelled with that device's own description."""
    session = time.strftime("%Y%m%dT%H%M%S")
    records = []
    for path in paths:
        try:
            payload = json.loads(Path(path).read_text())
            host, found = payload["host"], payload["records"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError):
            raise EdgeEmnistError(f"{path} is not a runner result (python runner.py ... --json FILE)") from None
        label = target or f"{host.get('machine', 'device')}:{host.get('hostname', 'unknown')}"
        for record in found:
            label_records([record], {}, label, session)
            record["imported_from"] = str(path)
        records += found
    return records
