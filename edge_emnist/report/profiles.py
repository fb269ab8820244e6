"""The per-operator part of the report: for each target, where one batch-1 inference of each artifact spends its
time, by operator type, and which operators ran outside the accelerated path (LiteRT's builtin kernels where
XNNPACK was on; CPU nodes of a GPU session)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from edge_emnist.device.formats import RUNTIMES
from edge_emnist.io import save_figure
from edge_emnist.tables import markdown_table

if TYPE_CHECKING:
    from edge_emnist.device.cards import CardShelf

HEADERS = ["artifact", "runtime", "threads", "whole inference (ms)", "bench p50 (ms)",
           "operator time by type: ms (share)", "outside the accelerated path"]
TOP_TYPES = 4


def current(records: Sequence[dict], cards: CardShelf | None = None) -> list[dict]:
    """The latest profile of every target x artifact x runtime x setting, without profiles of files exported again
    since (their card names other bytes)."""
    from edge_emnist.report.results import drop_superseded

    profiles = [r for r in records if r.get("kind") == "profile"]
    if cards:
        profiles, _ = drop_superseded(profiles, cards)
    chosen: dict[tuple, dict] = {}
    for r in profiles:
        settings = r.get("settings") or {}
        chosen[(r.get("target"), r["artifact"], r["runtime"], settings.get("threads"), settings.get("xnnpack"))] = r
    return list(chosen.values())


def by_type(record: dict) -> list[tuple[str, float, float]]:
    """(operator type, its summed ms, its share of the summed operator time), largest first."""
    totals: dict[str, float] = defaultdict(float)
    for op in record["operators"]:
        totals[op["op"]] += op["ms"]
    whole = sum(totals.values()) or 1.0
    return sorted(((op, ms, ms / whole) for op, ms in totals.items()), key=lambda item: -item[1])


def outside(record: dict) -> list[str]:
    """Operators that ran on the fallback: LiteRT builtin kernels with XNNPACK on, CPU nodes of a GPU session."""
    settings = record.get("settings") or {}
    row = RUNTIMES.get(record["runtime"])
    if row is None or row.fallback is None or not all(settings.get(option, True) for option in row.options):
        return []  # no accelerated path to fall out of (LiteRT with XNNPACK off runs every operator built in)
    field, value = row.fallback
    slow = [op["op"] for op in record["operators"] if op.get(field) == value]
    counts: dict[str, int] = defaultdict(int)
    for op in slow:
        counts[op] += 1
    return [f"{op} x{n}" if n > 1 else op for op, n in sorted(counts.items())]


def _setting(record: dict) -> tuple:
    settings = record.get("settings") or {}
    return (record.get("target"), record["artifact"], record.get("artifact_sha256"), record["runtime"],
            settings.get("threads"), settings.get("xnnpack"))


def row(record: dict, bench_p50: dict[tuple, float] | None = None) -> list[str]:
    """`bench_p50`: the unprofiled batch-1 p50 of the same file and setting on the same target, where measured."""
    p50 = (bench_p50 or {}).get(_setting(record))
    measured = f"{p50:.4f}" if p50 is not None else "-"
    if record.get("unavailable"):
        return [record["artifact"], record["runtime"], str(record["settings"].get("threads")), "-", measured,
                f"not profiled: {record['unavailable']}", "-"]
    shares = by_type(record)
    top = " · ".join(f"{op} {ms:.4f} ({share:.0%})" for op, ms, share in shares[:TOP_TYPES])
    if len(shares) > TOP_TYPES:
        top += f" · {len(shares) - TOP_TYPES} more ({sum(s for _, _, s in shares[TOP_TYPES:]):.0%})"
    slow = outside(record)
    return [record["artifact"], record["runtime"], str(record["settings"].get("threads")),
            f"{record['total_ms']:.4f}", measured, top, ", ".join(slow) if slow else "none"]


# Operator names differ by runtime (CONV_2D, Conv, QLinearConv): the plot colours them by what they compute.
FAMILIES = {
    "convolution": ("CONV_2D", "DEPTHWISE_CONV_2D", "Conv", "QLinearConv", "ConvInteger", "FusedConv"),
    "dense": ("FULLY_CONNECTED", "Gemm", "FusedGemm", "QGemm", "MatMul", "MatMulInteger", "DynamicQuantizeMatMul",
              "BATCH_MATMUL"),
    "pooling": ("AVERAGE_POOL_2D", "MAX_POOL_2D", "MEAN", "AveragePool", "MaxPool", "NhwcMaxPool", "QLinearAveragePool",
                "GlobalAveragePool", "QLinearGlobalAveragePool", "ReduceMean"),
    "activation": ("TANH", "RELU", "RELU6", "LOGISTIC", "SOFTMAX", "Tanh", "Relu", "Softmax", "QLinearSoftmax",
                   "Sigmoid"),
    "add": ("ADD", "Add", "QLinearAdd", "Sum"),
    "(de)quantize": ("QUANTIZE", "DEQUANTIZE", "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "Mul",
                     "Cast"),
    "layout": ("RESHAPE", "TRANSPOSE", "PAD", "Reshape", "Transpose", "Pad", "Flatten", "Squeeze", "Unsqueeze"),
}
FAMILY_OF = {op: family for family, ops in FAMILIES.items() for op in ops}


def plot(records: list[dict], target: str, output: Path) -> Path | None:
    """One panel per architecture, one bar per artifact x runtime: its operators' milliseconds stacked by what
    they compute, so int8 and float32 of one model compare at a glance (each panel has its own scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in records if not r.get("unavailable")]
    if not shown:
        return None
    archs = sorted({r.get("arch") or r["artifact"].split("-")[0] for r in shown})
    families = [*FAMILIES, "other"]
    colours = {f: plt.get_cmap("tab10")(i) for i, f in enumerate(families)}
    rows = {a: [r for r in shown if (r.get("arch") or r["artifact"].split("-")[0]) == a] for a in archs}
    fig, axes = plt.subplots(len(archs), 1, figsize=(10, 0.34 * len(shown) + 0.9 * len(archs) + 0.6), dpi=100,
                             gridspec_kw={"height_ratios": [len(rows[a]) + 1 for a in archs]}, squeeze=False)
    for ax, arch in zip(axes[:, 0], archs, strict=True):
        for y, r in enumerate(rows[arch]):
            spent: dict[str, float] = defaultdict(float)
            for op in r["operators"]:
                spent[FAMILY_OF.get(op["op"], "other")] += op["ms"]
            left = 0.0
            for family in families:
                ax.barh(y, spent[family], left=left, color=colours[family], label=family)
                left += spent[family]
        ax.set_yticks(range(len(rows[arch])), [f"{r['artifact']} ({r['runtime']})" for r in rows[arch]], fontsize=8)
        ax.invert_yaxis()
        ax.set_title(arch, fontsize=9, loc="left")
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel("operator time at batch 1, summed (ms; each panel its own scale)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[f]) for f in families]
    axes[0, 0].legend(handles, families, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, fontsize=8)
    fig.suptitle(f"Where the time goes on {target}", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    return save_figure(fig, output)


def section(records: Sequence[dict], out_dir: Path, cards: CardShelf | None = None,
            bench: Sequence[dict] = ()) -> list[str]:
    """`bench`: the latest bench records, for each profiled setting's unprofiled p50 beside its profiled time."""
    profiles = current(records, cards)
    if not profiles:
        return []
    bench_p50 = {_setting(r): r["latency"]["p50_ms"] for r in bench if r.get("batch") == 1}
    lines = ["## Where the time goes (per operator, batch 1)", "",
             "Made by `edge-emnist profile ARTIFACTS` on each target. ONNX Runtime: its own profiler on the optimized "
             "graph (mean kernel time per node; profiling adds overhead, so the whole inference reads slower than "
             "its bench p50, the same file and setting measured unprofiled, where there is one). LiteRT: each "
             "operator timed alone in a one-operator model with the same settings (median), which says whether "
             "XNNPACK or a builtin kernel ran it; isolated times miss fusion and add one call's overhead each. Per "
             "type: the summed time of its operators in ms, and its share of all operators' time.", ""]
    for target in sorted({r.get("target") for r in profiles}, key=str):
        mine = sorted((r for r in profiles if r.get("target") == target),
                      key=lambda r: (r["artifact"], r["runtime"], r["settings"].get("threads") or 0))
        host = next((r.get("host") for r in mine if r.get("host")), {}) or {}
        emulated = any(r.get("emulated") for r in mine)
        slug = str(target).replace(":", "-").replace("/", "-")
        picture = plot(mine, str(target), out_dir / f"profile-{slug}.png")
        lines += [f"### {target}", "",
                  f"{host.get('cpu', '?')}, ISA {' '.join(host.get('isa') or []) or 'n/a'}"
                  + (" (emulated: times are QEMU's, shares only hint at the real CPU)" if emulated else "") + ".", "",
                  *([f"![operator time on {target}]({picture.name})", ""] if picture else []),
                  markdown_table(HEADERS, [row(r, bench_p50) for r in mine]), ""]
    return lines


def describe(records: list[dict], top: int) -> list[str]:
    """`profile`'s terminal output: per profiled setting the whole inference, its `top` operators, and what ran
    outside the accelerated path."""
    lines = []
    for r in (r for r in records if r.get("kind") == "profile"):
        head = f"{r['artifact']} on {r['runtime']} ({r['settings']['threads']} thread(s)), {r['target']}"
        if r.get("unavailable"):
            lines.append(f"{head}: {r['unavailable']}")
            continue
        lines.append(f"{head}: whole inference {r['total_ms']:.4f} ms; {r['method']}")
        for op in r["operators"][:top]:
            where = op.get("kernel") or (op.get("provider") or "").replace("ExecutionProvider", "")
            lines.append(f"  {op['ms']:9.4f} ms {op['ms'] / r['operators_ms']:6.1%}  {op['op']:<18} {where:<8} "
                         f"{op['name']}")
        slow = outside(r)
        if slow:
            lines.append(f"  outside the accelerated path: {', '.join(slow)}")
    return lines
