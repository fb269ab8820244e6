"""What `search --max-latency-ms` saves by timing each shape before training it, read from a finished study.

    EDGE_EMNIST_DATA=../shared/data edge-emnist search --trials 12 --epochs 2 --train-limit 10000 \
        --max-latency-ms 0.05 --out runs/gate
    python benchmarks/search_gate.py runs/gate [--study edgenet]

Prints, as markdown: every trial's untrained and (where trained) trained p90, their ratio (how far one graph's two
timings differ: the margin `edge_emnist.search.UNTRAINED_MARGIN` has to cover it), the training seconds each trained
trial took, the training the not-trained trials were spared (estimated at the trained trials' median: a lower bound,
the spared shapes are the big ones) and what the check itself cost (`gate_seconds`).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from edge_emnist.search import UNTRAINED_MARGIN, SearchOptions, open_study


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the search's --out folder")
    parser.add_argument("--study", default="edgenet")
    args = parser.parse_args()
    study = open_study(SearchOptions(out=args.out, study=args.study))
    rows, ratios, trained_seconds, gate, spared = [], [], [], [], 0
    for trial in study.trials:
        attrs = trial.user_attrs
        if trial.state.name != "COMPLETE" or "p90_untrained_ms" not in attrs:
            continue  # one that failed, or a trial of a search without the limit (no check before training)
        before = attrs["p90_untrained_ms"]  # set on every checked trial, trained or not
        gate.append(attrs.get("gate_seconds", 0.0))  # absent in studies from before it was kept
        if attrs.get("untrained"):
            spared += 1
            rows.append(f"| {trial.number} | {attrs['params']:,} | {before:.4f} | - | - | not trained | - |")
            continue
        metrics = json.loads((Path(attrs["run"]) / "metrics.json").read_text())
        seconds = metrics["seconds_per_epoch"] * metrics["epochs_run"]
        trained_seconds.append(seconds)
        ratios.append(trial.values[1] / before)
        rows.append(f"| {trial.number} | {attrs['params']:,} | {before:.4f} | {trial.values[1]:.4f} | "
                    f"{ratios[-1]:.3f} | {trial.values[0]:.4f} | {seconds:.0f} |")
    print("| trial | params | p90 untrained (ms) | p90 trained (ms) | trained / untrained | val | train s |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    if ratios:
        median = statistics.median(trained_seconds)
        print(f"\n{len(ratios)} trained, {spared} not trained (over {UNTRAINED_MARGIN:g}x the limit untrained); "
              f"trained/untrained p90 {min(ratios):.3f}-{max(ratios):.3f} (median {statistics.median(ratios):.3f}); "
              f"training spared: about {spared * median:.0f} s ({spared} x the trained trials' median {median:.0f} s)"
              f" of {sum(trained_seconds):.0f} s spent; the check itself (convert and time untrained) cost "
              f"{sum(gate):.0f} s over all {len(gate)} trials")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
