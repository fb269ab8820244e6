"""Other CPUs without their hardware: QEMU user-mode emulation, fetched once into a private tools folder.

Emulation proves answers, not speed: an int8 kernel that saturates on one instruction set shows up as
different predictions under that CPU model. Latency measured this way is QEMU's, never an edge device's.

QEMU comes from Debian 13's `qemu-user` package (its static binaries report the emulated CPU to the guest;
Debian 12's QEMU 7.2 shows the host's /proc/cpuinfo instead, which crashes onnxruntime on aarch64). It is
fetched with apt-get against a private apt state (own lists, cache and dpkg status), so nothing on the
system changes, and only the binaries are kept: about 30 MB, under $EDGE_EMNIST_TOOLS
(default ~/.cache/edge-emnist/tools).

    qemu-x86_64 -cpu Haswell python runner.py ...   # x86-64 with AVX2 but no AVX-512 or VNNI
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

from edge_emnist.errors import EdgeEmnistError

TOOLS_ENV = "EDGE_EMNIST_TOOLS"
DEBIAN_SUITE = "trixie"  # qemu-user 10.x
PACKAGE = "qemu-user"
BINARIES = ("qemu-x86_64", "qemu-aarch64")
RUNNER = Path(__file__).with_name("runner.py")


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
)}


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
        for sub in ("lists/partial", "cache/archives/partial"):
            (root / sub).mkdir(parents=True)
        (root / "status").touch()
        keyring = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
        signed = f"[signed-by={keyring}] " if keyring.exists() else "[trusted=yes] "
        (root / "sources.list").write_text(f"deb {signed}{_mirror()} {DEBIAN_SUITE} main\n")
        apt = ["apt-get", "-q", "-o", f"Dir::State::Lists={root / 'lists'}", "-o", f"Dir::Cache={root / 'cache'}",
               "-o", f"Dir::State::status={root / 'status'}", "-o", f"Dir::Etc::SourceList={root / 'sources.list'}",
               "-o", "Dir::Etc::SourceParts=/dev/null", "-o", "APT::Sandbox::User=root"]
        for step in (["update"], ["download", PACKAGE]):
            done = subprocess.run(apt + step, cwd=root, capture_output=True, text=True)
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["no output"])[-1]
                raise EdgeEmnistError(f"could not fetch {PACKAGE} from Debian {DEBIAN_SUITE}: {last}")
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


def emulated_predictions(artifact: Path, images: np.ndarray, labels: np.ndarray, cpu: str,
                         python: str = sys.executable) -> tuple[np.ndarray, dict]:
    """The artifact's class probabilities on `images` computed by this machine's Python under QEMU as `cpu`,
    with the emulated host's description. Raises EdgeEmnistError where the emulator is not installed."""
    spec = EMULATED_CPUS[cpu]
    binary = qemu_binary(spec.binary)
    if binary is None:
        raise EdgeEmnistError(f"{spec.binary} is not installed: `edge-emnist targets --install {cpu}`")
    with tempfile.TemporaryDirectory() as scratch:
        data, out = Path(scratch) / "data.npz", Path(scratch) / "probabilities.npy"
        np.savez(data, images=images, labels=labels)
        done = subprocess.run([str(binary), "-cpu", spec.cpu, python, str(RUNNER), str(artifact), "--data",
                               str(data), "--predictions", str(out)], capture_output=True, text=True)
        if done.returncode != 0 or not out.exists():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise EdgeEmnistError(f"{artifact.name} under {cpu}: {last}")
        host = json.loads(done.stdout.strip().splitlines()[-1])["host"]
        return np.load(out), {**host, "cpu": f"QEMU {spec.cpu} on {host['cpu']}", "isa": list(spec.isa)}
