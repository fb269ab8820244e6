"""`edge-emnist doctor`: one screen saying what this machine can do, and why not where it cannot.

Everything here is looked up, never imported heavily: no TensorFlow, no model, a second or two at most.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from edge_emnist.device.formats import RUNTIMES
from edge_emnist.device.host import gpu_names, host_description, isa_tier
from edge_emnist.device.runtimes import unavailable_reason
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
    """One line per row of the runtime table, with the reason the runtime itself gives where it cannot run."""
    lines = []
    for name, runtime in RUNTIMES.items():
        installed = _version(runtime.package) or (_version("onnxruntime-gpu") if runtime.package == "onnxruntime"
                                                  else None)
        if not installed:
            lines.append(Line(f"{name} ({runtime.format}, {runtime.kind})", False,
                              f"not installed: pip install {runtime.package}"))
            continue
        reason = unavailable_reason(name)
        lines.append(Line(f"{name} ({runtime.format}, {runtime.kind})", reason is None,
                          f"{runtime.package} {installed}" + (f"; {reason}" if reason else "")))
    gpu = shutil.which("nvidia-smi")
    lines.append(Line("NVIDIA driver", bool(gpu), "nvidia-smi found: " + ", ".join(gpu_names()) if gpu else
                      "no nvidia-smi here (GPU runtimes and training need an NVIDIA driver)"))
    for name in EMULATED_CPUS:
        absent = missing(name)
        lines.append(Line(f"emulated {name}", not absent, "ready; checks answers, not speed" if not absent
                          else f"{absent}: edge-emnist targets --install {name} (into {tools_dir()})"))
    ssh = shutil.which("ssh") and shutil.which("scp")
    lines.append(Line("devices over SSH", bool(ssh), "ssh and scp found: edge-emnist bench --ssh USER@HOST" if ssh
                      else "no OpenSSH client (ssh, scp) here"))
    return lines


def training_lines() -> list[Line]:
    """Keras 3 backends for `train` (the engine's table), and tf_keras for prune, QAT and export."""
    from edge_emnist.keras3 import BACKENDS, default_backend, installed_backends

    lines = [Line("keras (3)", bool(_version("keras")), f"{_version('keras')}: what `train` runs on"
                  if _version("keras") else "not installed: pip install -e .")]
    installed, default = installed_backends(), default_backend()
    for name, backend in BACKENDS.items():
        found = name in installed
        lines.append(Line(f"backend {name}", found, (f"{_version(backend.module) or 'installed'}"
                                                    + (" (the default here)" if name == default else "")
                                                    + (f"; several devices: {backend.data_parallel}"
                                                       if backend.data_parallel else ""))
                          if found else f"not installed: {backend.install}"))
    found = _version("tf-keras")
    lines.append(Line("tf_keras (prune, QAT, export)", bool(found), found or "not installed: pip install -e ."))
    if not gpu_names():
        lines.append(Line("accelerator", False, "no NVIDIA GPU: training runs on the CPU (hours for the ResNets); "
                                                "README: Training on a GPU"))
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
