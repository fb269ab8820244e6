"""How far apart two timings of one search trial's model are, at `search --runs` 300 (the old default) and more.

    python benchmarks/search_timing_noise.py runs/gate2 --runs 300,3000 --repeats 5

Times every trained trial's float32 `model.tflite` in a finished search folder exactly as `search` times a trial
(LiteRT, batch 1, 1 thread, the local runner, one runner process per timing), `--repeats` times at each `--runs`,
interleaved (repeat 1 at every runs, then repeat 2, ...) so that a slow minute of the machine falls on every setting.
Prints, as markdown, each model's p90 per timing and the max/min ratio of its p90s per setting: the spread a latency
limit has to live with when a trial is timed once; then, per setting, how much an estimate made of k timings (their
median, or their lowest) still varies: k of the model's timings drawn at random 2,000 times (seed 0), the ratio of
the estimate's 90th to 10th percentile.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
from pathlib import Path

from edge_emnist.bench.suite import BenchOptions, bench


def p90(model: Path, runs: int, scratch: Path) -> float:
    """One timing, as `edge_emnist.search._time` makes it."""
    options = BenchOptions(runtimes=("litert",), threads=(1,), batches=(1,), runs=runs, warmup=min(50, runs),
                           accuracy=False, yardstick=False, results=scratch / "latency.jsonl", progress=False)
    [record] = [r for r in bench([model], options, log=lambda _: None) if r.get("latency")]
    return float(record["latency"]["p90_ms"])


def estimate_spread(values: list[float], k: int, estimate, draws: int = 2000, seed: int = 0) -> float:
    """90th / 10th percentile of `estimate` over k of `values` drawn at random (without replacement)."""
    rng = random.Random(seed)
    made = sorted(estimate(rng.sample(values, k)) for _ in range(draws))
    return made[int(0.9 * (draws - 1))] / made[int(0.1 * (draws - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="a finished search's --out folder")
    parser.add_argument("--runs", default="300,3000", help="comma list of timed runs per timing")
    parser.add_argument("--repeats", type=int, default=5, help="timings per model and runs")
    args = parser.parse_args()
    settings = [int(r) for r in args.runs.split(",")]
    models = sorted((args.out / "trials").glob("trial-*/model.tflite"))
    if not models:
        parser.error(f"no trained trial's model.tflite under {args.out / 'trials'}")
    timings: dict[tuple[Path, int], list[float]] = {(m, r): [] for m in models for r in settings}
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            for runs in settings:
                for model in models:
                    timings[model, runs].append(p90(model, runs, Path(scratch)))
            print(f"repeat {repeat + 1} of {args.repeats} done", flush=True)
    print("\n| trial | runs | p90 per timing (ms) | max / min |\n|---|---:|---|---:|")
    spreads: dict[int, list[float]] = {r: [] for r in settings}
    for model in models:
        for runs in settings:
            values = timings[model, runs]
            spreads[runs].append(max(values) / min(values))
            each = ", ".join(f"{v:.4f}" for v in values)
            print(f"| {model.parent.name} | {runs} | {each} | {spreads[runs][-1]:.2f} |")
    for runs in settings:
        print(f"\nruns {runs}: max/min of {args.repeats} timings per model, median "
              f"{statistics.median(spreads[runs]):.2f}, worst {max(spreads[runs]):.2f} over {len(models)} models")
        for name, estimate in (("median", statistics.median), ("lowest", min)):
            for k in (k for k in (1, 3, 5) if k < args.repeats):
                ratios = [estimate_spread(timings[m, runs], k, estimate) for m in models]
                print(f"  {name} of {k}: p90/p10 of the estimate {min(ratios):.2f}-{max(ratios):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
