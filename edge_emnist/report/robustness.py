"""The robustness part of the report: accuracy-vs-strength curves, the per-artifact table, and the join of
robustness records onto bench records (for the summary column and `pick --min-robust-accuracy`)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from edge_emnist.io import save_figure
from edge_emnist.robustness.conditions import DEFAULT_CONDITIONS, FAMILIES
from edge_emnist.tables import markdown_table

if TYPE_CHECKING:
    from edge_emnist.device.cards import CardShelf


def current(records: list[dict], cards: CardShelf | None = None) -> dict[str, dict]:
    """The latest robustness record of every artifact, left out where the artifact's card now names other bytes
    (it was exported again since: measure again; results.superseded judges, as for bench records)."""
    from edge_emnist.report.results import superseded

    chosen: dict[str, dict] = {}
    for record in records:
        if record.get("kind") == "robustness":
            chosen[record["artifact"]] = record
    if cards:
        chosen = {name: r for name, r in chosen.items() if not superseded(r, cards.find(name))}
    return chosen


def of(record: dict | None, robustness: dict[str, dict]) -> dict:
    """The robustness record of the very file a bench record measured (same name and sha256), or {}."""
    found = robustness.get(record.get("artifact")) if record else None
    return found if found and found.get("artifact_sha256") == record.get("artifact_sha256") else {}


def attach(bench_records: list[dict], robustness: dict[str, dict]) -> None:
    """Give bench records of the same file their artifact's robust accuracy (what `pick` constrains)."""
    for record in bench_records:
        found = of(record, robustness)
        if found:
            record["robust_accuracy"] = found.get("robust_accuracy")


def _accuracy(record: dict, family: str, strength: float) -> float | None:
    return next((c["accuracy"] for c in record["conditions"]
                 if c["family"] == family and c["strength"] == float(strength)), None)


TABLE_CONDITIONS = [*DEFAULT_CONDITIONS, ("noise", 0.2)]


def condition_label(family: str, strength: float) -> str:
    return {"rotation": f"rot {strength:+g}°", "thickness": f"stroke {strength:+g} px", "scale": f"zoom {strength:g}",
            "shift": f"shift {strength:g} px", "noise": f"noise {strength:g}"}[family]


def table(records: dict[str, dict]) -> tuple[list[str], list[list[str]]]:
    headers = ["artifact", "images (MNIST)", "clean", *(condition_label(f, s) for f, s in TABLE_CONDITIONS),
               "robust (mean)", "MNIST digits only (all classes)", "pen strokes"]
    rows = []
    for name, r in sorted(records.items()):
        mnist, strokes = r.get("mnist"), r.get("strokes")
        cells = [_accuracy(r, f, s) for f, s in TABLE_CONDITIONS]
        count = f"{r['conditions'][0]['images']:,}" + (f" ({mnist['images']:,})" if mnist else "")
        rows.append([name, count, f"{r['clean_accuracy']:.4f}", *(f"{c:.4f}" if c is not None else "-" for c in cells),
                     f"**{r['robust_accuracy']:.4f}**" if r.get("robust_accuracy") is not None else "-",
                     f"{mnist['digits_only_accuracy']:.4f} ({mnist['accuracy']:.4f})" if mnist else "-",
                     f"{strokes['accuracy']:.4f}" if strokes else "-"])
    return headers, rows


def _plotted(records: dict[str, dict]) -> list[dict]:
    """One line per architecture and kind: its float32 .tflite (solid) and most robust int8 artifact (dashed)."""
    by_arch: dict[tuple, dict[str, dict]] = defaultdict(dict)
    for r in records.values():
        if r.get("format") != "tflite":
            continue
        kind = "float32" if r.get("variant") == "fp32" and "-p" not in r["artifact"] else (
            "int8" if r.get("quantize") == "int8" else None)
        if kind is None:
            continue
        best = by_arch[(r["arch"], r["dataset"])].get(kind)
        if best is None or (r.get("robust_accuracy") or 0) > (best.get("robust_accuracy") or 0):
            by_arch[(r["arch"], r["dataset"])][kind] = r
    return [r for kinds in by_arch.values() for r in kinds.values()]


def curves(records: dict[str, dict], output: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = _plotted(records)
    if not lines:
        return None
    archs = sorted({r["arch"] for r in lines})
    colours = {a: plt.get_cmap("tab10")(i % 10) for i, a in enumerate(archs)}
    columns = 3
    rows = -(-(len(FAMILIES) + 1) // columns)  # one panel more, for the legend
    fig, grid = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows), dpi=100, sharey=True)
    axes = list(grid.ravel())
    for ax, family in zip(axes, FAMILIES.values(), strict=False):
        for r in sorted(lines, key=lambda r: (r["arch"], r["artifact"])):
            points = sorted((c["strength"], c["accuracy"]) for c in r["conditions"] if c["family"] == family.name)
            int8 = r.get("quantize") == "int8"
            ax.plot([p[0] for p in points], [100 * p[1] for p in points], "--" if int8 else "-",
                    marker="s" if int8 else "o", ms=3, color=colours[r["arch"]],
                    label=f"{r['arch']} {'int8' if int8 else 'float32'}{', augmented' if r.get('augment') else ''}")
        ax.axvline(family.identity, color="grey", lw=0.8, ls=":")
        ax.set_title(family.name)
        ax.set_xlabel(family.unit)
        ax.grid(alpha=0.3)
        ax.set_ylabel("accuracy (%)")
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes[len(FAMILIES):]:
        ax.axis("off")
    axes[len(FAMILIES)].legend(handles, labels, loc="center", frameon=False, fontsize=9)
    fig.suptitle("Accuracy under transformations of the test images (dotted: unchanged)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, output)


def section(records: dict[str, dict], out_dir: Path) -> list[str]:
    if not records:
        return []
    plot = curves(records, out_dir / "robustness.png")
    headers, rows = table(records)
    defaults = ", ".join(condition_label(f, s) for f, s in DEFAULT_CONDITIONS)
    machines = ", ".join(sorted({r["target"] for r in records.values()}))
    return ["## Robustness", "",
            "Each artifact through its own runtime on a seeded sample of its test images (the same sample for "
            "every artifact measured with the same count) under one transformation at a time; **robust** is the "
            f"mean over {defaults}. MNIST: MNIST test digits (another collection; the count in brackets), scored "
            "over the digit classes only (an app that asks for a digit; `class_groups` in the card) and over all "
            "classes. Pen strokes: characters drawn as synthetic pen paths through the demo's preprocessing. "
            f"Made by `edge-emnist robustness ARTIFACTS`; machine: {machines}.",
            "", *([f"![robustness curves]({plot.name})", ""] if plot else []), markdown_table(headers, rows), ""]
