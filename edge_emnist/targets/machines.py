"""Where the runner runs: this machine, or a device reached over SSH.

Both give `bench` the same three calls (place the files, run the runner, run litert-benchmark), so a
Raspberry Pi is measured by exactly the code that measures the workstation. The SSH side uses the system's
OpenSSH client (`ssh`, `scp`), so ~/.ssh/config, agents and jump hosts work as they do in a terminal;
BatchMode keeps a missing key from hanging on a password prompt.
"""

from __future__ import annotations

import json
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from edge_emnist.device import RUNNER, RUNNER_FILES
from edge_emnist.device.host import isa_tier
from edge_emnist.errors import EdgeEmnistError
from edge_emnist.options import option, positive_int

LITERT_BENCHMARK_RESOLUTION_MS = 0.01  # it prints milliseconds with two decimals


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def litert_benchmark_summary(payload: dict) -> dict:
    latency = payload["latency"]
    return {"median_ms": latency["median_ms"], "avg_ms": latency["avg_ms"], "std_ms": latency["std_ms"],
            "runs": latency["num_runs"], "resolution_ms": LITERT_BENCHMARK_RESOLUTION_MS}


def litert_benchmark_args(model: str, threads: int, runs: int, warmup: int, result: str) -> list[str]:
    return ["--model", model, "--num_threads", str(threads), "--num_runs", str(runs), "--warmup_runs", str(warmup),
            "--result_json", result]


class LocalMachine:
    """This machine: files stay where they are; each runner call is a fresh Python process."""

    @staticmethod
    def label(host: dict) -> str:
        """cpu:<hostname>-<ISA tier>, e.g. cpu:vm-avx2: cloud machines share hostnames, not CPUs."""
        return f"cpu:{host.get('hostname', platform.node())}-{isa_tier(host)}"

    def describe(self) -> dict:
        """This machine's description, as the runner gives it: what a record is labelled with when the runner
        died before it could say (a failed record must carry the same ISA tier as its measured neighbours)."""
        from edge_emnist.device.host import host_description

        return host_description()

    def __enter__(self) -> LocalMachine:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def place(self, paths: list[Path]) -> dict[Path, str]:
        return {path: str(path) for path in paths}

    def run_runner(self, argv: list[str]) -> dict:
        with tempfile.TemporaryDirectory() as scratch:
            out = Path(scratch) / "out.json"
            done = subprocess.run([sys.executable, str(RUNNER), *argv, "--json", str(out)],
                                  capture_output=True, text=True)
            if done.returncode != 0 or not out.exists():
                raise EdgeEmnistError(f"runner failed: {_last_line(done.stderr)}")
            return json.loads(out.read_text())

    def litert_benchmark(self, model: str, threads: int, runs: int, warmup: int) -> dict | None:
        tool = shutil.which("litert-benchmark") or str(Path(sys.executable).with_name("litert-benchmark"))
        if not Path(tool).exists():
            return None
        with tempfile.TemporaryDirectory() as scratch:
            out = Path(scratch) / "lb.json"
            subprocess.run([tool, *litert_benchmark_args(model, threads, runs, warmup, str(out))],
                           capture_output=True, text=True)
            return litert_benchmark_summary(json.loads(out.read_text())) if out.exists() else None


class EmulatedMachine(LocalMachine):
    """Another CPU under QEMU user mode (targets.qemu): the same runner, on the emulated CPU's own kernels.

    Its records carry the emulated target's name and `emulated: true`; their accuracy is the emulated CPU's,
    their latency is QEMU's, so `pick` never ranks them by speed.
    """

    def __init__(self, target: str) -> None:
        from edge_emnist.targets.qemu import EMULATED_CPUS, emulated_python

        if target not in EMULATED_CPUS:
            raise EdgeEmnistError(f"unknown emulated target {target!r}: choose from {', '.join(EMULATED_CPUS)}")
        self.target = target
        self.command, self.env = emulated_python(target)

    def label(self, host: dict) -> str:
        return self.target

    def describe(self) -> dict:
        return {}  # the label is the emulated target's name whatever the host says

    def run_runner(self, argv: list[str]) -> dict:
        with tempfile.TemporaryDirectory() as scratch:
            out = Path(scratch) / "out.json"
            done = subprocess.run([*self.command, str(RUNNER), *argv, "--json", str(out)],
                                  capture_output=True, text=True, env=self.env)
            if done.returncode != 0 or not out.exists():
                raise EdgeEmnistError(f"runner under {self.target} failed: {_last_line(done.stderr)}")
            result = json.loads(out.read_text())
            for record in result["records"]:
                record["emulated"] = True
            return result

    def litert_benchmark(self, model: str, threads: int, runs: int, warmup: int) -> dict | None:
        return None  # a latency yardstick means nothing under emulation


@dataclass
class SshOptions:
    """How `bench`/`profile` reach a device over SSH (`--ssh USER@HOST` and the rest)."""

    ssh: str | None = option(None, metavar="USER@HOST", help="copy the runner and artifacts there, measure, bring the "
                                                             "records back labelled <arch>:<device hostname>")
    ssh_port: int | None = option(None, type=positive_int, help="default: ssh's own (22 or ~/.ssh/config)")
    ssh_identity: Path | None = option(None, type=Path, metavar="KEY", help="private key file (ssh -i)")
    ssh_option: list[str] | None = option(None, nargs="append", metavar="KEY=VALUE",
                                          help="extra ssh -o option, repeatable")
    remote_python: str = option("python3", help="interpreter on the device")


@dataclass
class SshMachine:
    """A device over SSH: a private temporary folder there, removed at the end whatever happens."""

    destination: str  # user@host, or a Host alias from ~/.ssh/config
    port: int | None = None
    identity: Path | None = None
    options: tuple[str, ...] = ()  # extra `-o KEY=VALUE` for ssh and scp
    python: str = "python3"  # the device's interpreter with numpy and ai-edge-litert / onnxruntime
    timeout_s: float = 1800
    folder: str | None = field(default=None, init=False)

    @staticmethod
    def label(host: dict) -> str:
        """Like `bench --import`: the device's architecture and name, e.g. aarch64:raspberrypi."""
        return f"{host.get('machine', 'device')}:{host.get('hostname', 'unknown')}"

    def describe(self) -> dict:
        return {"machine": "device", "hostname": self.destination.rpartition("@")[2]}

    def _common(self, port_flag: str) -> list[str]:
        args = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=15"]
        for extra in self.options:
            args += ["-o", extra]
        if self.port:
            args += [port_flag, str(self.port)]
        if self.identity:
            args += ["-i", str(self.identity)]
        return args

    def shell(self, command: str, what: str) -> str:
        """Run a shell command on the device; one-line error with ssh's own reason on failure."""
        if shutil.which("ssh") is None:
            raise EdgeEmnistError("no ssh client on this machine (install openssh-client)")
        try:
            done = subprocess.run(["ssh", *self._common("-p"), self.destination, command], capture_output=True,
                                  text=True, timeout=self.timeout_s, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise EdgeEmnistError(f"{what} on {self.destination} took over {self.timeout_s:.0f} s") from None
        if done.returncode != 0:
            raise EdgeEmnistError(f"{what} on {self.destination} failed: {_last_line(done.stderr)}")
        return done.stdout

    def __enter__(self) -> SshMachine:
        self.folder = self.shell('mktemp -d "${TMPDIR:-/tmp}/edge-emnist-bench.XXXXXX"', "making a folder").strip()
        try:
            self.shell(f"{shlex.quote(self.python)} -c 'import numpy'",
                       f"checking {self.python} has numpy (set --remote-python)")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.folder:
            folder, self.folder = self.folder, None
            try:
                self.shell(f"rm -rf {shlex.quote(folder)}", "removing the bench folder")
            except EdgeEmnistError as error:
                print(f"warning: {error}", file=sys.stderr)

    def place(self, paths: list[Path]) -> dict[Path, str]:
        """Copy the runner and the files in one scp; each file in its own subfolder so names never clash."""
        remote = {path: f"{self.folder}/f{i}/{path.name}" for i, path in enumerate(paths)}
        folders = " ".join(shlex.quote(f"{self.folder}/f{i}") for i in range(len(paths)))
        if folders:
            self.shell(f"mkdir -p {folders}", "making folders")
        self._copy([str(p) for p in RUNNER_FILES], f"{self.folder}/")
        for path, target in remote.items():
            self._copy([str(path)], target)
        return remote

    def _copy(self, sources: list[str], target: str) -> None:
        done = subprocess.run(["scp", "-q", *self._common("-P"), *sources, f"{self.destination}:{target}"],
                              capture_output=True, text=True, timeout=self.timeout_s, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise EdgeEmnistError(f"copying to {self.destination} failed: {_last_line(done.stderr)}")

    def run_runner(self, argv: list[str]) -> dict:
        folder = shlex.quote(self.folder)
        command = (f"cd {folder} && {shlex.quote(self.python)} runner.py {shlex.join(argv)} --json out.json "
                   f"1>&2 && cat out.json && rm -f out.json")
        output = self.shell(command, "the runner")
        try:
            return json.loads(output)
        except json.JSONDecodeError:
            raise EdgeEmnistError(f"the runner on {self.destination} printed no result") from None

    def litert_benchmark(self, model: str, threads: int, runs: int, warmup: int) -> dict | None:
        """The device's own litert-benchmark (from its ai-edge-litert wheel), when it has one."""
        python = shlex.quote(self.python)
        args = shlex.join(litert_benchmark_args(model, threads, runs, warmup, f"{self.folder}/lb.json"))
        result = shlex.quote(f"{self.folder}/lb.json")
        beside_python = f'"$(dirname "$(command -v {python})")/litert-benchmark"'
        command = (f"tool=$(command -v litert-benchmark || echo {beside_python});"
                   f' [ -x "$tool" ] || exit 0; "$tool" {args} >/dev/null 2>&1; cat {result} 2>/dev/null;'
                   f" rm -f {result}")
        output = self.shell(command, "litert-benchmark").strip()
        try:
            return litert_benchmark_summary(json.loads(output)) if output else None
        except (json.JSONDecodeError, KeyError):
            return None


def machine_for(target: str | None, ssh: str | None = None, **ssh_options) -> LocalMachine | SshMachine:
    """Where bench/profile run: an emulated CPU (its records named after it), a device over SSH, or here."""
    from edge_emnist.targets.qemu import EMULATED_CPUS

    if target in EMULATED_CPUS:
        return EmulatedMachine(target)
    if ssh:
        return SshMachine(ssh, **ssh_options)
    return LocalMachine()
