"""bench, report and pick on artifacts of a tiny trained model; the runner alone, as on a device."""

import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edge_emnist.bench.suite import BenchOptions, bench, yardstick_check
from edge_emnist.cli import main
from edge_emnist.data.registry import get_dataset
from edge_emnist.device import RUNNER_FILES
from edge_emnist.device import runner as runner_module
from edge_emnist.device.files import sha256_file
from edge_emnist.device.host import host_description
from edge_emnist.export.artifacts import ExportOptions, export_run
from edge_emnist.report.pareto import knee, pareto_front
from edge_emnist.targets.machines import SshMachine
from edge_emnist.train import TrainConfig, train
from tests.conftest import write_tiny


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    write_tiny(get_dataset("mnist"), root / "data", counts={"train": 600, "test": 200}, noise=90)
    train(TrainConfig(arch="lenet5", dataset="mnist", epochs=6, batch_size=32, lr=3e-3, patience=6, augment="off"),
          root / "run", data_dir=root / "data", verbose=0)
    paths = []
    for quantize in ("none", "int8"):
        paths += export_run(root / "run", ExportOptions(quantize=quantize, out_dir=root / "exported"),
                            data_dir=root / "data", log=lambda _: None)
    return root, sorted(paths)


def test_bench_records_every_setting(artifacts, tmp_path):
    root, paths = artifacts
    results = tmp_path / "bench.jsonl"
    options = BenchOptions(runtimes=("litert", "ort", "ort-cuda"), threads=(1, 2), batches=(1, 8), runs=200,
                           warmup=10, results=results)
    records = bench(paths, options, data_dir=root / "data", log=lambda _: None)
    measured = [r for r in records if not r.get("skipped") and r["runtime"] in ("litert", "ort")]
    assert len(measured) == 4 * 2 * 2  # artifacts x threads x batches
    assert [json.loads(line) for line in results.read_text().splitlines()] == records
    for r in measured:
        assert r["latency"]["runs"] == (200 if r["batch"] == 1 else 50)
        assert r["latency"]["p50_ms"] <= r["latency"]["p90_ms"] <= r["latency"]["p99_ms"]
        assert 0.9 <= r["accuracy"] <= 1 and r["accuracy"] == pytest.approx(r["reference_accuracy"])
        assert r["size_bytes"] > r["gzip_bytes"] > 0 and r["init_ms"] > 0 and r["first_inference_ms"] > 0
        assert r["memory"]["peak_rss_mb"] >= r["memory"]["baseline_rss_mb"] > 0
        assert r["host"]["cores"] and r["host"]["versions"]["onnxruntime"] and r["target"].startswith("cpu:")
        assert r["runtime"] == {"tflite": "litert", "onnx": "ort"}[r["format"]]
        # the same machine computes the answers its export kept; the answers themselves stay out of the results
        assert r["answers"] == {"images": 200, "agreement": 1.0, "differ": 0} and "answers_top1" not in r
    yardsticks = [r for r in measured if r.get("yardstick")]
    assert {r["format"] for r in yardsticks} == {"tflite"} and all(r["batch"] == 1 for r in yardsticks)
    from edge_emnist.device.runtimes import unavailable_reason

    if unavailable_reason("ort-cuda"):  # the table says whether this machine can run it; no test assumes
        (gpu,) = [r for r in records if r.get("skipped")]
        assert gpu["runtime"] == "ort-cuda" and "CUDAExecutionProvider" in gpu["skipped"]
        assert "not implemented" not in gpu["skipped"] and gpu["target"].startswith("cpu:")
    else:
        assert not [r for r in records if r.get("skipped")]


def test_answers_unlike_the_cards_are_counted_and_said(artifacts, tmp_path):
    """A target that computes other answers than the exporting machine (simulated: the card's kept answers
    changed in three places) is named in a warning, and its records say how many differ."""
    from edge_emnist.device.cards import card_answers
    from edge_emnist.device.records import encode_top1

    root, paths = artifacts
    tflite = next(p for p in paths if p.name.endswith("fp32.tflite"))
    copy = tmp_path / tflite.name
    shutil.copy(tflite, copy)
    card = json.loads(tflite.with_name(tflite.name + ".json").read_text())
    kept = card_answers(card)
    kept[:3] = (kept[:3] + 1) % 10
    card["answers"]["top1"] = encode_top1(kept)
    copy.with_name(copy.name + ".json").write_text(json.dumps(card))
    said = []
    (record,) = bench([copy], BenchOptions(batches=(1,), runs=20, warmup=2, yardstick=False,
                                           results=tmp_path / "b.jsonl"), data_dir=root / "data", log=said.append)
    assert record["answers"] == {"images": 200, "agreement": 1 - 3 / 200, "differ": 3}
    assert any("3 of 200 top-1 answers differ from those its card kept at export" in line for line in said)


def test_litert_gpu_runs_through_compiled_model_or_says_why_not(artifacts, tmp_path):
    """LiteRT's GPU runtime is CompiledModel with the GPU accelerator; the same adapter on the CPU gives the
    interpreter's answers exactly, and where no GPU can start the runtime is a skipped record with the reason."""
    from edge_emnist.device import runner as runner_module
    from edge_emnist.device.runtimes import open_artifact, unavailable_reason

    _, paths = artifacts
    tflite = [p for p in paths if p.suffix == ".tflite"]
    # In a child process: a process that loads LiteRT's accelerators prints their teardown at exit (and, with a
    # Vulkan loader but no GPU, may abort there); the test process never loads them.
    check = ("import sys, numpy as np\n"
             "from edge_emnist.device.runtimes import LiteRTCompiled, LiteRTModel\n"
             "x = np.random.default_rng(0).random((40, 28, 28, 1), dtype=np.float32)\n"
             "for path in sys.argv[1:]:\n"
             "    compiled = LiteRTCompiled(path, accelerator='cpu')\n"
             "    np.testing.assert_array_equal(compiled.predict(x, batch_size=16), LiteRTModel(path).predict(x, 16))\n"
             "    assert compiled.device_info()['accelerator'] == 'cpu'\n"
             "    assert isinstance(compiled.fully_accelerated, bool)\n"
             "print('same answers')\n")
    done = subprocess.run([sys.executable, "-c", check, *map(str, tflite)], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "same answers", done.stderr[-2000:]
    with pytest.raises(ValueError, match="litert-gpu runs tflite"):
        open_artifact(next(p for p in paths if p.suffix == ".onnx"), "litert-gpu")
    out = tmp_path / "gpu.json"
    assert runner_module.main([*map(str, paths), "--runtime", "litert-gpu,ort-cuda", "--runs", "20", "--batch", "1",
                               "--json", str(out)]) == 0
    records = json.loads(out.read_text())["records"]
    if unavailable_reason("litert-gpu") or not [r for r in records if r["runtime"] == "litert-gpu"
                                               and not r.get("skipped")]:
        skipped = {r["runtime"]: r["skipped"] for r in records if r.get("skipped")}
        assert set(skipped) >= {"litert-gpu"} and all(r.get("skipped") for r in records if r["runtime"] == "litert-gpu")
        assert "not implemented" not in skipped["litert-gpu"]
    else:  # a machine with a GPU: every .tflite measured there, with whether it was fully accelerated
        measured = [r for r in records if r["runtime"] == "litert-gpu"]
        assert len(measured) == len(tflite) and all("fully_accelerated" in r["device"] for r in measured)


def test_report_and_pick(artifacts, tmp_path, capsys):
    root, paths = artifacts
    results = tmp_path / "bench.jsonl"
    assert main(["bench", *map(str, paths), "--runs", "100", "--batch", "1,4", "--no-yardstick",
                 "--results", str(results), "--data-dir", str(root / "data")]) == 0
    assert "appended 8 records" in capsys.readouterr().out
    assert main(["report", "--results", str(results), "--out", str(tmp_path / "report"),
                 "--exported", str(root / "exported")]) == 0
    report = (tmp_path / "report" / "report.md").read_text()
    assert "Pareto front:" in report and "lenet5-mnist-int8.tflite" in report
    # the per-architecture summary: parameters and MACs from the card, s/epoch from the training run
    (summary,) = [line for line in report.splitlines() if line.startswith("| lenet5 | mnist |")]
    cells = [c.strip() for c in summary.strip("|").split("|")]
    assert cells[2:4] == ["61,706", "416,520"]  # LeNet-5 at 10 classes: 64,851 - 37 x 85; 419,628 - 37 x 84
    assert float(cells[4]) > 0 and cells[7] == "int8"
    assert all(" / " in c and "-" not in c for c in cells[10:12])
    (change,) = [line for line in report.splitlines()
                 if line.startswith("| lenet5-mnist-int8.tflite |") and "fp32.tflite" in line]
    cells = [c.strip() for c in change.strip("|").split("|")]
    assert cells[3] == "lenet5-mnist-fp32.tflite"
    assert float(cells[5]) == pytest.approx(100 * (float(cells[2]) - float(cells[4])), abs=0.011)
    pngs = sorted(p.name for p in (tmp_path / "report").glob("*.png"))
    assert pngs[-1] == "sizes.png" and pngs[0].startswith("pareto-cpu-")
    # latency budgets as multiples of a reference measured in the same call (default: the bymerge LeNet-5)
    assert "Against the reference" not in report
    assert main(["report", "--results", str(results), "--out", str(tmp_path / "relative"),
                 "--exported", str(root / "exported"), "--reference", "lenet5-mnist-fp32.tflite"]) == 0
    relative = (tmp_path / "relative" / "report.md").read_text()
    assert "Against the reference `lenet5-mnist-fp32.tflite` timed in the same bench call" in relative
    assert "- at most 7x: **" in relative

    # cards are searched folder by folder (measured artifacts too big to ship keep theirs elsewhere)
    empty = tmp_path / "no-cards"
    empty.mkdir()
    for folders, parameters in (([empty], "-"), ([empty, root / "exported"], "61,706")):
        assert main(["report", "--results", str(results), "--out", str(tmp_path / "again"),
                     "--exported", *map(str, folders)]) == 0
        (summary,) = [line for line in (tmp_path / "again" / "report.md").read_text().splitlines()
                      if line.startswith("| lenet5 | mnist |")]
        assert summary.strip("|").split("|")[2].strip() == parameters

    capsys.readouterr()
    assert main(["pick", "--results", str(results), "--max-size-kb", "150"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("picked lenet5-mnist-int8.") and "int8" in first  # fp32 files are ~257 KiB
    assert main(["pick", "--results", str(results)]) == 0
    assert "knee" in capsys.readouterr().out
    with pytest.raises(SystemExit) as usage:  # an accuracy above 1 is a usage error, before any record is read
        main(["pick", "--results", str(results), "--min-accuracy", "1.01"])
    assert usage.value.code == 2 and "must be a fraction" in capsys.readouterr().err
    assert main(["pick", "--results", str(results), "--max-latency-ms", "0.000001"]) == 2
    assert "nothing measured on cpu:" in capsys.readouterr().err  # this machine's own target, whatever its ISA
    assert main(["pick", "--results", str(results), "--target", "arm"]) == 2
    assert "no batch-1 measurements" in capsys.readouterr().err


def test_runner_alone_then_import(artifacts, tmp_path, capsys):
    """The device path: the RUNNER_FILES copied somewhere, no edge_emnist importable."""
    _, paths = artifacts
    device = tmp_path / "device"
    device.mkdir()
    for path in RUNNER_FILES:
        shutil.copy(path, device / path.name)
    tflite = next(p for p in paths if p.name.endswith("int8.tflite"))
    out = device / "out.json"
    script = ("import sys; sys.modules['edge_emnist'] = None; sys.path.insert(0, '.'); "
              "import runner; sys.exit(runner.main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", script, str(tflite), "--runs", "50", "--batch", "1",
                           "--json", str(out)], cwd=device, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    payload = json.loads(out.read_text())
    assert payload["records"][0]["accuracy"] is None and payload["host"]["machine"]
    done = subprocess.run([sys.executable, "-c", script, str(tflite), "--profile", "--runs", "5", "--warmup", "1",
                           "--json", str(device / "profile.json")], cwd=device, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    (profiled,) = json.loads((device / "profile.json").read_text())["records"]
    assert profiled["kind"] == "profile" and profiled["operators"]

    results = tmp_path / "bench.jsonl"
    assert main(["bench", "--import", str(out), "--target", "arm:pi5", "--results", str(results)]) == 0
    (record,) = [json.loads(line) for line in results.read_text().splitlines()]
    assert record["target"] == "arm:pi5" and record["imported_from"] == str(out)


SSHD = shutil.which("sshd") or next((p for p in ("/usr/sbin/sshd", "/usr/local/sbin/sshd") if Path(p).exists()), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sshd(tmp_path):
    """A real OpenSSH server on 127.0.0.1 with its own host key and a client key made for this test."""
    if SSHD is None or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        pytest.skip("OpenSSH server/client not installed (.ci/run installs openssh-server)")
    keys = tmp_path / "ssh"
    keys.mkdir(mode=0o700)
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / name)], check=True)
    (keys / "authorized_keys").write_text((keys / "client_key.pub").read_text())
    port = _free_port()
    config = keys / "sshd_config"
    config.write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {keys / "host_key"}
AuthorizedKeysFile {keys / "authorized_keys"}
PidFile {keys / "sshd.pid"}
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
""")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    server = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE, text=True)
    client = ["--ssh", f"{getpass.getuser()}@127.0.0.1", "--ssh-port", str(port),
              "--ssh-identity", str(keys / "client_key"), "--ssh-option", "StrictHostKeyChecking=no",
              "--ssh-option", f"UserKnownHostsFile={keys / 'known_hosts'}", "--remote-python", sys.executable]
    deadline = time.monotonic() + 20
    while True:
        if server.poll() is not None:
            pytest.fail(f"sshd did not start: {server.stderr.read()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                server.kill()
                pytest.fail("sshd did not listen within 20 s")
            time.sleep(0.1)
    yield client
    server.terminate()
    server.wait(timeout=10)


def test_bench_over_ssh(artifacts, sshd, tmp_path, capsys, monkeypatch):
    root, paths = artifacts
    folders = []
    enter = SshMachine.__enter__

    def remember_folder(self):
        entered = enter(self)
        folders.append(Path(self.folder))
        assert (folders[-1] / "runner.py").exists() is False and folders[-1].is_dir()
        return entered

    monkeypatch.setattr(SshMachine, "__enter__", remember_folder)
    results = tmp_path / "bench.jsonl"
    argv = ["bench", *map(str, paths), "--runs", "100", "--batch", "1,4", "--threads", "1",
            "--runtime", "litert,ort,ort-cuda", "--results", str(results), "--data-dir", str(root / "data")]
    assert main(argv + sshd) == 0, capsys.readouterr().err
    records = [json.loads(line) for line in results.read_text().splitlines()]
    measured = [r for r in records if not r.get("skipped") and r["runtime"] in ("litert", "ort")]
    assert len(measured) == len(paths) * 2
    host = socket.gethostname()
    for r in measured:
        assert r["via"].endswith("@127.0.0.1") and r["target"] == f"{r['host']['machine']}:{r['host']['hostname']}"
        assert r["host"]["hostname"] == host and r["host"]["versions"]["ai-edge-litert"]
        assert r["accuracy"] == pytest.approx(r["reference_accuracy"]) and r["latency"]["runs"] in (100, 50)
        assert r["artifact"] in {p.name for p in paths}
    assert any(r.get("yardstick") for r in measured if r["format"] == "tflite")  # the device's litert-benchmark
    from edge_emnist.device.runtimes import unavailable_reason

    if unavailable_reason("ort-cuda"):  # the loopback device is this machine: the table says whether it can
        (gpu,) = [r for r in records if r.get("skipped")]  # the device itself says why, once
        assert gpu["runtime"] == "ort-cuda" and "CUDAExecutionProvider" in gpu["skipped"]
    assert len(folders) == 1 and not folders[0].exists()  # the device's folder is removed afterwards

    profiles = tmp_path / "profiles.jsonl"  # the same machine class carries the profiler to the device
    tflite = next(p for p in paths if p.suffix == ".tflite")
    assert main(["profile", str(tflite), "--runs", "5", "--warmup", "1", "--results", str(profiles), *sshd]) == 0
    (profiled,) = [json.loads(line) for line in profiles.read_text().splitlines()]
    assert profiled["kind"] == "profile" and profiled["via"].endswith("@127.0.0.1") and profiled["operators"]


def test_ssh_failures_are_one_line(artifacts, sshd, tmp_path, capsys):
    _, paths = artifacts
    wrong_key = [a if a != sshd[sshd.index("--ssh-identity") + 1] else str(tmp_path / "none") for a in sshd]
    assert main(["bench", str(paths[0]), "--no-accuracy", *wrong_key]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "making a folder on" in err[0] and "failed" in err[0]

    no_numpy = [*sshd[:-1], "/bin/false"]
    assert main(["bench", str(paths[0]), "--no-accuracy", *no_numpy]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "set --remote-python" in err[0]


@pytest.mark.parametrize("argv, message", [
    (["bench", "missing.tflite"], "no artifact at missing.tflite"),
    (["bench", "pyproject.toml"], "not a .tflite or .onnx artifact"),
    (["bench", "--runtime", "tpu", "x.tflite"], "unknown runtime 'tpu'"),
    (["bench"], "give artifacts to measure"),
    (["bench", "--import", "pyproject.toml"], "is not a runner result"),
    (["profile", "missing.tflite"], "no artifact at missing.tflite"),
    (["profile", "x.tflite", "--runtime", "tpu"], "unknown runtime 'tpu'"),
    (["profile", "pyproject.toml"], "not a .tflite or .onnx artifact"),
    (["report", "--results", "nothing.jsonl"], "no benchmark results at nothing.jsonl"),
])
def test_bad_bench_input_is_one_line(argv, message, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[x]")
    (tmp_path / "x.tflite").write_bytes(b"")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_corrupt_results_line(tmp_path, capsys):
    results = tmp_path / "bench.jsonl"
    good = json.dumps({"schema": 2, "runtime": "ort-cuda", "skipped": "no GPU"})
    results.write_text(f"{good}\nnot json\n{good}\n")
    assert main(["pick", "--results", str(results)]) == 2
    assert f"{results}:2 is not a JSON record" in capsys.readouterr().err


def test_a_torn_last_line_is_skipped_and_cut_off_by_the_next_append(tmp_path, capsys):
    """A crash (full disk, kill) mid-append leaves a torn tail: it costs that record, never the file."""
    from edge_emnist.io import append_jsonl
    from edge_emnist.report.results import load_records

    a, b, d = ({"schema": 2, "runtime": name, "skipped": "no GPU"} for name in ("a", "b", "d"))
    results = tmp_path / "bench.jsonl"
    results.write_text(f'{json.dumps(a)}\n{json.dumps(b)}\n{{"c": 3, "lat')
    assert load_records([results]) == [a, b]
    assert "skipped a torn last line" in capsys.readouterr().err
    append_jsonl(results, [d])
    assert results.read_text() == "".join(json.dumps(r) + "\n" for r in (a, b, d))


@pytest.mark.parametrize(("change", "message"), [
    ({"schema": 9}, "schema 9 is not one this version reads"),
    ({"latency": {"p50_ms": 0.1}}, "latency lacks one of"),
    ({"batch": 0}, "batch 0 is not a positive integer"),
    ({"accuracy": 87.3}, "accuracy 87.3 is outside"),
    ({"size_bytes": None}, "a measured record without size_bytes"),
    ({"kind": "profile"}, "a profile record without operators, total_ms"),
    ({"kind": "weather"}, "unknown record kind 'weather'"),
])
def test_a_record_that_breaks_the_schema_is_named_with_its_line(change, message, tmp_path, capsys):
    """Every reader checks records before trusting them (device.records): a hand-edited or foreign line is
    refused with its line number and what is wrong, never read as a zero or a crash later."""
    good = {"schema": 2, "artifact": "m.tflite", "runtime": "litert", "settings": {"threads": 1}, "batch": 1,
            "accuracy": 0.87, "size_bytes": 10, "gzip_bytes": 9,
            "latency": {"p50_ms": 0.1, "p90_ms": 0.1, "p99_ms": 0.2, "mean_ms": 0.1, "runs": 10}}
    from edge_emnist.device.records import problem

    assert problem(good) is None
    results = tmp_path / "bench.jsonl"
    results.write_text(json.dumps(good) + "\n" + json.dumps({**good, **change}) + "\n")
    assert main(["report", "--results", str(results), "--out", str(tmp_path / "report")]) == 2
    assert f"{results}:2 is not a result record: {message}" in capsys.readouterr().err


def test_pareto_front_and_knee():
    def point(acc, ms):
        return {"accuracy": acc, "latency": {"p90_ms": ms}}

    points = [point(0.80, 0.01), point(0.87, 0.02), point(0.86, 0.05), point(0.89, 1.0), point(0.70, 0.5)]
    front = pareto_front(points)
    assert [p["accuracy"] for p in front] == [0.80, 0.87, 0.89]
    assert knee(front)["accuracy"] == 0.87


def test_yardstick_tolerance():
    assert yardstick_check(0.105, 0.10)["agrees"] and not yardstick_check(0.2, 0.1)["agrees"]
    assert yardstick_check(0.0272, 0.03)["agrees"]  # within litert-benchmark's 0.01 ms printing resolution


def test_percentiles():
    stats = runner_module.percentiles_ms(list(np.arange(1, 101) * 1_000_000))
    assert stats["p50_ms"] == pytest.approx(50.5) and stats["p99_ms"] == pytest.approx(99.01)


def test_one_broken_artifact_costs_only_its_own_records(artifacts, tmp_path):
    root, paths = artifacts
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    good = next(p for p in paths if p.suffix == ".onnx")
    results = tmp_path / "bench.jsonl"
    options = BenchOptions(runtimes=("ort",), batches=(1,), runs=20, warmup=2, yardstick=False, accuracy=False,
                           results=results)
    records = bench([broken, good], options, log=lambda _: None)
    assert [r["artifact"] for r in records if r.get("failed")] == ["broken.onnx"]
    assert [r["artifact"] for r in records if not r.get("failed")] == [good.name]
    assert len(results.read_text().splitlines()) == 2
    measured = next(r for r in records if not r.get("failed"))
    assert measured["artifact_sha256"] == sha256_file(good)
    assert measured["load"]["cores"] and "busy" in measured and measured["latency"]["spread_p99_p50"] >= 1


def test_an_unwritable_results_folder_fails_before_any_work(artifacts, tmp_path, capsys):
    """Checked up front (a file where the folder should be works even as root, which chmod does not stop)."""
    root, paths = artifacts
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    started = time.perf_counter()
    assert main(["bench", str(paths[0]), "--results", str(blocker / "bench.jsonl")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert time.perf_counter() - started < 5  # no measurement ran


def test_a_busy_measurement_is_flagged(monkeypatch):
    """p99 far above p50 (another process took the core) is recorded as busy, not as the artifact's speed."""
    quiet = [1_000_000] * 99 + [2_000_000]
    noisy = [76_000] * 95 + [53_000_000] * 5
    assert runner_module.percentiles_ms(quiet)["spread_p99_p50"] < runner_module.BUSY_SPREAD
    assert runner_module.percentiles_ms(noisy)["spread_p99_p50"] > runner_module.BUSY_SPREAD


def _record(artifact, dataset, accuracy, p90, target="cpu:a-avx2", **extra):
    return {"artifact": artifact, "runtime": "litert", "settings": {"threads": 1}, "batch": 1, "accuracy": accuracy,
            "latency": {"p90_ms": p90, "p50_ms": p90}, "size_bytes": 1024, "target": target, "dataset": dataset,
            "card": "ok", **extra}


def test_pick_never_ranks_across_datasets_or_machines():
    from edge_emnist.errors import EdgeEmnistError
    from edge_emnist.report.pick import Constraints, pick

    records = [_record("a.tflite", "emnist-bymerge", 0.88, 0.02), _record("b.tflite", "mnist", 0.99, 0.02)]
    with pytest.raises(EdgeEmnistError, match="span 2 datasets"):
        pick(records, "cpu", Constraints())
    chosen, _ = pick(records, "cpu", Constraints(), dataset="emnist-bymerge")
    assert chosen["artifact"] == "a.tflite"
    records.append(_record("c.tflite", "emnist-bymerge", 0.95, 0.01, target="cpu:b-avx512vnni"))
    with pytest.raises(EdgeEmnistError, match="span 2 machines"):
        pick(records, "cpu", Constraints(), dataset="emnist-bymerge")


def test_pick_closest_means_closest():
    from edge_emnist.errors import EdgeEmnistError
    from edge_emnist.report.pick import Constraints, pick

    records = [_record("slow.tflite", "d", 0.89, 0.050), _record("fast.tflite", "d", 0.88, 0.015)]
    with pytest.raises(EdgeEmnistError, match=r"closest: fast\.tflite"):
        pick(records, "cpu", Constraints(max_latency_ms=0.001))


def test_pick_skips_artifacts_changed_or_deleted_since_measured(tmp_path):
    from edge_emnist.errors import EdgeEmnistError
    from edge_emnist.report.pick import Constraints, pick

    folder = tmp_path / "exported"
    folder.mkdir()
    for name in ("good.tflite", "changed.tflite"):
        (folder / name).write_bytes(name.encode())
    records = [_record(name, "d", accuracy, 0.02, artifact_sha256=sha256_file(folder / name))
               for name, accuracy in (("good.tflite", 0.80), ("changed.tflite", 0.90))]
    records.append(_record("deleted.tflite", "d", 0.95, 0.01, artifact_sha256="0" * 64))
    (folder / "changed.tflite").write_bytes(b"another model under the same name")
    chosen, why = pick(records, "cpu", Constraints(), artifact_dirs=[folder])
    assert chosen["artifact"] == "good.tflite"
    assert "changed after it was measured" in why and "deleted.tflite is not in" in why
    (folder / "good.tflite").unlink()
    with pytest.raises(EdgeEmnistError, match="every measured artifact is stale"):
        pick(records, "cpu", Constraints(), artifact_dirs=[folder])


def test_old_records_get_the_isa_of_their_host():
    """Schema-1 records were labelled cpu:<hostname>, which machines with different CPUs shared."""
    from edge_emnist.report.results import upgrade

    host = {"hostname": "vm", "isa": ["avx", "avx2", "avx512_vnni", "avx512f", "fma"], "machine": "x86_64"}
    assert upgrade({"schema": 1, "target": "cpu:vm", "host": host})["target"] == "cpu:vm-avx512vnni"
    assert upgrade({"schema": 1, "target": "arm:pi", "host": host})["target"] == "arm:pi"


def test_measurements_of_an_earlier_export_are_superseded(tmp_path):
    """A record older than its artifact's export (or of another sha256) describes a file that is gone."""
    from edge_emnist.device.cards import CardShelf
    from edge_emnist.report.results import drop_superseded, superseded

    card = {"sha256": "b" * 64, "exported_at": "2026-11-23T08:00:00Z"}
    assert superseded({"artifact_sha256": "a" * 64}, card)
    assert not superseded({"artifact_sha256": "b" * 64, "recorded": "2026-11-01T00:00:00+0000"}, card)
    assert superseded({"recorded": "2026-11-22T10:00:00+0000"}, card)  # schema 1: no sha256, recorded earlier
    assert not superseded({"recorded": "2026-11-23T10:00:00+0000"}, card)
    (tmp_path / "m.onnx.json").write_text(json.dumps(card))
    kept, gone = drop_superseded([{"artifact": "m.onnx", "recorded": "2026-11-20T00:00:00+0000"},
                                  {"artifact": "other.onnx"}], CardShelf([tmp_path]))
    assert [r["artifact"] for r in kept] == ["other.onnx"] and len(gone) == 1


def test_one_table_drives_the_cli_choices_and_the_dispatch():
    from edge_emnist.cli import build_parser
    from edge_emnist.device import formats

    export = build_parser()._subparsers._group_actions[0].choices["export"]
    choices = {a.dest: a.choices for a in export._actions if a.choices}
    assert choices["quantize"] == list(formats.QUANTIZATIONS)
    assert choices["formats"] == [*formats.FORMATS, *formats.FORMAT_ALIASES, "all"]
    assert formats.RUNTIME_OF_SUFFIX == {".tflite": "litert", ".onnx": "ort"}
    assert set(formats.CPU_RUNTIMES) | set(formats.GPU_RUNTIMES) == set(formats.RUNTIMES)
    assert formats.runtimes_for(".onnx", ("litert", "ort", "ort-cuda")) == ["ort", "ort-cuda"]
    # per-runtime options: a record keeps the options its runtime takes, and an adapter gets only those
    assert formats.settings("litert", 2, xnnpack=False) == {"threads": 2, "xnnpack": False}
    assert formats.settings("ort", 2, xnnpack=False) == {"threads": 2}


def test_every_name_a_row_gives_is_defined_where_it_says():
    """A runtime is one row plus one adapter: the row names its adapter, profiler, availability check and
    converter, and each resolves; the report's latency columns are the CPU rows' labels."""
    import importlib

    from edge_emnist.device import formats, profiles, runtimes
    from edge_emnist.report.summary import HEADERS

    modules = {"runtimes": runtimes, "profiles": profiles}
    for row in formats.RUNTIMES.values():
        for dotted in filter(None, (row.adapter, row.profiler, row.availability)):
            owner = dotted.split(".")[0]
            assert callable(formats.resolve(dotted, vars(modules[owner]), owner)), dotted
        assert row.format in formats.FORMATS and row.kind in ("cpu", "gpu")
        assert set(row.options) <= {"xnnpack"} and (row.fallback is None or row.fallback[0] in ("kernel", "provider"))
        assert row.kind == "cpu" or row.availability, f"{row.name}: a GPU runtime must say when it cannot run"
    for fmt in formats.FORMATS.values():
        module, _, name = fmt.converter.partition(":")
        assert callable(getattr(importlib.import_module(module), name))
        assert fmt.suffix in formats.RUNTIME_OF_SUFFIX  # every format has its default runtime
    assert [h for h in HEADERS if h.endswith("p90 ms fp32 / int8")] == [
        f"{formats.RUNTIMES[r].label} p90 ms fp32 / int8" for r in formats.CPU_RUNTIMES]
    with pytest.raises(LookupError, match="does not define"):
        formats.resolve("runtimes.nothing_here", vars(runtimes), "runtimes")


def test_bench_on_an_emulated_arm_core(artifacts, tmp_path, capsys):
    """`bench --target qemu-aarch64:cortex-a76`: the runner on ARM's kernels; its accuracy counts (the report's
    per-target table), its latency is QEMU's (pick never uses it)."""
    from edge_emnist.targets.qemu import missing

    target = "qemu-aarch64:cortex-a76"
    if missing(target):
        pytest.skip(f"{missing(target)} (`edge-emnist targets --install {target}`; .ci/run does it)")
    root, paths = artifacts
    int8 = [p for p in paths if "-int8." in p.name]
    results = tmp_path / "bench.jsonl"
    assert main(["bench", *map(str, int8), "--target", target, "--runs", "20", "--warmup", "2", "--batch", "1",
                 "--test-images", "50", "--results", str(results), "--data-dir", str(root / "data")]) == 0
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert {r["target"] for r in records} == {target} and all(r["emulated"] for r in records)
    assert all(r["host"]["machine"] == "aarch64" and r["test_images"] == 50 for r in records)
    # ARM's int8 kernels give the top-1 answers the x86 export kept (issue 24: emulated Cortex-A76 agrees)
    assert all(r["answers"]["images"] == 50 and r["answers"]["differ"] == 0 for r in records)
    assert main(["bench", *map(str, int8), "--runs", "20", "--warmup", "2", "--batch", "1", "--no-yardstick",
                 "--results", str(results), "--data-dir", str(root / "data")]) == 0
    capsys.readouterr()
    assert main(["pick", "--results", str(results), "--target", target]) == 2  # no latency pick from QEMU
    assert main(["report", "--results", str(results), "--out", str(tmp_path / "r"), "--exported",
                 str(root / "exported")]) == 0
    report = (tmp_path / "r" / "report.md").read_text()
    assert "## Accuracy on every target" in report and target in report
    assert "(50; same answers)" in report and "(200; same answers)" in report
    profiles = tmp_path / "profiles.jsonl"  # the profiler ships with the runner and runs on ARM's kernels too
    assert main(["profile", str(int8[0]), "--target", target, "--runs", "5", "--warmup", "1", "--runtime",
                 "litert,ort", "--results", str(profiles)]) == 0
    (profiled,) = [json.loads(line) for line in profiles.read_text().splitlines()]
    assert profiled["target"] == target and profiled["emulated"] and profiled["host"]["machine"] == "aarch64"
    assert profiled["operators"] and profiled["kind"] == "profile"


def test_bench_and_report_write_to_the_workspace_by_default(artifacts, tmp_path, monkeypatch):
    """The committed measurements and report change only when a command names them."""
    root, paths = artifacts
    monkeypatch.chdir(tmp_path)
    assert main(["bench", str(paths[0]), "--runs", "20", "--warmup", "2", "--batch", "1", "--no-yardstick",
                 "--data-dir", str(root / "data")]) == 0
    assert (tmp_path / "runs" / "bench.jsonl").exists() and not (tmp_path / "benchmarks").exists()
    assert main(["report", "--results", "runs/bench.jsonl", "--exported", str(root / "exported")]) == 0
    assert (tmp_path / "runs" / "report" / "report.md").exists() and not (tmp_path / "benchmarks").exists()


def test_profile_times_every_operator_and_the_report_shows_where_the_time_goes(artifacts, tmp_path, capsys):
    """`edge-emnist profile`: every LiteRT operator timed alone (and which kernel ran it), every ONNX Runtime node
    through ORT's profiler (and its provider); a runtime without a profiler or a machine says why; `report
    --profiles` draws the shares and lists what ran outside the accelerated path."""
    from ai_edge_litert.interpreter import Interpreter

    root, paths = artifacts
    results = tmp_path / "profiles.jsonl"
    assert main(["profile", str(root / "exported"), "--runtime", "litert,ort,litert-gpu", "--runs", "20",
                 "--warmup", "2", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "whole inference" in out and "CONV_2D" in out and "QLinearConv" in out
    records = [json.loads(line) for line in results.read_text().splitlines()]
    # the CPU runtimes' profiles: a litert-gpu record (unavailable here, or measured where a GPU is) is its own
    profiles = {r["artifact"]: r for r in records if r.get("kind") == "profile" and r["runtime"] in ("litert", "ort")}
    assert set(profiles) == {p.name for p in paths}
    for path in paths:
        record = profiles[path.name]
        assert record["artifact_sha256"] == sha256_file(path) and record["target"].startswith("cpu:")
        assert record["total_ms"] > 0 and all(op["ms"] > 0 for op in record["operators"])
        if path.suffix == ".tflite":
            ops = Interpreter(model_path=str(path))._get_ops_details()
            assert sorted(op["op"] for op in record["operators"]) == sorted(op["op_name"] for op in ops)
            assert {op["kernel"] for op in record["operators"]} <= {"XNNPACK", "builtin"}
        else:
            assert {op["provider"] for op in record["operators"]} == {"CPUExecutionProvider"}
    int8_onnx = next(r for name, r in profiles.items() if name.endswith("int8.onnx"))
    assert "QLinearConv" in {op["op"] for op in int8_onnx["operators"]}
    gpu = [r for r in records if r["runtime"] == "litert-gpu"]
    assert gpu and all(r.get("skipped") or r.get("kind") == "profile" for r in gpu)

    report = tmp_path / "report"
    measured = tmp_path / "bench.jsonl"  # the unprofiled p50 of one of them goes beside its profile
    int8 = next(p for p in paths if p.name.endswith("int8.tflite"))
    assert main(["bench", str(int8), "--runtime", "litert", "--runs", "20", "--batch", "1", "--no-accuracy",
                 "--no-yardstick", "--results", str(measured)]) == 0
    p50 = json.loads(measured.read_text().splitlines()[0])["latency"]["p50_ms"]
    assert main(["report", "--results", str(measured), "--profiles", str(results), "--out", str(report),
                 "--exported", str(root / "exported")]) == 0
    text = (report / "report.md").read_text()
    assert "## Where the time goes" in text and "CONV_2D" in text
    (line,) = [line for line in text.splitlines() if line.startswith(f"| {int8.name} | litert | 1 |")
               and "XNNPACK" not in line and "(" in line]
    assert f"| {p50:.4f} |" in line
    slug = records[0]["target"].replace(":", "-")
    assert (report / f"profile-{slug}.png").stat().st_size > 1000


def test_a_runtime_without_an_operator_profiler_says_so(artifacts):
    from edge_emnist.device.profiles import ProfileUnavailable, profile

    _, paths = artifacts
    with pytest.raises(ProfileUnavailable, match="litert-gpu has no per-operator profiler"):
        profile(next(p for p in paths if p.suffix == ".tflite"), "litert-gpu")


def test_gpu_records_are_filed_under_the_gpu_and_get_their_own_table(artifacts, tmp_path):
    """Records of GPU runtimes (measured here, over SSH or imported from a device's runner JSON) go under
    gpu:<the GPU's name>; the report's GPU section shows large-batch throughput and where the model ran. The
    records are a CPU measurement relabelled as a GPU one: the report's code path, not a GPU's numbers."""
    from edge_emnist.bench.suite import import_results

    _, paths = artifacts
    tflite = next(p for p in paths if p.name.endswith("int8.tflite"))
    measured = runner_module.measure(tflite, threads=1, batches=[1, 32, 256], runs=20, warmup=2)
    host = {**host_description(), "gpus": ["NVIDIA H100 80GB HBM3"], "hostname": "box"}
    gpu = [{**r, "runtime": "litert-gpu", "device": {"accelerator": "gpu", "fully_accelerated": True}, "host": host}
           for r in measured]
    onnx = [{**r, "artifact": "m.onnx", "runtime": "ort-cuda", "host": host,
             "device": {"accelerator": "gpu", "nodes": 31, "cpu_nodes": 2, "cpu_ops": ["QuantizeLinear"]}}
            for r in measured]
    payload = tmp_path / "device.json"
    payload.write_text(json.dumps({"host": host, "records": [*gpu, *onnx, {**measured[0], "host": host}]}))
    records = import_results([payload])
    assert {r["target"] for r in records if r["runtime"] != "litert"} == {"gpu:nvidia-h100-80gb-hbm3"}
    assert [r["target"] for r in records if r["runtime"] == "litert"] == [f"{host['machine']}:box"]

    from edge_emnist.report.bench_report import write_report

    text = write_report(records, tmp_path / "report", card_dirs=()).read_text()
    gpu_part = text[text.index("## GPU"):].split("\n## ")[0]
    assert "### gpu:nvidia-h100-80gb-hbm3" in gpu_part and "NVIDIA H100 80GB HBM3" in gpu_part
    assert "fully accelerated" in gpu_part and "2 of 31 nodes on the CPU (QuantizeLinear)" in gpu_part
    assert "b256 img/s" in gpu_part and f"{gpu[2]['throughput_ips']:,.0f}" in gpu_part
    empty = write_report([{**r, "target": "cpu:x"} for r in measured], tmp_path / "cpu-only", card_dirs=()).read_text()
    assert "No GPU measurements in these records" in empty and "--runtime litert-gpu,ort-cuda" in empty


def test_a_target_measured_in_two_sessions_names_both_machines(artifacts, tmp_path):
    """A target is an ISA tier: records of one label can come from different releases (and CPUs); the section says
    which measured what instead of naming the first record's host for all of them."""
    from edge_emnist.report.bench_report import write_report

    _, paths = artifacts
    tflite = next(p for p in paths if p.name.endswith("int8.tflite"))
    measured = runner_module.measure(tflite, threads=1, batches=[1], runs=20, warmup=2)
    host = {**host_description(), "cpu": "Test CPU", "os": "Linux-test"}

    def session(ort: str, recorded: str, artifact: str) -> list[dict]:
        return [{**r, "artifact": artifact, "target": "cpu:x-avx2", "recorded": recorded, "accuracy": 0.9,
                 "host": {**host, "versions": {**host["versions"], "onnxruntime": ort}}} for r in measured]

    old = session("1.31.1", "2026-11-21T06:47:28+0000", "old.tflite")
    text = write_report(old, tmp_path / "one", card_dirs=()).read_text()
    assert "Test CPU" in text and "onnxruntime 1.31.1." in text and "Measured on:" not in text
    both = old + session("1.32.0", "2026-12-07T18:13:00+0000", "new.tflite")
    section = write_report(both, tmp_path / "two", card_dirs=()).read_text().split("## cpu:x-avx2")[1]
    assert "Measured on:" in section
    assert "onnxruntime 1.31.1 (1 of the 2 points, 2026-11-21)" in section
    assert "onnxruntime 1.32.0 (1 of the 2 points, 2026-12-07)" in section


def test_onnx_runtime_placement_names_the_provider_of_every_node(artifacts):
    """On ort-cuda the runner records which nodes fell back to the CPU; on the CPU provider all of them do."""
    from edge_emnist.device.profiles import placement

    _, paths = artifacts
    onnx = next(p for p in paths if p.name.endswith("int8.onnx"))
    where = placement(onnx, "ort")
    assert where["nodes"] == where["cpu_nodes"] > 0 and where["providers"] == ["CPUExecutionProvider"]
    assert "QLinearConv" in where["cpu_ops"]


def test_runner_command_writes_what_a_device_without_ssh_needs(artifacts, tmp_path, capsys):
    """`edge-emnist runner DIR --dataset NAME`: the runner files and the test split, enough to measure accuracy
    on a device with nothing of edge-emnist installed; existing files are kept unless --force."""
    root, paths = artifacts
    out = tmp_path / "for-the-phone"
    assert main(["runner", str(out), "--dataset", "mnist", "--data-dir", str(root / "data")]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([*(p.name for p in RUNNER_FILES), "mnist-test.npz"])
    script = ("import sys; sys.modules['edge_emnist'] = None; sys.path.insert(0, '.'); "
              "import runner; sys.exit(runner.main(sys.argv[1:]))")
    tflite = next(p for p in paths if p.name.endswith("int8.tflite"))
    done = subprocess.run([sys.executable, "-c", script, str(tflite), "--runs", "10", "--batch", "1", "--data",
                           "mnist-test.npz", "--json", "out.json"], cwd=out, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    (record,) = json.loads((out / "out.json").read_text())["records"]
    card = json.loads(tflite.with_name(tflite.name + ".json").read_text())
    assert record["test_images"] == 200 and record["accuracy"] == pytest.approx(card["accuracy"]["artifact"])
    assert "answers_top1" not in record  # asked for with --answers N only
    done = subprocess.run([sys.executable, "-c", script, str(tflite), "--runs", "10", "--batch", "1", "--data",
                           "mnist-test.npz", "--answers", "20", "--json", "answers.json"], cwd=out, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    (record,) = json.loads((out / "answers.json").read_text())["records"]
    from edge_emnist.device.cards import card_answers
    from edge_emnist.device.records import decode_top1

    assert decode_top1(record["answers_top1"]) == list(card_answers(card)[:20])
    results = tmp_path / "imported.jsonl"
    assert main(["bench", "--import", str(out / "answers.json"), "--target", "arm:phone", "--results",
                 str(results)]) == 0
    assert "answers_top1" not in json.loads(results.read_text())  # no card to hold them against: not kept
    capsys.readouterr()
    assert main(["runner", str(out)]) == 2
    assert "already has runner.py" in capsys.readouterr().err
    assert main(["runner", str(out), "--force"]) == 0
    (tmp_path / "a-file").write_text("")
    assert main(["runner", str(tmp_path / "a-file")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_a_record_that_breaks_the_schema_is_never_written(tmp_path, monkeypatch):
    """The schema readers apply is applied on write too: a writer bug cannot leave a line every reader refuses."""
    from edge_emnist.device.records import checked
    from edge_emnist.targets.machines import LocalMachine

    good = {"schema": 2, "runtime": "ort-cuda", "artifact": None, "skipped": "no GPU"}
    assert checked([good]) == [good]
    with pytest.raises(ValueError, match="breaks the schema"):
        checked([{"schema": 2, "runtime": "litert", "artifact": "m.tflite"}])  # a measurement without its numbers
    artifact = tmp_path / "m.tflite"
    artifact.write_bytes(b"x")
    monkeypatch.setattr(LocalMachine, "run_runner", lambda self, argv: {
        "host": host_description(), "records": [{"schema": 2, "runtime": "litert", "artifact": "m.tflite"}]})
    results = tmp_path / "r.jsonl"
    with pytest.raises(ValueError, match="breaks the schema"):
        bench([artifact], BenchOptions(runs=5, accuracy=False, yardstick=False, results=results), log=lambda _: None)
    assert not results.exists()


def test_the_report_draws_the_study_networks_front_beside_the_family():
    from edge_emnist.report.bench_report import front_comparison, made_for_the_edge
    from edge_emnist.report.pick import Constraints, pick

    records = [_record("lenet5.tflite", "emnist-bymerge", 0.88, 0.02, arch="lenet5"),
               _record("vgg.tflite", "emnist-bymerge", 0.90, 0.13, arch="custom_vgg"),
               _record("edgenet-w075.tflite", "emnist-bymerge", 0.894, 0.08, arch="edgenet")]
    assert [made_for_the_edge(r) for r in records] == [False, False, True]
    assert made_for_the_edge({"arch": "not-an-architecture"}) is False
    assert made_for_the_edge({"arch": "custom_vgg", "optimization": {"pruning": {"structured": 0.5}}})
    assert not made_for_the_edge({"arch": "custom_vgg", "optimization": {"pruning": {"sparsity": 0.5}}})
    [line, _] = front_comparison(records)
    assert "are 1 of the 3 points and 1 of the 3 front points" in line and "lenet5.tflite (litert), vgg.tflite" in line
    assert front_comparison(records[:2]) == []  # nothing of the family: no comparison
    # pick chooses from both: the family's point wins where it meets the limits
    chosen, _ = pick(records, "cpu:a-avx2", Constraints(min_accuracy=0.89, max_latency_ms=0.1))
    assert chosen["artifact"] == "edgenet-w075.tflite"


def test_pick_compares_networks_as_trained_unless_told_the_input(tmp_path):
    """An app-ready RGB twin is the same network with another interface: by default it does not compete."""
    from edge_emnist.errors import EdgeEmnistError
    from edge_emnist.report.pick import Constraints, pick

    records = [_record("a.tflite", "emnist-bymerge", 0.88, 0.02, input="grey"),
               _record("a-rgb.tflite", "emnist-bymerge", 0.89, 0.01, input="rgb")]
    assert pick(records, "cpu", Constraints())[0]["artifact"] == "a.tflite"
    assert pick(records, "cpu", Constraints(), input_kind="rgb")[0]["artifact"] == "a-rgb.tflite"
    assert pick(records, "cpu", Constraints(), input_kind=None)[0]["artifact"] == "a-rgb.tflite"
    with pytest.raises(EdgeEmnistError, match="no candidate taking grey input.*--input rgb"):
        pick(records[1:], "cpu", Constraints())


def test_older_records_get_their_input_kind_from_the_card(tmp_path):
    from edge_emnist.device.cards import CardShelf
    from edge_emnist.report.results import fill_inputs, of_input

    for name, channels in (("a.tflite", 1), ("a-rgb.tflite", 3)):
        (tmp_path / f"{name}.json").write_text(json.dumps({"input": {"shape": [-1, 28, 28, channels]}}))
    records = [_record("a.tflite", "emnist-bymerge", 0.88, 0.02), _record("a-rgb.tflite", "emnist-bymerge", 0.89, 0.01),
               _record("gone.tflite", "emnist-bymerge", 0.5, 0.01)]
    fill_inputs(records, CardShelf(), lambda _: [tmp_path])
    assert [r["input"] for r in records] == ["grey", "rgb", None]
    assert [r["artifact"] for r in of_input(records, "grey")] == ["a.tflite", "gone.tflite"]  # unknown: kept


def test_a_card_shelf_reads_each_card_once(tmp_path, monkeypatch):
    """The report's sections (superseded records, input kinds, the summary, robustness, profiles) and pick's checks
    all ask the artifacts' cards; one shelf reads each card once, and a missing card is not looked for again."""
    from edge_emnist.device import cards as cards_module

    card = {"sha256": "b" * 64, "input": {"shape": [-1, 28, 28, 1]}}
    (tmp_path / "a.tflite.json").write_text(json.dumps(card))
    reads = []
    real = cards_module.read_card
    monkeypatch.setattr(cards_module, "read_card", lambda path, *a, **k: reads.append(Path(path).name) or real(path))
    shelf = cards_module.CardShelf([tmp_path / "first", tmp_path])
    assert shelf.find("a.tflite")["sha256"] == "b" * 64 and shelf.find("a.tflite") is shelf.find("a.tflite")
    assert shelf.find("gone.tflite") is None and shelf.find("gone.tflite") is None
    assert reads == ["a.tflite", "a.tflite", "gone.tflite", "gone.tflite"]  # each folder once, in order
    assert shelf.find("a.tflite", [tmp_path / "first"]) is None  # another place asked: its own read
    assert not cards_module.CardShelf() and shelf


def test_the_report_reads_each_card_once(tmp_path, monkeypatch):
    from edge_emnist.device import cards as cards_module
    from edge_emnist.report.bench_report import write_report

    records = [_report_point(name, acc, ms, arch="net", quantize=quantize, input=None)
               for name, acc, ms, quantize in (("a.tflite", 0.88, 0.02, "none"), ("b.tflite", 0.89, 0.03, "int8"),
                                               ("c.onnx", 0.87, 0.01, "none"))]
    for record in records:
        (tmp_path / f"{record['artifact']}.json").write_text(json.dumps({"input": {"shape": [-1, 28, 28, 1]}}))
    found = []
    real = cards_module.find_card
    monkeypatch.setattr(cards_module, "find_card", lambda name, folders: found.append(name) or real(name, folders))
    profile = {**records[0], "kind": "profile", "operators": [], "total_ms": 0.02}
    text = write_report(records, tmp_path / "report", card_dirs=[tmp_path], profile_records=[profile]).read_text()
    assert "| net | emnist-bymerge |" in text  # the summary asked the card too
    assert sorted(found) == ["a.tflite", "b.tflite", "c.onnx"]


def test_bench_records_carry_the_cards_input_kind():
    from edge_emnist.bench.suite import label_records
    from edge_emnist.device.cards import card_input

    assert card_input(None) is None and card_input({"input": {"shape": [-1, 28, 28, 1]}}) == "grey"
    records = [{}]
    label_records(records, {"input": {"shape": [-1, 28, 28, 3]}}, "cpu:x-avx2", "s")
    assert records[0]["input"] == "rgb"


def _report_point(artifact, accuracy, p90, **extra):
    """A bench record with every field the report reads."""
    return {"schema": 2, "artifact": artifact, "runtime": "litert", "settings": {"threads": 1, "xnnpack": True},
            "batch": 1, "accuracy": accuracy, "size_bytes": 2048, "gzip_bytes": 1024, "host": host_description(),
            "latency": {"p50_ms": p90, "p90_ms": p90, "p99_ms": p90, "mean_ms": p90, "std_ms": 0.0, "runs": 10},
            "target": "cpu:x-avx2", "session": "s1", "dataset": "emnist-bymerge", "input": "grey", "card": "ok",
            "memory": {"peak_rss_mb": 100.0}, **extra}


def test_the_report_keeps_app_ready_twins_off_the_front(tmp_path):
    from edge_emnist.report.bench_report import write_report
    from edge_emnist.report.relative import Beside

    def point(artifact, accuracy, p90, kind):
        return _report_point(artifact, accuracy, p90, input=kind)

    ref = "lenet5-emnist-bymerge-fp32.tflite"
    records = [point(ref, 0.881, 0.020, "grey"), point("net.tflite", 0.890, 0.030, "grey"),
               point("net-rgb.tflite", 0.891, 0.025, "rgb")]
    text = write_report(records, tmp_path / "report", card_dirs=(),
                        beside=Beside.of(records, ref)).read_text()
    front = next(line for line in text.splitlines() if line.startswith("Pareto front:"))
    assert "net.tflite" in front and "net-rgb" not in front
    assert "at most 2x: **net.tflite**" in text
    assert "leave out 1 settings of app-ready RGB-input twins" in text and "| net-rgb.tflite |" in text


def test_the_summary_gives_each_shape_of_a_family_its_own_row(tmp_path):
    """Two edgenet shapes are two networks: one row each, float32 and int8 from the same shape (a distilled file
    beside its plain twin: the more accurate one), never one shape's float32 beside another's int8."""
    from edge_emnist.device.cards import CardShelf
    from edge_emnist.report.summary import int8_rows, model_of, summary_rows

    small, wide = "edgenet-width0.5", "edgenet-depths1.2.2-width1.0"
    records = [_report_point(f"{small}-emnist-bymerge-fp32.tflite", 0.8956, 0.02, quantize="none"),
               _report_point(f"{wide}-emnist-bymerge-fp32.tflite", 0.8946, 0.07, quantize="none"),
               _report_point(f"{wide}-emnist-bymerge-kd4-t4-fp32.tflite", 0.9009, 0.07, quantize="none"),
               _report_point(f"{wide}-emnist-bymerge-kd4-t4-int8.tflite", 0.8997, 0.03, quantize="int8"),
               _report_point(f"{wide}-emnist-bymerge-kd4-t4-int8-rgb.tflite", 0.8999, 0.03, quantize="int8",
                             input="rgb")]
    for record in records:
        record["arch"] = "edgenet"
    assert model_of(records[2]) == wide and model_of({"artifact": "x.tflite", "arch": "net"}) == "net"
    rows = {row[0]: row for row in summary_rows(records, "cpu", CardShelf([tmp_path]))}
    assert set(rows) == {small, wide}
    assert rows[wide][5:8] == ["0.9009", "0.8997", "kd4-t4-int8"]  # the distilled float32; the grey int8, not rgb
    assert rows[small][5:8] == ["0.8956", "-", "-"]
    int8 = {row[0]: row for row in int8_rows(records, "cpu")}[f"{wide}-emnist-bymerge-kd4-t4-int8.tflite"]
    assert int8[3] == f"{wide}-emnist-bymerge-kd4-t4-fp32.tflite" and int8[5] == "-0.12"  # its own name's float32
