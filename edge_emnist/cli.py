# PYTHON_ARGCOMPLETE_OK  (argcomplete's marker: shell completion when it is installed, see README)
"""Command line: parse, call a stage, print. Options come from the config dataclasses' fields (options.py), so a
default, a help text or a choice lives once, where the stage reads it. Errors a user can fix (`EdgeEmnistError`,
`OSError`) end as one line on stderr with exit status 2, never a traceback."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from edge_emnist import __version__
from edge_emnist.bench.suite import BenchOptions
from edge_emnist.data.commands import data_commands
from edge_emnist.data.registry import DATASETS
from edge_emnist.data.source import DataLocation
from edge_emnist.demo.options import DemoOptions
from edge_emnist.errors import EdgeEmnistError
from edge_emnist.export.config import ExportOptions
from edge_emnist.options import add_options, from_args, positive_int
from edge_emnist.pipeline import PipelineConfig
from edge_emnist.report.bench_report import ReportOptions
from edge_emnist.report.pick import Constraints, PickOptions
from edge_emnist.robustness.config import RobustnessOptions
from edge_emnist.search import SearchOptions
from edge_emnist.targets.machines import SshOptions
from edge_emnist.tracking import DEFAULT as MLFLOW_DEFAULT
from edge_emnist.train_commands import training_commands
from edge_emnist.workspace import (
    COMMITTED_PROFILES,
    COMMITTED_RESULTS,
    COMMITTED_ROBUSTNESS,
    USER_PROFILES,
    USER_RESULTS,
    USER_ROBUSTNESS,
)


def _err(line: str) -> None:  # progress and warnings: stderr, so stdout stays the result
    print(line, file=sys.stderr)


# --- this machine, targets, models ---------------------------------------------------------------------

def cmd_doctor(args: argparse.Namespace) -> int:
    from edge_emnist.doctor import report

    print(report(args.data_dir, args.cache_dir), end="")
    return 0


def cmd_targets(args: argparse.Namespace) -> int:
    from edge_emnist.targets.qemu import install_all, status_lines

    install_all(args.install or (), log=_err)
    print("\n".join(status_lines()))
    return 0


def cmd_runner(args: argparse.Namespace) -> int:
    """Copy the device runner where a device without SSH (a phone under Termux, a board on a USB stick) gets it."""
    from edge_emnist.bench.runner_folder import how_to_use, write_runner

    written = write_runner(args.out, dataset=args.dataset, force=args.force, data_dir=args.data_dir,
                           cache_dir=args.cache_dir)
    print(how_to_use(args.out, written, args.dataset))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from edge_emnist.models.cost import cost_rows
    from edge_emnist.tables import markdown_table, text_table

    print((markdown_table if args.markdown else text_table)(*cost_rows(args.classes)))
    return 0


# --- train, sweep, prune, qat, export -------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    from edge_emnist.runs import check_run_folder

    options = from_args(ExportOptions, args)
    files = [p for p in args.runs if p.is_file() or (p / "saved_model.pb").exists()]  # trained elsewhere
    for run in args.runs:  # before TensorFlow loads: a wrong path is reported in a fraction of a second
        if run not in files:
            check_run_folder(run)
    from edge_emnist.export.artifacts import export_run
    from edge_emnist.export.imported import import_model

    refused: list[dict] = []
    runs = [import_model(p, dataset=options.dataset, orientation=options.orientation, pixels=options.pixels,
                         data_dir=args.data_dir, cache_dir=args.cache_dir, log=_err) if p in files else p
            for p in args.runs]
    for run in runs:
        tracker = _tracker(args.mlflow, run)  # before the export: an unreachable server is one line
        written = export_run(run, options, data_dir=args.data_dir, cache_dir=args.cache_dir, log=_err, refused=refused)
        if tracker:  # the artifacts with their cards, in the MLflow run of the training that made them
            for path in written:
                tracker.artifact(path, "exported")
                tracker.artifact(path.with_name(path.name + ".json"), "exported")
            tracker.close()
    if refused:
        _err(f"{len(refused)} artifact(s) refused by the parity check (recorded in {options.out_dir}/refused.jsonl)")
    return 1 if refused else 0


def _tracker(setting: str | None, run: Path):
    if not setting:
        return None
    from edge_emnist.tracking import Tracker

    return Tracker(setting, Path(run))


# --- bench, profile, robustness, report, pick ----------------------------------------------------------

def _machine(args: argparse.Namespace):
    from edge_emnist.targets.machines import machine_for

    ssh = from_args(SshOptions, args)
    return machine_for(args.target, ssh.ssh, port=ssh.ssh_port, identity=ssh.ssh_identity,
                       options=tuple(ssh.ssh_option or ()), python=ssh.remote_python)


def _appended(records: list[dict], results: Path) -> int:
    failures = [r for r in records if r.get("failed")]
    print(f"appended {len(records)} records to {results}" + (f" ({len(failures)} failed)" if failures else ""))
    return 1 if failures else 0


def cmd_bench(args: argparse.Namespace) -> int:
    from edge_emnist.bench.suite import artifact_files, bench, import_results, summary_lines
    from edge_emnist.device.records import checked
    from edge_emnist.io import append_jsonl, check_results_file

    if args.imports:
        check_results_file(args.results)
        records = import_results(args.imports, target=args.target)
        append_jsonl(args.results, checked(records))
        print(f"imported {len(records)} records into {args.results}")
        return 0
    if not args.artifacts:
        raise EdgeEmnistError("give artifacts to measure, or --import runner JSON files")
    records = bench(artifact_files(args.artifacts), from_args(BenchOptions, args), data_dir=args.data_dir,
                    cache_dir=args.cache_dir, log=_err, machine=_machine(args))
    print("\n".join(summary_lines(records)))
    return _appended(records, args.results)


def cmd_profile(args: argparse.Namespace) -> int:
    from edge_emnist.bench.suite import artifact_files, bench
    from edge_emnist.report.profiles import describe

    options = from_args(BenchOptions, args, batches=(1,), accuracy=False, yardstick=False, profile=True)
    records = bench(artifact_files(args.artifacts), options, log=_err, machine=_machine(args))
    print("\n".join(describe(records, args.top)))
    return _appended(records, args.results)


def cmd_robustness(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from tqdm import tqdm

    from edge_emnist.bench.suite import artifact_files
    from edge_emnist.robustness.evaluate import evaluate

    records = evaluate(artifact_files(args.artifacts), **asdict(from_args(RobustnessOptions, args)),
                       data_dir=args.data_dir, cache_dir=args.cache_dir, log=tqdm.write)
    print(f"appended {len(records)} records to {args.results}; `edge-emnist report --robustness {args.results}` "
          "draws the curves")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from edge_emnist.report.bench_report import write_report
    from edge_emnist.report.relative import Beside
    from edge_emnist.report.results import iter_records, load_records, records_or

    records = load_records(args.results)
    command = "edge-emnist report " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else "edge-emnist report"
    options = from_args(ReportOptions, args)
    output = write_report(records, options.out, command=command, card_dirs=options.exported,
                          robustness_records=records_or(args.robustness, COMMITTED_ROBUSTNESS),
                          profile_records=records_or(args.profiles, COMMITTED_PROFILES),
                          beside=Beside.of(iter_records(args.results), options.reference),
                          reference=options.reference)
    print(f"wrote {output}")
    return 0


def cmd_pick(args: argparse.Namespace) -> int:
    from edge_emnist.device.cards import CardShelf
    from edge_emnist.report import robustness
    from edge_emnist.report.pick import default_target, pick
    from edge_emnist.report.relative import Beside
    from edge_emnist.report.results import iter_records, load_records, records_or

    constraints, where = from_args(Constraints, args), from_args(PickOptions, args)
    records = load_records(args.results)
    cards = CardShelf(where.exported or ())  # robustness and pick read the same cards, each once
    robust = robustness.current(records_or(args.robustness, COMMITTED_ROBUSTNESS), cards)
    if constraints.min_robust_accuracy is not None and not robust:
        raise EdgeEmnistError("--min-robust-accuracy needs robustness records: run `edge-emnist robustness "
                              "ARTIFACTS` (or pass --robustness FILE)")
    robustness.attach(records, robust)
    _, why = pick(records, where.target or default_target(records), constraints, threads=where.threads,
                  dataset=where.dataset, artifact_dirs=where.exported, check_files=True,
                  allow_uncarded=where.allow_uncarded, input_kind=where.input_kind, cards=cards,
                  beside=Beside.of(iter_records(args.results), where.reference) if constraints.max_ratio else None)
    print(why)
    return 0


def cmd_pipeline(args: argparse.Namespace) -> int:
    from edge_emnist.pipeline import Pipeline

    started = time.perf_counter()
    pipeline = Pipeline(from_args(PipelineConfig, args), args.out, data_dir=args.data_dir, cache_dir=args.cache_dir,
                        log=lambda line: print(line, flush=True))
    print(pipeline.shipping(pipeline.execute(), time.perf_counter() - started))
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from edge_emnist.search import front_lines, run_search

    options, machine, log = from_args(SearchOptions, args), _machine(args), lambda line: print(line, flush=True)
    front = run_search(options, data_dir=args.data_dir, cache_dir=args.cache_dir, machine=machine, log=log)
    print("\n".join(front_lines(front)))
    if options.finalists and front:
        from edge_emnist.search import train_finalists

        done = train_finalists(front, options, data_dir=args.data_dir, cache_dir=args.cache_dir, machine=machine,
                               log=log)
        print("\n".join(f"finalist trial {f['trial']}: val {f['val_accuracy']:.4f}, test {f['test_accuracy']:.4f} "
                         f"-> {f['run']}" for f in done["finalists"]))
        print(f"{len(done['artifacts'])} artifacts ({done['refused']} refused) benched into {done['results']}; "
              f"report: {done['report']}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from edge_emnist.demo.server import build_web, serve

    options = from_args(DemoOptions, args)
    if options.build:
        build_web()
    serve(options.exported, options.host, options.port, open_browser=options.open)
    return 0


# --- parser -------------------------------------------------------------------------------------------

def _data_options(parser: argparse.ArgumentParser) -> None:
    add_options(parser.add_argument_group("data location"), DataLocation)


def _where_options(p: argparse.ArgumentParser) -> None:
    add_options(p, BenchOptions, ["target"])
    add_options(p.add_argument_group("measuring on a device over SSH (needs numpy and ai-edge-litert/onnxruntime "
                                     "there)"), SshOptions)


def _results_in(p: argparse.ArgumentParser, what: str = "JSONL files") -> None:
    p.add_argument("--results", type=Path, nargs="+", metavar="JSONL", default=[COMMITTED_RESULTS],
                   help=f"{what} (default: {COMMITTED_RESULTS}; yours: {USER_RESULTS})")


def _records_in(p: argparse.ArgumentParser, flag: str, what: str, committed: Path, yours: Path) -> None:
    p.add_argument(flag, type=Path, nargs="+", metavar="JSONL",
                   help=f"{what} (default: {committed} where it exists; yours: {yours})")


def _command(commands, name: str, handler: Callable[[argparse.Namespace], int], help: str,
             description: str | None = None, data: bool = False) -> argparse.ArgumentParser:
    p = commands.add_parser(name, help=help, description=description or help)
    p.set_defaults(handler=handler)
    if data:
        _data_options(p)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-emnist",
        description="Train, prune, quantize, export and benchmark handwritten-character CNNs for edge devices.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--verbose", action="store_true",
                        help="let TensorFlow, LiteRT and ONNX Runtime print their own start-up and info lines")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    data_commands(commands, _command)
    _machine_commands(commands)
    training_commands(commands, _command)
    _delivery_commands(commands)
    _measurement_commands(commands)
    return parser


def _machine_commands(commands) -> None:
    _command(commands, "doctor", cmd_doctor, "what this machine can do: CPU and int8 ISA, runtimes, targets, "
             "training backends, data", "One screen of what this machine offers edge-emnist and, for what it does "
             "not, why: the ISA features that decide int8 behaviour, LiteRT/ONNX Runtime and their GPU paths, "
             "emulated CPUs, SSH, Keras backends, the data.", data=True)
    p = _command(commands, "targets", cmd_targets, "emulated CPUs for cross-ISA answer checks, and their "
                 "installation", "CPUs this machine can emulate with QEMU user mode to check that an artifact gives "
                 "the same answers there (int8 kernels differ by ISA). Emulated runs measure correctness, never "
                 "latency.")
    p.add_argument("--install", nargs="+", metavar="TARGET", help="fetch what these targets need (QEMU from Debian)")
    p = _command(commands, "runner", cmd_runner, "write the device runner to a folder, for a device without SSH",
                 "Copies the runner and the modules it needs (edge_emnist/device: plain Python over numpy and the "
                 "runtimes) to OUT, to carry to a device that `bench --ssh` cannot reach; its --json output comes "
                 "back with `bench --import`.", data=True)
    p.add_argument("out", type=Path, metavar="OUT", help="folder to write to (made if missing)")
    p.add_argument("--force", action="store_true", help="replace runner files already there")
    p.add_argument("--dataset", choices=sorted(DATASETS), help="also write this dataset's test split as "
                                                              "<name>-test.npz, for accuracy on the device")
    p = _command(commands, "models", cmd_models, "the architectures with their parameters and MACs")
    p.add_argument("--classes", type=positive_int, default=47, help="output classes (default: 47)")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p = _command(commands, "demo", cmd_demo, "draw a character in the browser; the exported ONNX model reads it on "
                 "your device", "Serve the handwriting demo: a drawing pad (mouse and touch), undo and clear, the "
                 "top-5 characters with probabilities, the inference time, and a picker among the .onnx models in "
                 "--exported. Inference runs in the browser with onnxruntime-web, served from the local npm install "
                 "(no CDN: works offline).")
    add_options(p, DemoOptions)


def _delivery_commands(commands) -> None:

    p = _command(commands, "export", cmd_export, "TFLite/ONNX artifacts with model cards, parity-checked",
                 "Convert runs to TFLite and/or ONNX. Every artifact is run on the whole test split through its own "
                 "runtime and compared with the Keras model before it is written, with a model card (.json) beside "
                 "it.", data=True)
    p.add_argument("runs", type=Path, nargs="+", metavar="RUN|FILE",
                   help="run folders (trained, pruned or QAT), or a model trained elsewhere: .keras, .h5 or a "
                        "SavedModel folder (with --dataset)")
    add_options(p, ExportOptions)
    p.add_argument("--mlflow", nargs="?", const=MLFLOW_DEFAULT, metavar="URI",
                   help="also log the artifacts and cards to the run's MLflow run (train --mlflow; default store "
                        f"{MLFLOW_DEFAULT}/)")
    p = _command(commands, "pipeline", cmd_pipeline, "data to a picked edge model in one resumable command",
                 "train -> prune -> QAT -> export (TFLite and ONNX, float32/float16/dynamic/int8) -> bench -> profile "
                 "-> report -> pick, for each architecture. Prints the plan first; re-running the same command after "
                 "an interruption skips finished stages. The defaults finish in about 10 minutes on a 2-core CPU; "
                 "--arch all --epochs 70 is the full study.", data=True)
    add_options(p, PipelineConfig)
    p.add_argument("--out", type=Path, default=Path("runs/pipeline"),
                   help="folder for runs, artifacts, results, report and the pick (default: runs/pipeline)")
    p = _command(commands, "search", cmd_search, "search the edgenet family on the target for the accuracy-latency "
                 "front (Optuna)", "Each trial trains an edgenet shape briefly, converts it to .tflite and times it "
                 "at batch 1 on the target (here or --ssh); selection uses validation, never test. The study lives "
                 "in --storage (an SQLite file in --out by default): a killed search resumes, workers share it.",
                 data=True)
    add_options(p, SearchOptions)
    _where_options(p)


def _measurement_commands(commands) -> None:
    runtime = ["runtimes", "threads", "runs", "warmup", "xnnpack"]
    p = _command(commands, "bench", cmd_bench, "accuracy, size and latency of artifacts through their runtimes",
                 "Measure artifacts: accuracy on the full test split, size, init and first inference, batch-1 latency "
                 "over --runs timed runs (mean, std, p50, p90, p99), throughput at larger batches, peak memory, host "
                 "description. Appends one JSON record per setting to --results.", data=True)
    p.add_argument("artifacts", type=Path, nargs="*", metavar="ARTIFACT", help=".tflite / .onnx files or folders")
    add_options(p, BenchOptions, [*runtime, "batches", "accuracy", "yardstick", "test_images", "results"])
    _where_options(p)
    p.add_argument("--import", dest="imports", type=Path, nargs="+", metavar="JSON",
                   help="merge results a device produced with runner.py --json instead of measuring here")
    p = _command(commands, "profile", cmd_profile, "where one inference's time goes, operator by operator (batch 1)",
                 "Time every operator of each artifact at batch 1 on this machine, an emulated CPU or a device over "
                 "SSH: ONNX Runtime through its own profiler (with the execution provider of each node, so a CUDA "
                 "session shows what fell back to the CPU); LiteRT by timing each operator alone, saying whether "
                 "XNNPACK or a builtin kernel ran it. Prints the top operators and appends one `profile` record per "
                 "artifact, runtime and thread count; `report --profiles` shows them.")
    p.add_argument("artifacts", type=Path, nargs="+", metavar="ARTIFACT", help=".tflite / .onnx files or folders")
    add_options(p, BenchOptions, runtime, defaults={"runs": 500})
    p.add_argument("--top", type=positive_int, default=8, help="operators printed per artifact (default: 8)")
    p.add_argument("--results", type=Path, default=USER_PROFILES, help=f"JSONL file to append to (default: "
                   f"{USER_PROFILES}; the committed profiles are {COMMITTED_PROFILES})")
    _where_options(p)
    p = _command(commands, "robustness", cmd_robustness, "accuracy under rotation, stroke thickness, scale, shift, "
                 "noise; on MNIST; on pen strokes", "Every artifact through its own runtime on a seeded sample of its "
                 "test split under each transformation (rotation -20..20 deg, strokes -2..+2 px, zoom 0.7-1.2, 0-4 px "
                 "off centre, pixel noise), on MNIST test (a different collection of digits: full output and digits "
                 "only) and on characters drawn as pen strokes through the demo's preprocessing. One JSON record per "
                 "artifact; `report --robustness` draws the curves, `pick --min-robust-accuracy` uses them.",
                 data=True)
    p.add_argument("artifacts", type=Path, nargs="+", metavar="ARTIFACT", help=".tflite / .onnx files or folders")
    add_options(p, RobustnessOptions)
    p = _command(commands, "report", cmd_report, "Markdown table, Pareto plot per target and size bars from results",
                 "Write a Markdown report from benchmark records: per target the host, a Pareto plot of accuracy "
                 "against p90 latency, a per-architecture summary, every measured setting, skipped targets and "
                 "refused artifacts, and a size chart. Reads the committed measurements unless --results says "
                 "otherwise; writes to your workspace unless --out says otherwise.")
    _results_in(p)
    add_options(p, ReportOptions)
    _records_in(p, "--robustness", "records of `edge-emnist robustness` for the robustness curves, table and "
                "column", COMMITTED_ROBUSTNESS, USER_ROBUSTNESS)
    _records_in(p, "--profiles", "records of `edge-emnist profile` for the per-operator section", COMMITTED_PROFILES,
                USER_PROFILES)
    p = _command(commands, "pick", cmd_pick, "choose the artifact to ship from measurements on a target, with reasons",
                 "Without constraints, names the knee of the accuracy/latency Pareto front.")
    add_options(p, PickOptions)
    add_options(p.add_argument_group("pick constraints (none: the Pareto knee)"), Constraints)
    _records_in(p, "--robustness", "robustness records", COMMITTED_ROBUSTNESS, USER_ROBUSTNESS)
    _results_in(p)


def _terminate_as_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # `kill` cleans up like Ctrl-C: temporaries removed, nothing half-published


def _complete(parser: argparse.ArgumentParser) -> None:
    """Tab completion of commands and options where argcomplete is installed (it answers and exits only when the
    shell asks, through its environment variables; otherwise it does nothing)."""
    try:
        import argcomplete
    except ImportError:
        return
    argcomplete.autocomplete(parser)


def _silence_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so the interpreter's last flush does not complain either."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # a stdout without a file descriptor (tests' capture)
        pass


def main(argv: Sequence[str] | None = None) -> int:
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    parser = build_parser()
    _complete(parser)
    args = parser.parse_args(argv)
    if args.verbose:
        from edge_emnist.device.runtimes import VERBOSE_ENV

        os.environ[VERBOSE_ENV] = "1"  # before any stage imports TensorFlow or opens a runtime
    if getattr(args, "no_download", False):
        from edge_emnist.data.source import NO_DOWNLOAD_ENV

        os.environ[NO_DOWNLOAD_ENV] = "1"  # read by every load_dataset, however deep in a stage
    try:
        return args.handler(args)
    except EdgeEmnistError as e:
        _err(f"edge-emnist: error: {e}")
        return 2
    except KeyboardInterrupt:
        _err("edge-emnist: interrupted")
        return 130
    except BrokenPipeError:  # `edge-emnist pick | head -1`: the reader has what it wanted, nothing to report
        _silence_stdout()
        return 1
    except OSError as e:  # a full disk, a vanished folder, a permission: the system's reason and the file, one line
        _err(f"edge-emnist: error: {e.strerror or e}{f': {e.filename}' if e.filename else ''}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
