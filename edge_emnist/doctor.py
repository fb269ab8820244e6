"""`edge-emnist doctor`: one screen saying what this machine can do, and why not where it cannot.

Everything here is looked up, never imported heavily: no TensorFlow, no model, a second or two at most.
"""

from __future__ import annotations

import ctypes.util
import importlib.util
import os
import shutil
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from edge_emnist.device.runner import host_description, isa_tier
from edge_emnist.targets.qemu import EMULATED_CPUS, missing, tools_dir

# What the int8-relevant ISA tier means for the artifacts this project makes.
INT8_NOTES = {
    "amx": "AMX and AVX-512 VNNI: int8 matrix units; ONNX Runtime and XNNPACK int8 kernels are exact",
    "avx512vnni": "AVX-512 VNNI: exact int8 dot products (vpdpbusd) in ONNX Runtime and XNNPACK",
    "avxvnni": "AVX-VNNI: exact int8 dot products (vpdpbusd, 256-bit)",
    "avx512": "AVX-512 without VNNI: ONNX Runtime's uint8 x int8 kernels saturate; edge-emnist's uint8 ONNX is exact",
    "avx2": "AVX2 without VNNI: ONNX Runtime's uint8 x int8 kernels saturate (vpmaddubsw); edge-emnist's uint8 "
            "ONNX is exact here",
    "i8mm": "ARM i8mm and dotprod: exact int8 matrix kernels (smmla, sdot)",
    "dotprod": "ARM dotprod: exact int8 dot products (sdot)",
    "neon": "ARM NEON without dotprod: exact but slower int8 (smlal)",
}


@dataclass
class Line:
    what: str
    ok: bool
    detail: str


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def machine_lines() -> list[Line]:
    host = host_description()
    tier = isa_tier(host)
    return [
        Line("CPU", True, f"{host['cpu']}, {host['cores']} cores, {host['machine']}; ISA "
                          f"{' '.join(host['isa']) or 'n/a'}"),
        Line("int8 kernels", True, INT8_NOTES.get(tier, f"{tier}: no int8-specific instructions known")),
        Line("bench target", True, f"records from here are labelled cpu:{host['hostname']}-{tier}"),
    ]


def runtime_lines() -> list[Line]:
    lines = []
    litert = _version("ai-edge-litert")
    lines.append(Line("LiteRT (CPU, XNNPACK)", bool(litert), litert or "not installed: pip install ai-edge-litert"))
    spec = importlib.util.find_spec("ai_edge_litert")
    webgpu = spec and spec.origin and (Path(spec.origin).parent / "libLiteRtWebGpuAccelerator.so").exists()
    vulkan = ctypes.util.find_library("vulkan")
    if not webgpu:
        lines.append(Line("LiteRT GPU (WebGPU)", False, "this ai-edge-litert wheel has no GPU accelerator"))
    else:
        lines.append(Line("LiteRT GPU (WebGPU)", bool(vulkan), "accelerator present; Vulkan loader found" if vulkan
                          else "accelerator present, but no Vulkan loader (libvulkan1) and GPU driver here"))
    ort = _version("onnxruntime") or _version("onnxruntime-gpu")
    lines.append(Line("ONNX Runtime (CPU)", bool(ort), ort or "not installed: pip install onnxruntime"))
    cuda = _version("onnxruntime-gpu")
    gpu = shutil.which("nvidia-smi")
    lines.append(Line("ONNX Runtime CUDA", bool(cuda and gpu),
                      f"onnxruntime-gpu {cuda}" + ("" if gpu else ", but no NVIDIA driver (nvidia-smi) here")
                      if cuda else "needs onnxruntime-gpu and an NVIDIA GPU (pip install 'edge-emnist[gpu]')"))
    for name in EMULATED_CPUS:
        absent = missing(name)
        lines.append(Line(f"emulated {name}", not absent, "ready; checks answers, not speed" if not absent
                          else f"{absent}: edge-emnist targets --install {name} (into {tools_dir()})"))
    ssh = shutil.which("ssh") and shutil.which("scp")
    lines.append(Line("devices over SSH", bool(ssh), "ssh and scp found: edge-emnist bench --ssh USER@HOST" if ssh
                      else "no OpenSSH client (ssh, scp) here"))
    return lines


def training_lines() -> list[Line]:
    lines = []
    found = importlib.util.find_spec("tensorflow") is not None
    lines.append(Line("TensorFlow + tf_keras", found, f"{_version('tensorflow')}: what `train`, `prune`, `qat` and "
                      "`export` run on" if found else "not installed: pip install -e ."))
    for backend in ("jax", "torch"):
        found = importlib.util.find_spec(backend) is not None
        detail = f"{_version(backend) or 'installed'}, " if found else "not installed; "
        lines.append(Line(f"{backend}", found, detail + "`train` does not use Keras 3 backends yet"))
    gpu = shutil.which("nvidia-smi")
    lines.append(Line("accelerator", bool(gpu), "NVIDIA driver found (nvidia-smi)" if gpu else
                      "no GPU found: training runs on the CPU (hours for the ResNets)"))
    return lines


def data_lines(data_dir: str | None, cache_dir: str | None) -> list[Line]:
    from edge_emnist.data.inspect import list_datasets, search_root

    root = search_root(data_dir, cache_dir)
    source = "--data-dir or EDGE_EMNIST_DATA" if data_dir or os.environ.get("EDGE_EMNIST_DATA") else "download cache"
    lines = [Line("data folder", root.exists(), f"{root} ({source})")]
    for p in list_datasets(root):
        if p.folder:
            kind = "official release" if p.official else "not the official release (results say so)"
            lines.append(Line(p.spec.name, True, f"{p.counts['train']:,} / {p.counts['test']:,} images in "
                                                 f"{p.folder}: {kind}"))
    if len(lines) == 1:
        lines.append(Line("datasets", False, "none here: edge-emnist data download --dataset emnist-bymerge"))
    return lines


def report(data_dir: str | None = None, cache_dir: str | None = None) -> str:
    sections = [("This machine", machine_lines()), ("Runtimes and targets", runtime_lines()),
                ("Training", training_lines()), ("Data", data_lines(data_dir, cache_dir))]
    text = []
    for title, lines in sections:
        text.append(title)
        width = max(len(line.what) for line in lines)
        text += [f"  {'ok ' if line.ok else ' - '} {line.what:<{width}}  {line.detail}" for line in lines]
        text.append("")
    return "\n".join(text).rstrip() + "\n"
