"""Measure one artifact on this machine: latency, throughput, accuracy, memory, and what the machine is.

Self-contained on purpose: it needs Python 3.9+, numpy and ai-edge-litert or onnxruntime, plus the other
files of `edge_emnist.device.RUNNER_FILES` beside it. `edge-emnist bench` runs it in a fresh process per
setting (so peak memory is the setting's own) and copies those files to devices over SSH; on a device
without SSH (Android under Termux) copy them and run it by hand:

    python runner.py model.tflite --threads 1,2 --batch 1,32 --json out.json
    edge-emnist bench --import out.json        # back on the workstation
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

try:
    from edge_emnist.device import records
    from edge_emnist.device.files import file_sizes, sha256_file
    from edge_emnist.device.formats import RUNTIME_OF_SUFFIX, RUNTIMES, on_gpu, runtimes_for, settings
    from edge_emnist.device.host import host_description, load_average
    from edge_emnist.device.profiles import ProfileUnavailable, placement, profile
    from edge_emnist.device.records import BUSY_SPREAD, DEFAULT_BATCHES, DEFAULT_RUNS, DEFAULT_WARMUP, SCHEMA_VERSION
    from edge_emnist.device.runtimes import accuracy, open_artifact, unavailable_reason
except ImportError:  # copied to a device beside the other RUNNER_FILES
    import records  # type: ignore[no-redef]
    from files import file_sizes, sha256_file  # type: ignore[no-redef]
    from formats import RUNTIME_OF_SUFFIX, RUNTIMES, on_gpu, runtimes_for, settings  # type: ignore[no-redef]
    from host import host_description, load_average  # type: ignore[no-redef]
    from profiles import ProfileUnavailable, placement, profile  # type: ignore[no-redef]
    from records import BUSY_SPREAD, DEFAULT_BATCHES, DEFAULT_RUNS, DEFAULT_WARMUP, SCHEMA_VERSION  # type: ignore[no-redef]
    from runtimes import accuracy, open_artifact, unavailable_reason  # type: ignore[no-redef]

def _rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def percentiles_ms(samples_ns: list[int]) -> dict:
    ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
    p50, p99 = float(np.percentile(ms, 50)), float(np.percentile(ms, 99))
    return {
        "mean_ms": float(ms.mean()), "std_ms": float(ms.std()),
        "p50_ms": p50, "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": p99, "min_ms": float(ms.min()), "runs": len(samples_ns),
        "spread_p99_p50": p99 / p50 if p50 > 0 else None,
    }


def time_runs(run, x: np.ndarray, runs: int, warmup: int) -> list[int]:
    for _ in range(warmup):
        run(x)
    samples = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        run(x)
        samples.append(time.perf_counter_ns() - start)
    return samples


def measure(path: Path, *, threads: int, batches: list[int], runs: int, warmup: int, xnnpack: bool = True,
            images: np.ndarray | None = None, labels: np.ndarray | None = None,
            runtime: str | None = None, answers: int = 0) -> list[dict]:
    """One record per batch size for one artifact x runtime x thread setting. `answers`: the records also carry
    the top-1 answers on the first that many images (`answers_top1`, records.encode_top1), which bench holds
    against the ones the card kept at export and then drops."""
    runtime = runtime or RUNTIME_OF_SUFFIX[path.suffix]
    baseline = _rss_mb()
    options = settings(runtime, threads, xnnpack=xnnpack)
    started = time.perf_counter_ns()
    try:
        model = open_artifact(path, runtime, **options)
    except Exception as error:
        if on_gpu(runtime):  # no usable GPU (a loader without a device, a driver too old): a fact
            raise RuntimeUnavailable(f"{runtime} could not start here (no usable GPU or driver?): "
                                     f"{_all_lines(error)}") from error
        raise
    init_ms = (time.perf_counter_ns() - started) / 1e6
    rng = np.random.default_rng(0)
    sample = images[:1] if images is not None else rng.random((1, 28, 28, 1), dtype=np.float32)
    x1 = model.to_input(sample.astype(np.float32))
    started = time.perf_counter_ns()
    model.run_raw(x1)
    first_ms = (time.perf_counter_ns() - started) / 1e6

    acc = top1 = None
    if images is not None and labels is not None:
        probabilities = model.predict(images, batch_size=256)
        acc = accuracy(probabilities, labels)
        top1 = records.encode_top1(probabilities[:answers].argmax(-1)) if answers else None
    sizes = file_sizes(path)
    common = {
        "schema": SCHEMA_VERSION,
        "artifact": path.name,
        "artifact_sha256": sha256_file(path),
        "runtime": runtime,
        "settings": options,
        "accuracy": acc,
        "test_images": None if labels is None else int(len(labels)),
        "size_bytes": sizes["bytes"],
        "gzip_bytes": sizes["gzip_bytes"],
        "init_ms": init_ms,
        "first_inference_ms": first_ms,
        # GPU runtimes: computed on the GPU (accuracy too), and whether every operator ran there
        **({"device": device_info(model, path, runtime, threads)} if on_gpu(runtime) else {}),
        **({"answers_top1": top1} if top1 else {}),
    }
    rows = []
    for batch in batches:
        pool = images if images is not None and len(images) >= batch else rng.random((batch, 28, 28, 1),
                                                                                        dtype=np.float32)
        x = model.to_input(pool[:batch].astype(np.float32))
        count = runs if batch == 1 else max(50, runs // batch)
        load_before = load_average()
        latency = percentiles_ms(time_runs(model.run_raw, x, count, warmup))
        spread = latency["spread_p99_p50"]
        rows.append({**common, "batch": batch, "latency": latency,
                     "throughput_ips": batch * 1000 / latency["mean_ms"],
                     "load": {"before": load_before, "after": load_average(), "cores": os.cpu_count()},
                     "busy": spread is not None and spread > BUSY_SPREAD})
    peak = _rss_mb()
    for record in rows:
        record["memory"] = {"baseline_rss_mb": baseline, "peak_rss_mb": peak}
    return rows


def device_info(model, path: Path, runtime: str, threads: int) -> dict:
    """Where a GPU runtime ran the model: LiteRT says whether it was fully accelerated; an ONNX Runtime session
    says which nodes fell back to the CPU (its profiler names each node's provider)."""
    if hasattr(model, "device_info"):
        return model.device_info()
    try:
        return {"accelerator": "gpu", **placement(path, runtime, threads)}
    except Exception as error:  # the placement is a detail: its failure never costs the measurement
        return {"accelerator": "gpu", "placement_error": _first_line(error)}


class RuntimeUnavailable(RuntimeError):
    """The runtime cannot run on this machine at all (not: this artifact failed on it)."""


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _all_lines(error: BaseException, limit: int = 300) -> str:
    """Native errors spread their reason over several lines (LiteRT: "ERROR: [file:line]\n└ ERROR: ...")."""
    text = " / ".join(line.strip(" └") for line in str(error).strip().splitlines() if line.strip(" └"))
    return (text or type(error).__name__)[:limit]


def _int_list(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure .tflite/.onnx artifacts on this machine (edge-emnist).")
    parser.add_argument("artifacts", nargs="+", type=Path)
    parser.add_argument("--threads", type=_int_list, default=[1], help="comma list (default: 1)")
    parser.add_argument("--batch", type=_int_list, default=list(DEFAULT_BATCHES),
                        help=f"comma list (default: {','.join(map(str, DEFAULT_BATCHES))})")
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS,
                        help=f"timed runs at batch 1 (default: {DEFAULT_RUNS})")
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP,
                        help=f"untimed runs first (default: {DEFAULT_WARMUP})")
    parser.add_argument("--no-xnnpack", action="store_true", help="LiteRT builtin kernels only")
    parser.add_argument("--runtime", default="", help=f"comma list of {', '.join(RUNTIMES)}: each artifact runs on "
                                                      "those that take its format (default: its CPU runtime)")
    parser.add_argument("--data", type=Path, help=".npz with images (uint8 N x 28 x 28) and labels: adds accuracy")
    parser.add_argument("--answers", type=int, default=0, metavar="N",
                        help="with --data: the records also carry the top-1 answers on its first N images")
    parser.add_argument("--json", type=Path, help="write {host, records} here (default: print)")
    parser.add_argument("--profile", action="store_true",
                        help="instead of measuring: time every operator at batch 1 (one `profile` record per artifact, "
                             "runtime and thread count; see profiles.py for the method per runtime)")
    parser.add_argument("--predictions", type=Path, metavar="NPY",
                        help="instead of measuring: write the one artifact's class probabilities on --data's images "
                             "(float32, N x classes) here, to compare the answers of two machines")
    args = parser.parse_args(argv)

    images = labels = None
    if args.data:
        with np.load(args.data) as data:
            images = data["images"][..., None].astype(np.float32) / 255.0
            labels = data["labels"]
    if args.predictions:
        if images is None or len(args.artifacts) != 1:
            print("runner: --predictions needs --data and exactly one artifact", file=sys.stderr)
            return 2
        probabilities = open_artifact(args.artifacts[0], threads=args.threads[0]).predict(images)
        np.save(args.predictions, probabilities.astype(np.float32))
        print(json.dumps({"host": host_description(), "images": len(images)}))
        return 0
    host = host_description()
    wanted = tuple(r for r in args.runtime.split(",") if r)
    unknown = [r for r in wanted if r not in RUNTIMES]
    if unknown:
        print(f"runner: unknown runtime {unknown[0]} (choose from {', '.join(RUNTIMES)})", file=sys.stderr)
        return 2
    results = []
    skipped = {r: unavailable_reason(r) for r in wanted}
    for runtime, reason in skipped.items():
        if reason:  # said once per runtime, from the machine itself
            results.append(records.skipped(runtime, reason))
    for path in args.artifacts:
        if path.suffix not in RUNTIME_OF_SUFFIX:
            print(f"runner: {path}: not a .tflite or .onnx file", file=sys.stderr)
            return 2
        runtimes = runtimes_for(path.suffix, wanted) if wanted else [RUNTIME_OF_SUFFIX[path.suffix]]
        for runtime in runtimes:
            for threads in args.threads:
                if skipped.get(runtime):  # said once above or at its first failed start: not tried again
                    break
                try:
                    if args.profile:
                        results.append({**profile(path, runtime, threads=threads, runs=args.runs, warmup=args.warmup,
                                                  xnnpack=not args.no_xnnpack), "artifact_sha256": sha256_file(path)})
                    else:
                        results += measure(path, threads=threads, batches=args.batch, runs=args.runs,
                                           warmup=args.warmup, xnnpack=not args.no_xnnpack, images=images,
                                           labels=labels, runtime=runtime, answers=args.answers)
                except ProfileUnavailable as error:
                    results.append(records.profile_unavailable(path.name, runtime, threads, str(error)))
                except RuntimeUnavailable as error:
                    skipped[runtime] = str(error)
                    results.append(records.skipped(runtime, str(error)))
                except Exception as error:  # one broken artifact costs only its own records
                    reason = _first_line(error)
                    print(f"runner: {path.name} on {runtime}: {reason}", file=sys.stderr)
                    results.append(records.failed(path.name, runtime, threads, reason))
    for record in results:
        record["host"] = host
    text = json.dumps({"host": host, "records": results}, indent=1)
    if args.json:
        tmp = args.json.with_name(f".tmp-{args.json.name}")
        tmp.write_text(text)
        os.replace(tmp, args.json)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
