"""The GPU part of the report: what a GPU is chosen for (throughput at large batches, launch-bound batch 1, init
time, accuracy computed on the GPU) and where each model actually ran (fully accelerated; nodes left to the
CPU). Said plainly when no GPU was measured, with the reasons the runtimes gave."""

from __future__ import annotations

from collections.abc import Sequence

from edge_emnist.device.formats import GPU_RUNTIMES, on_gpu
from edge_emnist.tables import markdown_table

BATCHES = (32, 256, 1024)
HEADERS = ["artifact", "runtime", "accuracy (on the GPU)", "init ms", "b1 p50 / p90 / p99 ms",
           *(f"b{b} img/s" for b in BATCHES), "where it ran"]
COMMAND = ("edge-emnist bench exported/*.tflite exported/*.onnx --runtime litert-gpu,ort-cuda --batch 1,32,256,1024 "
           "--results benchmarks/results/bench.jsonl")


def placement(device: dict | None) -> str:
    """'fully accelerated', or how many nodes the CPU took and which operators they were."""
    device = device or {}
    if "fully_accelerated" in device:
        return "fully accelerated" if device["fully_accelerated"] else "partly on the CPU"
    if "nodes" in device:
        if not device.get("cpu_nodes"):
            return f"all {device['nodes']} nodes on the GPU"
        return f"{device['cpu_nodes']} of {device['nodes']} nodes on the CPU ({', '.join(device.get('cpu_ops') or [])})"
    return device.get("placement_error", "-")


def rows(records: Sequence[dict], target: str) -> list[list[str]]:
    mine = [r for r in records if r.get("target") == target and on_gpu(r.get("runtime"))]
    by_setting: dict[tuple, dict[int, dict]] = {}
    for r in mine:
        by_setting.setdefault((r["artifact"], r["runtime"]), {})[r["batch"]] = r
    table = []
    for (artifact, runtime), batches in sorted(by_setting.items()):
        one = batches.get(1) or next(iter(batches.values()))
        latency = batches[1]["latency"] if 1 in batches else None
        table.append([
            artifact, runtime, f"{one['accuracy']:.4f}" if one.get("accuracy") is not None else "-",
            f"{one['init_ms']:.1f}" if one.get("init_ms") is not None else "-",
            f"{latency['p50_ms']:.4f} / {latency['p90_ms']:.4f} / {latency['p99_ms']:.4f}" if latency else "-",
            *(f"{batches[b]['throughput_ips']:,.0f}" if b in batches else "-" for b in BATCHES),
            placement(one.get("device")),
        ])
    return table


def section(current: Sequence[dict], skipped: Sequence[dict]) -> list[str]:
    """`current`: the latest measured records; `skipped`: the latest skipped record per runtime."""
    targets = sorted({r["target"] for r in current if on_gpu(r.get("runtime")) and r.get("target")})
    lines = ["## GPU", ""]
    if not targets:
        reasons = [f"- {r['runtime']}: {r['skipped']}" for r in skipped if r.get("runtime") in GPU_RUNTIMES]
        return lines + ["No GPU measurements in these records" + (": the GPU runtimes said" if reasons else "."),
                        *([""] + reasons if reasons else []), "",
                        f"On a machine with an NVIDIA GPU (docs/benchmarking.md): `{COMMAND}`.", ""]
    for target in targets:
        host = next(r.get("host") or {} for r in current if r.get("target") == target)
        lines += [f"### {target}", "",
                  f"{', '.join(host.get('gpus') or ['?'])}; host CPU {host.get('cpu', '?')}; "
                  f"onnxruntime-gpu {(host.get('versions') or {}).get('onnxruntime-gpu')}, ai-edge-litert "
                  f"{(host.get('versions') or {}).get('ai-edge-litert')}. Accuracy computed through the GPU "
                  "runtime (float16 math can change answers); throughput = batch x 1000 / mean ms.", "",
                  markdown_table(HEADERS, rows(current, target)), ""]
    return lines
