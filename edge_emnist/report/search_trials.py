"""A search's trials at a glance: validation accuracy against p90 for every trial, with its front and limits
(OUT/trials.png), and one row per trial (OUT/trials.csv) for a spreadsheet; both rewritten after every search call.

Rows are plain dicts (search.trial_rows makes them from the Optuna study), so this module needs no Optuna."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from edge_emnist.io import atomic_path, save_figure

SHAPE_COLUMNS = ("width", "depths", "kernels", "separable", "head", "pool", "stem_stride")
DISTILL_COLUMNS = ("temperature", "soft_weight")
# p90_ms is the lowest of the trial's timings (`search --timings`); the *_each_ms columns hold every one of them
COLUMNS = ("trial", "state", "val_accuracy", "p90_ms", "p90_untrained_ms", "p90_each_ms", "p90_untrained_each_ms",
           "params", "trained", "within_limits", "on_front", *SHAPE_COLUMNS, *DISTILL_COLUMNS, "target", "run")


def write_trials_csv(rows: list[dict], path: Path) -> Path:
    """One line per trial, in trial order; sequences (depths, kernels) as "1,2,2"."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            flat = {**row, **(row.get("shape") or {}), **(row.get("distill") or {})}
            writer.writerow({column: _cell(flat.get(column)) for column in COLUMNS})
    return path


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ",".join(map(_cell, value))
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def plot_trials(rows: list[dict], path: Path, *, title: str, max_latency_ms: float | None = None,
                min_accuracy: float | None = None) -> Path | None:
    """Every finished trial as a point (p90 on a log axis), the front joined and numbered, trials that break a limit
    greyed, shapes not trained (over the latency limit before training) as marks along the bottom; None when no
    trial finished."""
    done = [r for r in rows if r["state"] == "COMPLETE"]
    if not done:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(10, 5), dpi=110)
    trained = [r for r in done if r["trained"]]
    within = [r for r in trained if r["within_limits"]]
    outside = [r for r in trained if not r["within_limits"]]
    front = sorted((r for r in trained if r["on_front"]), key=lambda r: r["p90_ms"])
    ax.scatter([r["p90_ms"] for r in within], [r["val_accuracy"] for r in within], s=24, color="tab:blue",
               label=f"trained, within the limits ({len(within)})", zorder=2)
    if outside:
        ax.scatter([r["p90_ms"] for r in outside], [r["val_accuracy"] for r in outside], s=24, marker="x",
                   color="grey", label=f"trained, breaks a limit ({len(outside)})", zorder=2)
    if front:
        ax.plot([r["p90_ms"] for r in front], [r["val_accuracy"] for r in front], "-o", color="tab:orange",
                markersize=6, label=f"front ({len(front)})", zorder=3)
        for r in front:
            ax.annotate(str(r["trial"]), (r["p90_ms"], r["val_accuracy"]), textcoords="offset points",
                        xytext=(4, 4), fontsize=8)
    untrained = [r for r in done if not r["trained"]]
    if untrained:  # accuracy unknown: marks along the bottom edge, at their untrained p90
        ax.plot([r["p90_ms"] for r in untrained], [0.02] * len(untrained), "v", color="tab:red", alpha=0.6,
                transform=ax.get_xaxis_transform(), label=f"not trained: over the limit untrained ({len(untrained)})")
    if max_latency_ms:
        ax.axvline(max_latency_ms, color="tab:red", linestyle="--", linewidth=1, label="--max-latency-ms")
    if min_accuracy is not None:
        ax.axhline(min_accuracy, color="tab:purple", linestyle="--", linewidth=1, label="--min-accuracy")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(  # 2 and 5 of each decade: enough to read
        lambda value, _: f"{value:g}" if round(value / 10 ** math.floor(math.log10(value))) in (2, 5) else ""))
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel("p90 latency at batch 1 on the target (ms, log scale)")
    ax.set_ylabel("validation accuracy after the trial's brief training")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the axes: it hides no trial
    fig.tight_layout()
    return save_figure(fig, path)
