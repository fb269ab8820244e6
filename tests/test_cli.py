import csv
import subprocess
import sys

import numpy as np
import pytest

from edge_emnist.cli import main
from edge_emnist.data.idx import write_idx
from edge_emnist.data.registry import get_dataset
from tests.conftest import write_tiny

PNG = b"\x89PNG\r\n\x1a\n"


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_list_shows_local_counts(tiny_bymerge, capsys):
    _, folder, _ = tiny_bymerge
    code, out, _ = run(capsys, "data", "list", "--data-dir", str(folder))
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("emnist-bymerge"))
    assert row.split()[:7] == ["emnist-bymerge", "47", "697,932", "116,323", "141", "47", "no"]
    assert "not present" in next(line for line in out.splitlines() if line.startswith("mnist"))


def test_show_writes_a_png_grid(tiny_bymerge, tmp_path, capsys):
    _, folder, _ = tiny_bymerge
    out_png = tmp_path / "grid.png"
    code, out, err = run(capsys, "data", "show", "--dataset", "emnist-bymerge", "-n", "16", "-o", str(out_png),
                         "--data-dir", str(folder))
    assert code == 0 and out_png.read_bytes().startswith(PNG)
    assert "16 train images" in out and err.count("\n") == 1  # the one-line not-official notice
    assert not list(tmp_path.glob(".tmp-*"))  # no temporary left beside it


def test_stats_writes_histogram_and_csv(tiny_bymerge, tmp_path, capsys):
    _, folder, _ = tiny_bymerge
    code, out, _ = run(capsys, "data", "stats", "--dataset", "emnist-bymerge", "--data-dir", str(folder),
                       "-o", str(tmp_path / "h.png"), "--csv", str(tmp_path / "h.csv"))
    assert code == 0 and (tmp_path / "h.png").read_bytes().startswith(PNG)
    rows = list(csv.reader(open(tmp_path / "h.csv")))
    assert rows[0] == ["class", "label", "train", "test", "train %"] and len(rows) == 48
    assert rows[1][:4] == ["0", "0", "3", "1"] and rows[-1][1] == "t"


def test_kmnist_titles_fall_back_to_ascii_names(tmp_path, capsys):
    write_tiny(get_dataset("kmnist"), tmp_path / "kmnist")
    code, _, _ = run(capsys, "data", "show", "--dataset", "kmnist", "-n", "4", "-o", str(tmp_path / "k.png"),
                     "--data-dir", str(tmp_path))
    assert code == 0 and (tmp_path / "k.png").exists()


def test_verify_flags_a_tampered_file(tiny_bymerge, capsys):
    spec, folder, _ = tiny_bymerge
    import hashlib

    sums = "".join(f"{hashlib.sha256((folder / n).read_bytes()).hexdigest()}  {n}\n" for n in spec.filenames())
    (folder / "SHA256SUMS").write_text(sums)
    code, out, _ = run(capsys, "data", "verify", "--data-dir", str(folder))
    assert code == 0 and "4 of 4 files verified" in out
    write_idx(folder / spec.filename("test", "labels"), (spec.num_classes - 1) * __import__("numpy").ones(47, "u1"))
    code, out, _ = run(capsys, "data", "verify", "--data-dir", str(folder))
    assert code == 1 and "MISMATCH with SHA256SUMS" in out and "1 FAILED" in out


def test_missing_data_is_one_line_error(tmp_path, capsys):
    code, out, err = run(capsys, "data", "show", "--data-dir", str(tmp_path), "-o", str(tmp_path / "g.png"))
    assert code == 2 and err.count("\n") == 1 and err.startswith("edge-emnist: error: emnist-bymerge: files not found")
    assert not (tmp_path / "g.png").exists()


def test_corrupt_file_is_one_line_error(tiny_bymerge, tmp_path, capsys):
    spec, folder, _ = tiny_bymerge
    path = folder / spec.filename("train", "images")
    path.write_bytes(path.read_bytes()[:100])
    code, _, err = run(capsys, "data", "show", "--data-dir", str(folder), "-o", str(tmp_path / "g.png"))
    assert code == 2 and err.count("\n") == 1 and "corrupt or truncated gzip" in err and str(path) in err


@pytest.mark.parametrize("argv,message", [
    (["data", "show", "--dataset", "emnist-foo"], "invalid choice"),
    (["data", "show", "-n", "0"], "must be a positive integer"),
    (["data"], "required"),
])
def test_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_console_script_help():
    result = subprocess.run([sys.executable, "-m", "edge_emnist.cli", "data", "show", "--help"],
                            capture_output=True, text=True, check=True)
    assert "--dataset" in result.stdout and "EDGE_EMNIST_DATA" in result.stdout


def test_check_passes_matching_labels_and_flags_shuffled_ones(tmp_path, capsys):
    spec = get_dataset("emnist-bymerge")
    folder = tmp_path / "emnist"
    written = write_tiny(spec, folder, counts={"train": 4 * 47, "test": 2 * 47}, noise=40)
    code, out, _ = run(capsys, "data", "check", "--dataset", "emnist-bymerge", "--data-dir", str(folder))
    assert code == 0 and "labels match the images" in out and "188 train -> 94 test" in out
    assert float(out.split("accuracy ")[1].split()[0]) > 0.9
    # the same images with the train labels shuffled: what a derived copy pairing the wrong files looks like
    labels = written["train"][1].copy()
    np.random.default_rng(1).shuffle(labels)
    write_idx(folder / spec.filename("train", "labels"), labels.astype(np.uint8))
    code, out, _ = run(capsys, "data", "check", "--dataset", "emnist-bymerge", "--data-dir", str(folder))
    assert code == 1 and "LABELS DO NOT MATCH THE IMAGES" in out


def test_check_bad_inputs_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["data", "check", "--dataset", "emnist-bymerge", "--queries", "0"])
    assert "must be" in capsys.readouterr().err
    code = main(["data", "check", "--dataset", "mnist", "--data-dir", str(tmp_path), "--no-download"])
    err = capsys.readouterr().err
    assert code != 0 and err.count("\n") == 1 and err.startswith("edge-emnist: error:")


def test_doctor_says_what_this_machine_can_do(capsys, tmp_path):
    from edge_emnist.device.host import host_description, isa_tier

    assert main(["doctor", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for section in ("This machine", "Runtimes and targets", "Training", "Data"):
        assert f"\n{section}\n" in f"\n{out}"
    assert f"-{isa_tier(host_description())}" in out and "ort (onnx, cpu)" in out
    from edge_emnist.device.formats import RUNTIMES

    assert all(f"{name} ({r.format}, {r.kind})" in out for name, r in RUNTIMES.items())  # every row of the table
    assert "none here: edge-emnist data download" in out  # an empty data folder says what to do


def test_shell_completion_offers_the_commands_and_their_options(tmp_path):
    """argcomplete's protocol: the shell sets _ARGCOMPLETE and COMP_LINE, the answers come on file descriptor 8."""
    pytest.importorskip("argcomplete")
    import os

    def complete(line: str) -> list[str]:
        out = tmp_path / "answers"
        code = ("import os, sys; from edge_emnist.cli import main; "
                f"fd = os.open({str(out)!r}, os.O_WRONLY | os.O_CREAT | os.O_TRUNC); os.dup2(fd, 8); main()")
        env = {**os.environ, "_ARGCOMPLETE": "1", "COMP_LINE": line, "COMP_POINT": str(len(line)),
               "_ARGCOMPLETE_IFS": "\n", "_ARGCOMPLETE_SUPPRESS_SPACE": "1"}
        subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=60)
        return out.read_text().split()

    assert {"export", "distill", "search", "bench"} <= set(complete("edge-emnist "))
    assert "--input" in complete("edge-emnist export --in")


def test_a_reader_that_closes_the_pipe_early_is_not_an_error(tmp_path):
    """`edge-emnist pick | head -1`: the rest of the output has nowhere to go; no error line, no traceback."""
    import subprocess
    import sys

    script = ("import argparse, sys\nfrom edge_emnist import cli\n"
              "def chatty(args):\n    for i in range(100000):\n        print('line', i)\n    return 0\n"
              "class Parser:  # a command whose output is far longer than what its reader takes\n"
              "    def parse_args(self, argv):\n        return argparse.Namespace(handler=chatty, verbose=False)\n"
              "cli.build_parser, cli._complete = Parser, lambda parser: None\nsys.exit(cli.main([]))\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()  # the reader has its first line
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert b"Broken pipe" not in err and b"Traceback" not in err and b"Exception ignored" not in err
