"""`edge-emnist report`: the Markdown table and the plots people look at before choosing."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edge_emnist.device.cards import CardShelf, read_refusals
from edge_emnist.errors import EdgeEmnistError
from edge_emnist.io import atomic_path, save_figure
from edge_emnist.options import option
from edge_emnist.report import gpu, profiles, relative, robustness
from edge_emnist.report.pareto import knee, pareto_front
from edge_emnist.report.results import candidates, drop_superseded, failed, fill_inputs, latest, of_input, skipped
from edge_emnist.report.summary import HEADERS as SUMMARY_HEADERS
from edge_emnist.report.summary import INT8_HEADERS, int8_rows, summary_rows
from edge_emnist.tables import markdown_table
from edge_emnist.workspace import COMMITTED_REPORT, USER_REPORT

HEADERS = ["artifact", "runtime", "threads", "accuracy", "p50 ms", "p90 ms", "p99 ms", "mean ± std ms",
           "b32 img/s", "KiB", "gzip KiB", "peak RSS MB", "litert-benchmark p50 ms"]


def _row(record: dict, throughput: dict) -> list[str]:
    latency = record["latency"]
    settings = record.get("settings") or {}
    runtime = record["runtime"] + ("" if settings.get("xnnpack", True) else " (no XNNPACK)")
    yardstick = record.get("yardstick")
    yard = (f"{yardstick['litert_benchmark']['median_ms']:.2f} ({'agrees' if yardstick['agrees'] else 'DIFFERS'})"
            if yardstick else "")
    few = "" if latency["runs"] >= 1000 else f" ({latency['runs']} runs)"
    b32 = throughput.get((record["artifact"], record["runtime"], settings.get("threads"), settings.get("xnnpack")))
    return [record["artifact"], runtime, str(settings.get("threads")), f"{record['accuracy']:.4f}",
            f"{latency['p50_ms']:.4f}{few}", f"{latency['p90_ms']:.4f}", f"{latency['p99_ms']:.4f}",
            f"{latency['mean_ms']:.4f} ± {latency['std_ms']:.4f}", f"{b32:,.0f}" if b32 else "",
            f"{record['size_bytes'] / 1024:.0f}", f"{record['gzip_bytes'] / 1024:.0f}",
            f"{record['memory']['peak_rss_mb']:.0f}", yard]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def made_for_the_edge(record: dict) -> bool:
    """A network made for the target (the parametric edgenet family, or one narrowed by structured pruning) rather
    than one of the study's hand-made networks and their magnitude-pruned or quantized files: the report draws
    the study's own front beside the front with these."""
    from edge_emnist.models import model_entry

    pruning = ((record.get("optimization") or {}).get("pruning") or {})
    if pruning.get("structured"):
        return True
    try:
        return model_entry(record.get("arch") or "").family
    except EdgeEmnistError:  # an architecture this version does not know
        return False


def front_comparison(points: list[dict]) -> list[str]:
    """One line: the best accuracy of the study's networks' front and of the whole front, where both exist."""
    family = [p for p in points if made_for_the_edge(p)]
    reference = [p for p in points if not made_for_the_edge(p)]
    if not family or not reference:
        return []
    new = [p for p in pareto_front(points) if made_for_the_edge(p)]
    return [f"Networks made for the edge (edgenet, structured pruning) are {len(family)} of the {len(points)} points "
            f"and {len(new)} of the {len(pareto_front(points))} front points; the study's networks alone: "
            f"{', '.join(p['artifact'] + ' (' + p['runtime'] + ')' for p in pareto_front(reference))}.", ""]


def pareto_plot(points: list[dict], target: str, output: Path) -> Path:
    plt = _plt()
    front = pareto_front(points)
    best = knee(front)
    # The key of front points sits under the axes, the width of the figure: long names never cover data, and the
    # plot keeps the figure's width however long they are.
    key = [f"{n}  {p['artifact']} ({p['runtime']}, {p['settings'].get('threads')}t)" for n, p in enumerate(front, 1)]
    key_height = 0.13 * (len(key) + 1.5)
    fig = plt.figure(figsize=(10, 4.6 + key_height), dpi=110)
    grid = fig.add_gridspec(2, 1, height_ratios=[4.6, key_height])
    ax, key_ax = fig.add_subplot(grid[0]), fig.add_subplot(grid[1])
    by_runtime = defaultdict(list)
    for p in points:
        by_runtime[p["runtime"]].append(p)
    for (runtime, group), marker in zip(sorted(by_runtime.items()), "os^Dv", strict=False):
        ax.scatter([p["latency"]["p90_ms"] for p in group], [100 * p["accuracy"] for p in group], marker=marker,
                   s=40, alpha=0.8, label=runtime, zorder=3)
    reference = [p for p in points if not made_for_the_edge(p)]
    if reference and len(reference) < len(points):  # the study's networks' own front, beside the one with the family
        old = pareto_front(reference)
        ax.plot([p["latency"]["p90_ms"] for p in old], [100 * p["accuracy"] for p in old], ":", color="tab:brown",
                lw=1.2, label="front of the study's networks", zorder=2)
    ax.plot([p["latency"]["p90_ms"] for p in front], [100 * p["accuracy"] for p in front], "--", color="grey",
            lw=1, label="Pareto front" + (" (all)" if reference and len(reference) < len(points) else ""), zorder=2)
    ax.scatter([best["latency"]["p90_ms"]], [100 * best["accuracy"]], s=180, facecolors="none",
               edgecolors="crimson", lw=1.5, label="knee", zorder=4)
    # Front points get a number up and to the left of the marker (clear of the knee's ring, drawn around the point).
    for numbers, (x, y) in _label_groups(front):  # points that would print on top of each other share a label
        ax.annotate(",".join(map(str, numbers)), (x, y), textcoords="offset points", xytext=(-9, 7), ha="right",
                    fontsize=8, fontweight="bold", zorder=5,
                    bbox={"boxstyle": "round,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.8})
    key_ax.axis("off")
    key_ax.text(0.0, 1.0, "Pareto front:\n" + "\n".join(key), transform=key_ax.transAxes, ha="left", va="top",
                fontsize=7, family="monospace")
    ax.set_xscale("log")
    ax.margins(x=0.25, y=0.1)
    ax.set_xlabel("p90 latency at batch 1 (ms, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"Accuracy vs latency on {target}", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return save_figure(fig, output)


def _label_groups(front: list[dict], dx: float = 0.08, dy: float = 0.2) -> list[tuple[list[int], tuple]]:
    """Front points numbered from 1, grouped when closer than `dx` decades of latency and `dy` accuracy
    points to the previous one: one label per group, at its first point."""
    groups: list[tuple[list[int], tuple]] = []
    last = None
    for number, p in enumerate(front, 1):
        x, y = p["latency"]["p90_ms"], 100 * p["accuracy"]
        if last and abs(math.log10(x) - math.log10(last[0])) < dx and abs(y - last[1]) < dy:
            groups[-1][0].append(number)
        else:
            groups.append(([number], (x, y)))
        last = (x, y)
    return groups


def size_plot(records: list[dict], output: Path) -> Path:
    plt = _plt()
    sizes = {r["artifact"]: (r["size_bytes"] / 1024, r["gzip_bytes"] / 1024) for r in records}
    names = sorted(sizes, key=lambda n: sizes[n][0])
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(names) + 1.2), dpi=110)
    y = range(len(names))
    ax.barh([i + 0.2 for i in y], [sizes[n][0] for n in names], height=0.4, label="raw")
    ax.barh([i - 0.2 for i in y], [sizes[n][1] for n in names], height=0.4, label="gzip -9")
    ax.set_yticks(list(y), names, fontsize=7)
    ax.set_xscale("log")  # 50 KiB beside 90 MB: on a linear axis the small models' bars vanish
    ax.set_xlabel("KiB (log scale)")
    ax.set_title("Artifact size", fontsize=10)
    ax.legend(frameon=False, fontsize=8)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return save_figure(fig, output)


def _machines(points: list[dict]) -> list[str]:
    """The CPU, OS and runtime versions behind a target's points: a target is an ISA tier, so its records can come
    from several sessions, machines and releases, and the section says which measured what (with dates) where they
    differ, instead of naming one record's host as everyone's."""
    dates_by_machine: dict[str, list[str]] = defaultdict(list)
    for record in points:
        host = record["host"]
        versions = host.get("versions") or {}
        machine = (f"{host['cpu']}, {host['cores']} cores, ISA {' '.join(host['isa']) or 'n/a'}; {host['os']}; "
                   f"ai-edge-litert {versions.get('ai-edge-litert')}, onnxruntime {versions.get('onnxruntime')}")
        dates_by_machine[machine].append((record.get("recorded") or "")[:10])
    if len(dates_by_machine) == 1:
        return [f"{next(iter(dates_by_machine))}."]
    lines = []
    for machine, dates in sorted(dates_by_machine.items(), key=lambda kv: min(kv[1])):
        known = sorted(date for date in dates if date)
        span = "" if not known else f", {known[0]}" if known[0] == known[-1] else f", {known[0]} to {known[-1]}"
        lines.append(f"- {machine} ({len(dates)} of the {len(points)} points{span})")
    return ["Measured on:", "", *lines]


def _summary_section(records: list[dict], target: str, cards: CardShelf,
                     robustness: dict[str, dict]) -> list[str]:
    rows = summary_rows(records, target, cards, robustness)
    if not rows:
        return []
    lines = ["Per network (an architecture, or one shape of a family), at batch 1 and 1 thread (float32: its most "
             "accurate float32 file, int8: its most accurate int8 file measured; parameters, MACs and s/epoch from "
             "the float32 artifact's card and its training run):", "",
            markdown_table(SUMMARY_HEADERS, rows), ""]
    changes = int8_rows(records, target)
    if changes:
        lines += ["int8 against the float32 export of the same trained model (test accuracy through each "
                  "artifact's runtime, 1 thread):", "", markdown_table(INT8_HEADERS, changes), ""]
    return lines


def _accuracy_by_target(records: list[dict]) -> list[str]:
    """Each artifact's accuracy on every target it ran on (emulated ones included): the same file should
    score the same everywhere; a difference is a kernel that computes differently there."""
    table: dict[str, dict[str, dict]] = defaultdict(dict)
    for r in latest(records):
        if r.get("batch") == 1 and r.get("accuracy") is not None:
            table[r["artifact"]][r["target"]] = r
    targets = sorted({t for row in table.values() for t in row})
    if len(targets) < 2:
        return []
    rows = [[name] + [_accuracy_cell(row[t]) if t in row else "" for t in targets]
            for name, row in sorted(table.items()) if len(row) > 1]
    if not rows:
        return []
    return ["## Accuracy on every target", "", "Test accuracy (test images used) of each artifact measured on more "
            "than one target. Emulated targets (qemu-*) run the artifact on that CPU's own kernels under QEMU: their "
            "answers count, their latency does not. Full-split and subset figures differ by sampling; the answers "
            "themselves are held against those the card kept at export on the first test images (\"same answers\", "
            "or how many of them differ; records from before 2026-12-07 say nothing) and checked by the tests.", "",
            markdown_table(["artifact", *targets], rows), ""]


def _accuracy_cell(record: dict) -> str:
    answers = record.get("answers")
    said = ("" if not answers else "; same answers" if not answers["differ"] else
            f"; {answers['differ']} of {answers['images']:,} answers differ")
    return f"{record['accuracy']:.4f} ({record['test_images']:,}{said})"


REFUSED_HEADERS = ["artifact", "top-1 agreement", "bar", "disagreements (ties)", "max output difference",
                   "checked on"]


def _refused_section(card_dirs: Sequence[Path]) -> list[str]:
    """Artifacts the export refused (parity below the bar): not shipped, not measured, but never silent."""
    rows = []
    for folder in card_dirs:
        for record in read_refusals(folder):
            check = record["parity"]
            where = "; ".join(f"{c.get('cpu')} ({' '.join(c.get('isa') or [])})" for c in check.get("checked_on", []))
            rows.append([record["artifact"], f"{check['top1_agreement']:.4%}",
                         f"{check['required_top1_agreement']:.1%}",
                         f"{check['disagreements']} ({check['disagreements_tied']})", f"{check['max_abs_diff']:.3g}",
                         where])
    if not rows:
        return []
    return ["## Refused at export", "", "Top-1 agreement with the Keras model on the test split below the "
            "parity bar: the export wrote nothing for these.", "", markdown_table(REFUSED_HEADERS, rows), ""]


@dataclass
class ReportOptions:
    out: Path = option(USER_REPORT, shown=f"{USER_REPORT}/ (the committed report is {COMMITTED_REPORT}/)",
                       help="folder for report.md and its plots")
    exported: tuple[Path, ...] = option((Path("exported"),), type=Path, nargs="+", metavar="DIR", shown="exported/",
                                  help="folders holding the artifacts' model cards, searched in order, for the "
                                       "per-architecture summary")
    reference: str = option(relative.REFERENCE, metavar="ARTIFACT",
                            help="latency budgets are read as multiples of this file's p90 in the same bench call")


def write_report(records: list[dict], out_dir: Path, command: str = "",
                 card_dirs: Sequence[Path] = (Path("exported"),), robustness_records: Sequence[dict] = (),
                 profile_records: Sequence[dict] = (), beside: relative.Beside | None = None,
                 reference: str = ReportOptions.reference) -> Path:
    """`beside`: relative.Beside of every record (older calls included), for the section that reads each point's
    latency as a multiple of `reference` timed beside it, and its range over calls; None leaves that section out."""
    cards = CardShelf(card_dirs)  # every section asks its questions of these cards, each read once
    records, replaced = drop_superseded(records, cards)  # measurements of files exported again since
    fill_inputs(records, cards)
    robust = robustness.current(list(robustness_records), cards)
    current = latest(records)
    targets = sorted({r["target"] for r in current})
    lines = ["# Benchmark report", ""]
    if command:
        lines += [f"Made by `{command}`.", ""]
    for target in targets:
        listed = candidates(records, target)
        if not listed:
            continue
        # the front, its plot and the budgets compare networks as trained; app-ready RGB twins are in the table
        points = of_input(listed, "grey") or listed
        twins = len(listed) - len(points)
        throughput = {(r["artifact"], r["runtime"], r["settings"].get("threads"), r["settings"].get("xnnpack")):
                      r["throughput_ips"] for r in current if r["target"] == target and r["batch"] == 32}
        slug = target.replace(":", "-").replace("/", "-")
        pareto_plot(points, target, out_dir / f"pareto-{slug}.png")
        front = pareto_front(points)
        best = knee(front)
        by_latency = sorted(listed, key=lambda r: r["latency"]["p90_ms"])
        lines += [
            f"## {target}", "",
            *_machines(points),
            "", f"![accuracy vs latency](pareto-{slug}.png)", "",
            *_summary_section(records, target, cards, robust),
            f"Pareto front: {', '.join(p['artifact'] + ' (' + p['runtime'] + ')' for p in front)}. "
            f"Knee: **{best['artifact']}** on {best['runtime']}.", "",
            *front_comparison(points),
            *(relative.section(points, beside, reference) if beside else []),
            *([f"The front, the plot and the budgets above leave out {twins} settings of app-ready RGB-input twins "
               "(`export --input rgb`: the same networks with a colour-to-grey step inside); the table lists them, "
               "`pick --input rgb` chooses among them.", ""] if twins else []),
            "Latency at batch 1; accuracy on the full test split through the artifact's runtime.", "",
            markdown_table(HEADERS, [_row(r, throughput) for r in by_latency]),
            "",
        ]
    lines += gpu.section(current, skipped(records))
    lines += _accuracy_by_target(records)
    lines += robustness.section(robust, out_dir)
    lines += profiles.section(profile_records, out_dir, cards, bench=current)
    gone = skipped(records)
    if gone:
        lines += ["## Skipped targets", ""] + [f"- {r['runtime']}: {r['skipped']}" for r in gone] + [""]
    broken = failed(records)
    if broken:
        lines += ["## Failed measurements", ""] + [
            f"- {r['artifact']} on {r['runtime']} ({(r.get('settings') or {}).get('threads')} thread(s), "
            f"{r.get('target')}): {r['failed']}" for r in broken] + [""]
    lines += _refused_section(card_dirs)
    if replaced:
        names = sorted({r["artifact"] for r in replaced})
        lines += ["## Superseded measurements", "", f"{len(replaced)} settings (the latest record of each) measured "
                  f"earlier versions of {len(names)} artifacts that were exported again since (their cards' sha256 or "
                  f"export time says so); they are left out above: {', '.join(names)}.", ""]
    if current:
        size_plot(current, out_dir / "sizes.png")
        lines += ["## Sizes", "", "![artifact sizes](sizes.png)", ""]
    output = out_dir / "report.md"
    with atomic_path(output) as tmp:
        tmp.write_text("\n".join(lines))
    return output
