"""Trust, round 3 (issue 25): a wrong target, a lying card, a NaN model, a full disk or a hostile client never
becomes a result. Each test fails on the behaviour the issue reported."""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edge_emnist.bench.suite import BenchOptions, bench, new_session
from edge_emnist.cli import main
from edge_emnist.data.registry import get_dataset
from edge_emnist.device.cards import card_path
from edge_emnist.errors import EdgeEmnistError
from edge_emnist.export.artifacts import ExportOptions, export_run, parity
from edge_emnist.io import atomic_path, folder_lock
from edge_emnist.train import TrainConfig, train
from tests.conftest import write_tiny


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A tiny MNIST LeNet-5 run and its float32 and int8 artifacts (10 classes)."""
    root = tmp_path_factory.mktemp("trust")
    write_tiny(get_dataset("mnist"), root / "data", counts={"train": 400, "test": 120}, noise=90)
    train(TrainConfig(arch="lenet5", dataset="mnist", epochs=3, batch_size=32, lr=3e-3, augment="off"),
          root / "run", data_dir=root / "data", verbose=0)
    paths = []
    for quantize in ("none", "int8"):
        paths += export_run(root / "run", ExportOptions(quantize=quantize, out_dir=root / "exported"),
                            data_dir=root / "data", log=lambda _: None)
    return root, {p.name: p for p in paths}


def _copy(made, tmp_path: Path, name: str) -> Path:
    root, paths = made
    folder = tmp_path / "arts"
    folder.mkdir(exist_ok=True)
    for source in (paths[name], card_path(paths[name])):
        shutil.copy(source, folder / source.name)
    return folder / name


def _one_line_error(capsys, code: int, want: str) -> None:
    """Exit 2 and the reason as the last line of stderr (long commands log progress above it), no traceback."""
    assert code == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line.strip()]
    assert err and want in err[-1] and err[-1].startswith("edge-emnist: error: "), err
    assert not any("Traceback" in line for line in err)


def _bench(args: list[str]) -> int:
    return main(["bench", *args, "--runs", "20", "--warmup", "2", "--batch", "1", "--no-yardstick"])


# 1. a mistyped emulated target is refused, never measured natively under its name ---------------------------------

@pytest.mark.parametrize("target", ["qemu-aarch64:cortex-z99", "qemu-aarch64", "QEMU-x86_64"])
def test_an_unknown_emulated_target_is_refused_with_the_known_ones(made, tmp_path, capsys, target):
    artifact = _copy(made, tmp_path, "lenet5-mnist-fp32.tflite")
    results = tmp_path / "q.jsonl"
    _one_line_error(capsys, _bench([str(artifact), "--target", target, "--results", str(results)]),
                    "qemu-aarch64:cortex-a76")
    assert not results.exists()


def test_a_native_label_may_not_claim_another_architecture(made, tmp_path, capsys):
    import platform

    other = "arm:pi5" if platform.machine() in ("x86_64", "AMD64") else "x86_64:box"
    artifact = _copy(made, tmp_path, "lenet5-mnist-fp32.tflite")
    _one_line_error(capsys, _bench([str(artifact), "--target", other, "--results", str(tmp_path / "r.jsonl")]),
                    "names a")


# 2. pick checks the file it names where bench measured it ----------------------------------------------------------

def test_pick_refuses_a_file_replaced_after_it_was_measured(made, tmp_path, capsys):
    artifact = _copy(made, tmp_path, "lenet5-mnist-fp32.tflite")
    results = tmp_path / "r.jsonl"
    assert _bench([str(artifact), "--results", str(results), "--data-dir", str(made[0] / "data")]) == 0
    assert main(["pick", "--results", str(results)]) == 0
    assert f"picked {artifact.name}" in capsys.readouterr().out
    artifact.write_bytes(os.urandom(artifact.stat().st_size))
    _one_line_error(capsys, main(["pick", "--results", str(results)]), "changed after it was measured")
    artifact.unlink()
    _one_line_error(capsys, main(["pick", "--results", str(results)]), "any more")


# 3. one export folder, one writer at a time ------------------------------------------------------------------------

def test_a_second_export_into_a_folder_in_use_is_refused(made, tmp_path, capsys):
    root, _ = made
    out = tmp_path / "out"
    with folder_lock(out, keep_file=False):  # another export holds it
        code = main(["export", str(root / "run"), "--quantize", "none", "--out-dir", str(out),
                     "--data-dir", str(root / "data")])
    _one_line_error(capsys, code, "is in use by process")
    assert not list(out.glob("*.tflite"))


# 4. non-finite and out-of-range numbers ----------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["train", "--arch", "lenet5", "--lr", "inf"],
    ["train", "--arch", "lenet5", "--lr", "1e400"],
    ["train", "--arch", "lenet5", "--lr", "nan"],
    ["train", "--arch", "lenet5", "--momentum", "nan"],
    ["prune", "RUN", "--lr", "inf"],
    ["pick", "--max-latency-ms", "nan"],
    ["pick", "--max-size-kb", "nan"],
    ["pick", "--min-accuracy", "nan"],
    ["pick", "--max-latency-ms", "-1"],
    ["pick", "--min-accuracy", "1.5"],
])
def test_non_finite_and_out_of_range_options_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and "must be" in capsys.readouterr().err


def test_negative_momentum_is_refused_before_a_run_folder_exists(tmp_path, capsys):
    run = tmp_path / "run"
    _one_line_error(capsys, main(["train", "--arch", "lenet5", "--optimizer", "sgd", "--momentum", "-1",
                                  "--run-dir", str(run)]), "momentum must be in [0, 1)")
    assert not run.exists()


def test_training_that_diverges_stops_with_the_reason_and_keeps_no_folder(made, tmp_path):
    root, _ = made
    run = tmp_path / "run"
    with pytest.raises(EdgeEmnistError, match="diverged in epoch 1"):
        train(TrainConfig(arch="lenet5", dataset="mnist", epochs=2, batch_size=32, optimizer="sgd", lr=1e38,
                          augment="off"), run, data_dir=root / "data", verbose=0)
    assert not run.exists()


def test_parity_counts_non_finite_outputs_as_disagreements():
    reference = np.full((4, 3), np.nan, np.float32)
    assert parity(reference, reference.copy())["top1_agreement"] == 0.0  # NaN everywhere: argmax 0 = argmax 0
    good = np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
    bad = good.copy()
    bad[1] = np.nan
    assert parity(good, bad)["disagreements"] == 1


def test_export_refuses_a_model_with_nan_weights(made, tmp_path, capsys):
    import h5py

    root, _ = made
    run = tmp_path / "nan-run"
    shutil.copytree(root / "run", run)
    with h5py.File(run / "best.weights.h5", "r+") as f:
        def poison(name, obj):
            if isinstance(obj, h5py.Dataset) and obj.dtype.kind == "f":
                obj[...] = np.nan
        f.visititems(poison)
    code = main(["export", str(run), "--quantize", "none", "--format", "tflite", "--out-dir", str(tmp_path / "out"),
                 "--data-dir", str(root / "data")])
    _one_line_error(capsys, code, "outputs are not finite")
    assert not list((tmp_path / "out").glob("*.tflite"))


# 5. a card is held against its model -------------------------------------------------------------------------------

def _edit_card(artifact: Path, change) -> None:
    card = json.loads(card_path(artifact).read_text())
    change(card)
    card_path(artifact).write_text(json.dumps(card))


@pytest.mark.parametrize("name, change, want", [
    ("lenet5-mnist-fp32.tflite", lambda c: c["labels"].update({str(i): "x" for i in range(10, 47)}),
     "47 labels for a model with 10 outputs"),
    ("lenet5-mnist-fp32.onnx", lambda c: c["labels"].pop("9"), "9 labels for a model with 10 outputs"),
    ("lenet5-mnist-int8.tflite", lambda c: c["input"]["quantization"].update({"scale": 0.5}),
     "input quantization"),
    ("lenet5-mnist-int8.tflite", lambda c: c["input"]["quantization"].update({"zero_point": 0}),
     "input quantization"),
])
def test_a_card_that_contradicts_its_model_is_refused(made, tmp_path, capsys, name, change, want):
    artifact = _copy(made, tmp_path, name)
    _edit_card(artifact, change)
    results = tmp_path / "r.jsonl"
    _one_line_error(capsys, _bench([str(artifact), "--results", str(results)]), want)
    assert not results.exists()
    _one_line_error(capsys, main(["robustness", str(artifact), "--results", str(tmp_path / "rob.jsonl")]), want)


def test_a_card_naming_another_dataset_size_is_refused(made, tmp_path, capsys):
    artifact = _copy(made, tmp_path, "lenet5-mnist-fp32.tflite")
    _edit_card(artifact, lambda c: c.update({"dataset": "emnist-bymerge"}))
    _one_line_error(capsys, _bench([str(artifact), "--results", str(tmp_path / "r.jsonl")]),
                    "emnist-bymerge (47 classes) but lists 10 labels")


@pytest.mark.parametrize("damage, status", [
    (lambda artifact: card_path(artifact).unlink(), "missing"),
    (lambda artifact: _edit_card(artifact, lambda c: c.update({"sha256": "0" * 64})), "another file"),
])
def test_an_uncarded_model_is_measured_with_a_warning_and_kept_out_of_pick(made, tmp_path, capsys, damage, status):
    artifact = _copy(made, tmp_path, "lenet5-mnist-fp32.tflite")
    damage(artifact)
    results = tmp_path / "r.jsonl"
    assert _bench([str(artifact), "--results", str(results), "--data-dir", str(made[0] / "data")]) == 0
    assert "warning:" in capsys.readouterr().err
    (record,) = [json.loads(line) for line in results.read_text().splitlines()]
    assert record["card"] == status and record["accuracy"] is None
    assert main(["pick", "--results", str(results)]) == 2


def test_pick_leaves_out_records_measured_without_a_current_card(made, tmp_path, capsys):
    from edge_emnist.report.pick import Constraints, pick

    record = {"artifact": "m.tflite", "runtime": "litert", "batch": 1, "accuracy": 0.9, "target": "cpu:x",
              "settings": {"threads": 1}, "latency": {"p50_ms": 1, "p90_ms": 1}, "size_bytes": 1, "card": "missing"}
    with pytest.raises(EdgeEmnistError, match="without a current model card"):
        pick([record], "cpu", Constraints())
    chosen, _ = pick([record], "cpu", Constraints(), allow_uncarded=True)
    assert chosen is record


# 6. the demo serves only carded models and answers every request ---------------------------------------------------

@pytest.fixture
def demo(made, tmp_path, monkeypatch):
    from edge_emnist.demo import server as demo_server

    folder = _copy(made, tmp_path, "lenet5-mnist-fp32.onnx").parent
    (folder / "evil.py.onnx").write_text("print('hi')\n")
    (folder / "evil.py.onnx.json").write_text(json.dumps({"labels": {"0": "0"}, "input": {}, "arch": "x"}))
    monkeypatch.setattr(demo_server, "check_runtime_installed", lambda: None)
    server = demo_server.make_server(folder, port=0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, server.server_address[1]
    server.shutdown()
    server.server_close()


def _raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        return b"".join(iter(lambda: s.recv(65536), b""))


def test_the_demo_offers_no_model_whose_card_lacks_its_sha256(demo):
    import urllib.request

    _, port = demo
    names = [m["name"] for m in json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/models").read())]
    assert names == ["lenet5-mnist-fp32.onnx"]
    reply = _raw(port, f"GET /models/evil.py.onnx HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    assert reply.startswith(b"HTTP/1.0 404")


@pytest.mark.parametrize("length", ["\u00b2".encode(), b"9" * 5000, b"-1", b"0x10"])
def test_a_bad_content_length_gets_an_answer(demo, length):
    _, port = demo
    reply = _raw(port, b"POST /api/preprocess HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: %s\r\n\r\n{}"
                 % (port, length))
    assert reply.split(b"\r\n")[0].split()[1] in (b"400", b"411")


def test_a_cross_site_post_is_refused(demo):
    _, port = demo
    body = json.dumps({"width": 1, "height": 1, "ink": "AA=="}).encode()
    head = f"POST /api/preprocess HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(body)}\r\n"
    assert _raw(port, (head + "Origin: https://evil.example\r\n\r\n").encode() + body).startswith(b"HTTP/1.0 403")
    assert _raw(port, (head + "Sec-Fetch-Site: cross-site\r\n\r\n").encode() + body).startswith(b"HTTP/1.0 403")
    same = _raw(port, (head + f"Origin: http://127.0.0.1:{port}\r\n\r\n").encode() + body)
    assert same.startswith(b"HTTP/1.0 200")


def test_the_demo_takes_a_crowd_of_clients_at_once(demo):
    server, port = demo
    assert server.request_queue_size >= 128  # the socket's listen backlog (it was 5)
    failures = []

    def client():
        try:
            reply = _raw(port, f"GET /api/models HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            if not reply.startswith(b"HTTP/1.0 200"):
                failures.append(reply[:40])
        except OSError as error:
            failures.append(error)

    crowd = [threading.Thread(target=client) for _ in range(200)]
    for t in crowd:
        t.start()
    for t in crowd:
        t.join()
    assert not failures


# 7. full disks, folders and FIFOs as results files -----------------------------------------------------------------

def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "card.json")


def test_a_full_disk_at_the_card_leaves_no_artifact_and_no_traceback(made, tmp_path, capsys, monkeypatch):
    root, _ = made
    out = tmp_path / "out"
    argv = ["export", str(root / "run"), "--quantize", "none", "--format", "tflite", "--out-dir", str(out),
            "--data-dir", str(root / "data")]
    real_write_text = Path.write_text
    monkeypatch.setattr(Path, "write_text", lambda self, *a, **k: _enospc() if self.name.endswith(".tflite.json")
                        else real_write_text(self, *a, **k))
    _one_line_error(capsys, main(argv), "No space left on device")
    assert not list(out.iterdir())
    monkeypatch.undo()
    assert main(argv) == 0  # no --force needed: nothing was left behind


def test_a_full_disk_while_benching_is_one_line(made, tmp_path, capsys, monkeypatch):
    from edge_emnist.bench import suite

    artifact = _copy(made, tmp_path, "lenet5-mnist-fp32.tflite")
    monkeypatch.setattr(suite, "append_jsonl", _enospc)
    _one_line_error(capsys, _bench([str(artifact), "--no-accuracy", "--results", str(tmp_path / "r.jsonl")]),
                    "No space left")


@pytest.mark.parametrize("command", ["bench", "pick", "report", "fifo-bench", "fifo-pick", "fifo-report"])
def test_a_results_path_that_is_not_a_regular_file_is_refused_before_work(made, tmp_path, capsys, command):
    artifact = _copy(made, tmp_path, "lenet5-mnist-fp32.tflite")
    target = tmp_path / "results"
    if command.startswith("fifo"):
        os.mkfifo(target)
    else:
        target.mkdir()
    argv = {"bench": ["bench", str(artifact), "--runs", "5"], "pick": ["pick"], "report": ["report"]}
    started = time.perf_counter()
    code = main([*argv[command.removeprefix("fifo-")], "--results", str(target)])
    _one_line_error(capsys, code, "is a FIFO" if command.startswith("fifo") else "is a folder")
    assert time.perf_counter() - started < 30  # never waits on the FIFO


# 8. the runner folder never writes through a link --------------------------------------------------------------------

def test_runner_force_replaces_a_link_instead_of_writing_through_it(tmp_path, capsys):
    outside = tmp_path / "precious.py"
    outside.write_text("keep me\n")
    folder = tmp_path / "device"
    folder.mkdir()
    (folder / "runner.py").symlink_to(outside)
    _one_line_error(capsys, main(["runner", str(folder)]), "--force replaces them")
    assert main(["runner", str(folder), "--force"]) == 0
    assert outside.read_text() == "keep me\n"
    assert not (folder / "runner.py").is_symlink() and "def main" in (folder / "runner.py").read_text()


# 9. results are streamed ---------------------------------------------------------------------------------------------

def test_records_are_streamed_keeping_the_latest_of_each_setting(tmp_path):
    from edge_emnist.report.results import failed, latest, load_records, skipped

    base = {"schema": 2, "artifact": "m.tflite", "runtime": "litert", "target": "cpu:x", "size_bytes": 1,
            "gzip_bytes": 1, "accuracy": 0.9, "latency": {f: 1.0 for f in ("p50_ms", "p90_ms", "p99_ms", "mean_ms",
                                                                             "runs")}}
    lines = []
    for i in range(20_000):
        lines.append({**base, "settings": {"threads": 1 + i % 2}, "batch": 1 + i % 3, "session": str(i)})
    lines.append({"schema": 2, "runtime": "ort-cuda", "artifact": None, "skipped": "no GPU", "target": "cpu:x"})
    lines.append({"schema": 2, "artifact": "m.tflite", "runtime": "litert", "settings": {"threads": 3},
                  "failed": "boom", "target": "cpu:x"})
    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    kept = load_records([path])
    assert len(kept) == 2 * 3 + 2  # six settings, one skip, one failure: not 20,002 records in memory
    assert {r["session"] for r in latest(kept)} == {str(i) for i in range(19_994, 20_000)}
    assert len(failed(kept)) == 1 and len(skipped(kept)) == 1


# 10. small ones ------------------------------------------------------------------------------------------------------

def test_a_failed_setting_carries_the_same_isa_tier_as_its_neighbours(made, tmp_path, monkeypatch):
    from edge_emnist.device.host import host_description
    from edge_emnist.targets.machines import LocalMachine

    artifact = _copy(made, tmp_path, "lenet5-mnist-fp32.tflite")

    def dies(self, argv):
        raise EdgeEmnistError("runner failed: no output")

    monkeypatch.setattr(LocalMachine, "run_runner", dies)
    (record,) = bench([artifact], BenchOptions(runs=5, results=tmp_path / "r.jsonl", accuracy=False),
                      log=lambda _: None)
    assert record["failed"] and record["target"] == LocalMachine.label(host_description())


def test_bench_sessions_are_unique_within_a_second_and_threads_are_bounded(tmp_path):
    assert len({new_session() for _ in range(50)}) == 50
    with pytest.raises(EdgeEmnistError, match="at most"):
        BenchOptions(threads=(99999,), results=tmp_path / "r.jsonl").validate()


def test_a_killed_writers_temporaries_are_removed_by_the_next_writer(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = tmp_path / f".tmp-{dead.stdout.strip()}-abc.results.json"
    orphan.write_text("half")
    mine = tmp_path / f".tmp-{os.getpid()}-def.other.json"
    mine.write_text("in progress")
    with atomic_path(tmp_path / "results.json") as tmp:
        tmp.write_text("{}")
    assert not orphan.exists() and mine.exists()


def test_a_train_that_fails_on_bad_data_leaves_no_run_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    run = tmp_path / "run"
    code = main(["train", "--arch", "lenet5", "--dataset", "mnist", "--data-dir", str(tmp_path / "empty"),
                 "--no-download", "--run-dir", str(run), "--epochs", "1"])
    assert code == 2 and not run.exists()


# 11. the grid is the study's -----------------------------------------------------------------------------------------

def test_the_sweep_uses_the_studys_momentum_and_says_what_differs():
    from edge_emnist.sweep import differences_from_study

    assert TrainConfig(arch="lenet5").momentum == 0.9
    assert differences_from_study(TrainConfig(arch="lenet5", augment="off")) == []
    assert differences_from_study(TrainConfig(arch="lenet5", epochs=5)) == ["epochs 5 (the study: 70)",
                                                                            "augment on (the study: off)"]


# 12. a GPU runtime is available only if it really starts ------------------------------------------------------------

def test_a_vulkan_loader_without_a_gpu_is_not_a_gpu(monkeypatch):
    """With the loader present (`libvulkan1`) but no adapter, the accelerator is asked in a child process, whose
    failure (or abort at exit) is the reason; this process never loads it."""
    import ctypes.util

    from edge_emnist.device import runtimes

    calls = []

    def child(argv, **kwargs):
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 134, "", "free(): invalid pointer\n")

    monkeypatch.setattr(ctypes.util, "find_library", lambda name: f"lib{name}.so.1")
    monkeypatch.setattr(subprocess, "run", child)
    runtimes.litert_gpu_probe.cache_clear()
    try:
        reason = runtimes.unavailable_reason("litert-gpu")
    finally:
        runtimes.litert_gpu_probe.cache_clear()
    if reason and "wheel has no GPU accelerator" in reason:
        pytest.skip(reason)
    assert calls and calls[0][0] == sys.executable
    assert "failed to start here (exit 134" in reason
