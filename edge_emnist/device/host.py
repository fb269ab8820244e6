"""What this machine is: CPU model and the ISA features that decide the int8 kernels, GPUs, runtime versions.

A record names its target by these facts (cpu:<hostname>-<ISA tier>); training asks them too (nvidia-smi for
the default backend). Plain Python and numpy: it is one of the RUNNER_FILES copied to devices.
"""

from __future__ import annotations

import functools
import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np


def package_versions(names) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


ISA_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "neon", "asimd", "asimddp",
             "fphp", "asimdhp", "sve", "i8mm")


def host_description() -> dict:
    """CPU model, ISA flags that decide which int8/fp16 kernels run, cores, OS, runtime versions."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip().lower()
            if key in ("model name", "hardware", "cpu model") and value.strip():
                model = value.strip()
            elif key in ("flags", "features"):
                flags.update(value.split())
    except OSError:
        pass
    versions = {"numpy": np.__version__, **package_versions(("ai-edge-litert", "onnxruntime", "onnxruntime-gpu"))}
    return {
        "gpus": gpu_names(),
        "hostname": platform.node(),
        "cpu": model,
        "machine": platform.machine(),
        "isa": sorted(f for f in ISA_FLAGS if f in flags),
        "cores": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
    }


# The ISA feature that decides which int8 kernels run, best first: a record's target names it, so that
# machines with one hostname but different CPUs (cloud VMs) never share a target.
ISA_TIERS = (("amx_int8", "amx"), ("avx512_vnni", "avx512vnni"), ("avx_vnni", "avxvnni"), ("avx512f", "avx512"),
             ("avx2", "avx2"), ("i8mm", "i8mm"), ("asimddp", "dotprod"), ("asimd", "neon"), ("neon", "neon"))


def isa_tier(host: dict) -> str:
    """'avx512vnni', 'avx2', 'dotprod', ...: the best int8-relevant feature of the host, or its machine name."""
    flags = set(host.get("isa") or ())
    return next((name for flag, name in ISA_TIERS if flag in flags), host.get("machine") or "unknown")


def gpu_names() -> list[str]:
    """NVIDIA GPUs as nvidia-smi names them ([] without one, or without nvidia-smi)."""
    return list(_nvidia_smi_names())


@functools.cache  # asked by the host description, the default backend and doctor: nvidia-smi runs once
def _nvidia_smi_names() -> tuple[str, ...]:
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return ()
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(line.strip() for line in out.splitlines() if line.strip())


def gpu_target(host: dict) -> str:
    """'gpu:nvidia-h100-80gb-hbm3': what GPU-runtime records are filed under (the CPU's label would mislead)."""
    names = host.get("gpus") or []
    slug = "".join(c if c.isalnum() else "-" for c in names[0].lower()).strip("-") if names else "unknown"
    return f"gpu:{'-'.join(part for part in slug.split('-') if part)}"


def load_average() -> float | None:
    """The 1-minute load average (None where the OS has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None
