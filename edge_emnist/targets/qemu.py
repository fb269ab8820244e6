"""Other CPUs without their hardware: QEMU user-mode emulation, fetched once into a private tools folder.

Emulation proves answers, not speed: an int8 kernel that saturates on one instruction set shows up as
different predictions under that CPU model, and ARM cores run XNNPACK's and ONNX Runtime's ARM kernels
(smlal on cortex-a72, sdot on cortex-a76, smmla and SVE on neoverse-v1). Latency measured this way is
QEMU's, never a device's.

QEMU comes from Debian 13's `qemu-user` package (its static binaries report the emulated CPU to the guest;
Debian 12's QEMU 7.2 shows the host's /proc/cpuinfo instead, which crashes onnxruntime on aarch64). ARM
needs an arm64 Python too: Debian 12's python3.11 and its library closure (39 packages, 16 MB) unpacked
into a sysroot, plus aarch64 wheels of numpy, ai-edge-litert and onnxruntime at this machine's own versions
(53 MB). Everything is fetched with apt-get against a private apt state (own lists, cache and dpkg status)
and pip's cross-platform download, so nothing on the system changes; it lives under $EDGE_EMNIST_TOOLS
(default ~/.cache/edge-emnist/tools): QEMU 30 MB, the ARM sysroot and packages about 260 MB.

    qemu-x86_64 -cpu Haswell-noTSX python runner.py ...                           # AVX2, no AVX-512/VNNI
    PYTHONPATH=SITE qemu-aarch64 -cpu cortex-a76 -L SYSROOT SYSROOT/usr/bin/python3.11 runner.py ...
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_emnist.device import RUNNER
from edge_emnist.errors import EdgeEmnistError

TOOLS_ENV = "EDGE_EMNIST_TOOLS"
DEBIAN_SUITE = "trixie"  # qemu-user 10.x
PACKAGE = "qemu-user"
BINARIES = ("qemu-x86_64", "qemu-aarch64")


@dataclass(frozen=True)
class EmulatedCpu:
    """A CPU QEMU can pretend to be, and what it stands for."""

    name: str  # the target name records carry, e.g. qemu-x86_64:haswell
    binary: str
    cpu: str  # QEMU's -cpu model
    describes: str
    isa: tuple[str, ...]  # what the guest's CPUID says (QEMU x86 shows the guest the host's /proc/cpuinfo)


EMULATED_CPUS = {cpu.name: cpu for cpu in (
    EmulatedCpu("qemu-x86_64:haswell", "qemu-x86_64", "Haswell-noTSX",
                "x86-64 with AVX2 and FMA, no AVX-512, no VNNI (int8 through vpmaddubsw)", ("avx", "avx2", "fma")),
    EmulatedCpu("qemu-aarch64:cortex-a72", "qemu-aarch64", "cortex-a72",
                "64-bit ARM like a Raspberry Pi 4: NEON, no dotprod (int8 through smlal)", ("asimd",)),
    EmulatedCpu("qemu-aarch64:cortex-a76", "qemu-aarch64", "cortex-a76",
                "64-bit ARM like a Raspberry Pi 5: NEON with dotprod (int8 through sdot)", ("asimd", "asimddp")),
    EmulatedCpu("qemu-aarch64:neoverse-v1", "qemu-aarch64", "neoverse-v1",
                "64-bit ARM server (Graviton 3): dotprod, i8mm and SVE", ("asimd", "asimddp", "i8mm", "sve")),
)}
ARM_DEBIAN_SUITE = "bookworm"  # python3.11, matching the cp311 wheels
ARM_PACKAGES = ("python3.11", "libstdc++6")
ARM_WHEELS = ("numpy", "ai-edge-litert", "onnxruntime")  # at this machine's versions
MANYLINUX_AARCH64 = ["manylinux2014_aarch64"] + [f"manylinux_2_{n}_aarch64" for n in (17, 24, 26, 27, 28, 31, 34,
                                                                                       35, 36)]


def tools_dir() -> Path:
    return Path(os.environ.get(TOOLS_ENV) or Path.home() / ".cache" / "edge-emnist" / "tools")


def qemu_binary(name: str) -> Path | None:
    """The installed QEMU binary, or None."""
    path = tools_dir() / "qemu" / name
    return path if path.is_file() and os.access(path, os.X_OK) else None


def _mirror() -> str:
    """This machine's own Debian mirror (its apt configuration), so a local mirror keeps working."""
    for source in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))]:
        try:
            text = source.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split()
            if words[:1] == ["URIs:"] and len(words) > 1 and words[1].rstrip("/").endswith("/debian"):
                return words[1]
            if words[:1] == ["deb"]:
                uri = next((w for w in words[1:] if "://" in w), "")
                if uri.rstrip("/").endswith("/debian"):
                    return uri
    return "http://deb.debian.org/debian"


def _private_apt(root: Path, line: str, arch: str | None = None) -> list[str]:
    """apt-get with its own lists, cache, dpkg status and sources under `root`: the system's stay untouched."""
    for sub in ("lists/partial", "cache/archives/partial"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "status").touch()
    (root / "sources.list").write_text(line + "\n")
    apt = ["apt-get", "-q", "-o", f"Dir::State::Lists={root / 'lists'}", "-o", f"Dir::Cache={root / 'cache'}",
           "-o", f"Dir::State::status={root / 'status'}", "-o", f"Dir::Etc::SourceList={root / 'sources.list'}",
           "-o", "Dir::Etc::SourceParts=/dev/null", "-o", "APT::Sandbox::User=root", "-o", "Debug::NoLocking=1"]
    if arch:
        apt += ["-o", f"APT::Architecture={arch}", "-o", f"APT::Architectures::={arch}"]
    return apt


def _run(argv: list[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if not line.startswith("WARNING: Location")]
        raise EdgeEmnistError(f"{what} failed: {(lines or ['no output'])[-1]}")
    return done


def _source_line(suite: str, arch: str | None = None) -> str:
    keyring = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
    options = [f"arch={arch}"] if arch else []
    options.append(f"signed-by={keyring}" if keyring.exists() else "trusted=yes")
    return f"deb [{' '.join(options)}] {_mirror()} {suite} main"


def arm_python() -> tuple[Path, Path] | None:
    """(sysroot, site-packages) of the installed arm64 Python, or None."""
    root = tools_dir() / "aarch64"
    sysroot, site = root / "sysroot", root / "site"
    ready = (sysroot / "usr" / "bin" / "python3.11").exists() and (root / "READY").exists()
    return (sysroot, site) if ready else None


def install_arm_python(log=print) -> tuple[Path, Path]:
    """Debian 12's arm64 python3.11 closure in a sysroot, and aarch64 wheels at this machine's versions."""
    from edge_emnist.device.host import package_versions

    found = arm_python()
    if found:
        return found
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise EdgeEmnistError("installing the arm64 Python needs apt-get and dpkg-deb (Debian or Ubuntu)")
    root = tools_dir() / "aarch64"
    shutil.rmtree(root, ignore_errors=True)
    sysroot, site, wheels = root / "sysroot", root / "site", root / "wheels"
    log(f"installing an arm64 Python (Debian {ARM_DEBIAN_SUITE} python3.11) and aarch64 wheels of "
        f"{', '.join(ARM_WHEELS)} into {root} (about 70 MB download)")
    with tempfile.TemporaryDirectory() as scratch:
        apt = _private_apt(Path(scratch), _source_line(ARM_DEBIAN_SUITE, "arm64"), arch="arm64")
        _run(apt + ["update"], "apt-get update (arm64)")
        plan = _run(apt + ["install", "-s", "--no-install-recommends", *ARM_PACKAGES], "resolving the arm64 packages")
        packages = [line.split()[1] for line in plan.stdout.splitlines() if line.startswith("Inst ")]
        debs = Path(scratch) / "debs"
        debs.mkdir()
        _run(apt + ["download", *packages], "downloading the arm64 packages", cwd=debs)
        sysroot.mkdir(parents=True)
        for deb in sorted(debs.glob("*.deb")):
            _run(["dpkg-deb", "-x", str(deb), str(sysroot)], f"unpacking {deb.name}")
    versions = package_versions(ARM_WHEELS)
    pins = [f"{name}=={versions[name]}" if versions.get(name) else name for name in ARM_WHEELS]
    tags = ["--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
            "--abi", "abi3", "--abi", "none"] + [arg for tag in MANYLINUX_AARCH64 for arg in ("--platform", tag)]
    pip = [sys.executable, "-m", "pip", "-q"]
    _run(pip + ["download", *tags, "-d", str(wheels), *pins], "downloading aarch64 wheels")
    _run(pip + ["install", "--no-index", "--find-links", str(wheels), "--target", str(site), *tags, *pins],
         "installing aarch64 wheels")
    shutil.rmtree(wheels, ignore_errors=True)
    (root / "READY").write_text(" ".join(pins) + "\n")
    return sysroot, site


def install(target: str, log=print) -> None:
    """Everything an emulated target needs."""
    install_qemu(log)
    if EMULATED_CPUS[target].binary == "qemu-aarch64":
        install_arm_python(log)


def missing(target: str) -> str | None:
    """None when the target can run here, else what is missing."""
    cpu = EMULATED_CPUS[target]
    if qemu_binary(cpu.binary) is None:
        return f"{cpu.binary} is not installed"
    if cpu.binary == "qemu-aarch64" and arm_python() is None:
        return "the arm64 Python is not installed"
    return None


def install_qemu(log=print) -> Path:
    """Fetch Debian's qemu-user package with a private apt state and keep its emulator binaries."""
    target = tools_dir() / "qemu"
    if all(qemu_binary(b) for b in BINARIES):
        return target
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise EdgeEmnistError("installing QEMU needs apt-get and dpkg-deb (a Debian or Ubuntu machine); or put "
                              f"static qemu-x86_64 / qemu-aarch64 binaries in {target}")
    log(f"installing QEMU user-mode emulators from Debian {DEBIAN_SUITE} into {target} (about 70 MB download)")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        apt = _private_apt(root, _source_line(DEBIAN_SUITE))
        for step in (["update"], ["download", PACKAGE]):
            _run(apt + step, f"fetching {PACKAGE} from Debian {DEBIAN_SUITE}", cwd=root)
        (deb,) = root.glob(f"{PACKAGE}_*.deb")
        unpacked = root / "unpacked"
        unpacked.mkdir()
        members = [f"./usr/bin/{b}" for b in BINARIES]
        tar = subprocess.run(f"dpkg-deb --fsys-tarfile {deb} | tar -x -C {unpacked} {' '.join(members)}",
                             shell=True, capture_output=True, text=True)
        if tar.returncode != 0:
            raise EdgeEmnistError(f"could not unpack {deb.name}: {tar.stderr.strip()[:200]}")
        target.mkdir(parents=True, exist_ok=True)
        for name in BINARIES:
            staged = target / f".tmp-{name}"
            shutil.copy(unpacked / "usr" / "bin" / name, staged)
            staged.chmod(0o755)
            staged.replace(target / name)
        (target / "VERSION").write_text(deb.name + "\n")
    return target


def emulated_python(cpu: str, python: str = sys.executable) -> tuple[list[str], dict[str, str]]:
    """The command that starts a Python with numpy, LiteRT and ONNX Runtime on the emulated CPU, and its env."""
    spec = EMULATED_CPUS[cpu]
    absent = missing(cpu)
    if absent:
        raise EdgeEmnistError(f"{absent}: `edge-emnist targets --install {cpu}`")
    command = [str(qemu_binary(spec.binary)), "-cpu", spec.cpu]
    if spec.binary == "qemu-aarch64":
        sysroot, site = arm_python()
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(site), "HOME": os.environ.get("HOME", "/")}
        return [*command, "-L", str(sysroot), str(sysroot / "usr" / "bin" / "python3.11")], env
    return [*command, python], dict(os.environ)


def emulated_predictions(artifact: Path, images: np.ndarray, labels: np.ndarray, cpu: str,
                         python: str = sys.executable) -> tuple[np.ndarray, dict]:
    """The artifact's class probabilities on `images` computed by this machine's Python under QEMU as `cpu`,
    with the emulated host's description. Raises EdgeEmnistError where the emulator is not installed."""
    spec = EMULATED_CPUS[cpu]
    command, env = emulated_python(cpu, python)
    with tempfile.TemporaryDirectory() as scratch:
        data, out = Path(scratch) / "data.npz", Path(scratch) / "probabilities.npy"
        np.savez(data, images=images, labels=labels)
        done = subprocess.run([*command, str(RUNNER), str(artifact), "--data", str(data), "--predictions", str(out)],
                              capture_output=True, text=True, env=env)
        if done.returncode != 0 or not out.exists():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise EdgeEmnistError(f"{artifact.name} under {cpu}: {last}")
        host = json.loads(done.stdout.strip().splitlines()[-1])["host"]
        if spec.binary == "qemu-x86_64":  # the guest reads the host's /proc/cpuinfo; CPUID is what QEMU emulates
            host = {**host, "cpu": f"QEMU {spec.cpu} on {host['cpu']}", "isa": list(spec.isa)}
        return np.load(out), {**host, "emulated": spec.cpu}


def install_all(names, log) -> None:
    """`targets --install`: every named target, each refused at once if unknown."""
    unknown = [name for name in names if name not in EMULATED_CPUS]
    if unknown:
        raise EdgeEmnistError(f"unknown emulated target {unknown[0]!r}: choose from {', '.join(EMULATED_CPUS)}")
    for name in names:
        install(name, log=log)


def status_lines() -> list[str]:
    """`targets`: every emulated CPU, ready or what it lacks."""
    lines = []
    for cpu in EMULATED_CPUS.values():
        absent = missing(cpu.name)
        state = f"not installed ({absent}): edge-emnist targets --install {cpu.name}" if absent else "ready"
        lines.append(f"{cpu.name:<26} {cpu.describes}; {state}")
    return [*lines, f"emulators live in {tools_dir()} ($EDGE_EMNIST_TOOLS); emulated runs check answers, not speed"]
