"""Command line: argument parsing only; every command calls a stage of the package.

Errors a user can fix (`EdgeEmnistError`) end as one line on stderr with exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from edge_emnist import __version__
from edge_emnist.data.registry import DATASETS
from edge_emnist.device.formats import CPU_RUNTIMES, FORMATS, QUANTIZATIONS, RUNTIMES
from edge_emnist.errors import EdgeEmnistError
from edge_emnist.keras3 import BACKENDS
from edge_emnist.pipeline import PipelineConfig
from edge_emnist.workspace import (
    COMMITTED_PROFILES,
    COMMITTED_RESULTS,
    COMMITTED_ROBUSTNESS,
    USER_EXPORTS,
    USER_PROFILES,
    USER_REPORT,
    USER_RESULTS,
    USER_ROBUSTNESS,
)

Handler = Callable[[argparse.Namespace], int]


def _runtime_options(p: argparse.ArgumentParser, *, runs: int, runs_help: str) -> None:
    """What bench and profile run each artifact on, and how often."""
    p.add_argument("--runtime", default=",".join(CPU_RUNTIMES),
                   help=f"comma list of {', '.join(RUNTIMES)} (default: {','.join(CPU_RUNTIMES)}); each artifact "
                        "runs on the ones that take its format; GPU targets absent here are recorded as skipped "
                        "with the reason")
    p.add_argument("--threads", type=_int_list, default=(1,), help="comma list (default: 1)")
    p.add_argument("--runs", type=_positive_int, default=runs, help=f"{runs_help} (default: {runs})")
    p.add_argument("--warmup", type=_positive_int, default=50, help="untimed runs first (default: 50)")
    p.add_argument("--no-xnnpack", action="store_true", help="LiteRT without the XNNPACK delegate")


def _where_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", help="label for this machine in results (default: cpu:<hostname>-<ISA tier>); an "
                                    "emulated target (edge-emnist targets: qemu-aarch64:cortex-a76, ...) runs the "
                                    "artifacts there under QEMU: its answers are that CPU's, its times QEMU's")
    ssh = p.add_argument_group("measuring on a device over SSH (needs numpy and ai-edge-litert/onnxruntime there)")
    ssh.add_argument("--ssh", metavar="USER@HOST", help="copy the runner and artifacts there, measure, bring the "
                                                        "records back labelled <arch>:<device hostname>")
    ssh.add_argument("--ssh-port", type=_positive_int, help="default: ssh's own (22 or ~/.ssh/config)")
    ssh.add_argument("--ssh-identity", type=Path, metavar="KEY", help="private key file (ssh -i)")
    ssh.add_argument("--ssh-option", action="append", metavar="KEY=VALUE", help="extra ssh -o option, repeatable")
    ssh.add_argument("--remote-python", default="python3", help="interpreter on the device (default: python3)")


def _data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data location")
    group.add_argument("--data-dir", metavar="DIR",
                       help="local folder with the IDX files, or a folder of such folders "
                            "(default: $EDGE_EMNIST_DATA, else the download cache)")
    group.add_argument("--cache-dir", metavar="DIR",
                       help="download cache (default: $EDGE_EMNIST_CACHE or ~/.cache/edge-emnist)")
    group.add_argument("--no-download", action="store_true", help="fail instead of downloading missing files")


def _dataset_option(parser: argparse.ArgumentParser, default: str | None = "emnist-bymerge") -> None:
    parser.add_argument("--dataset", default=default, choices=list(DATASETS), metavar="NAME",
                        help=f"one of: {', '.join(DATASETS)} (default: {default})")


def _positive_float(text: str) -> float:
    """A finite number above zero: nan would mean "no limit" and inf no limit either."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"want a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"want a fraction such as 0.88, got {text!r}") from None
    if not 0 <= value <= 1:  # False for nan
        raise argparse.ArgumentTypeError(f"must be a fraction between 0 and 1, got {text}")
    return value


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"want a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


# --- data ---------------------------------------------------------------------------------------------

def cmd_data_list(args: argparse.Namespace) -> int:
    from edge_emnist.data.inspect import list_datasets, search_root
    from edge_emnist.report.tables import text_table

    root = search_root(args.data_dir, args.cache_dir)
    rows = []
    for p in list_datasets(root):
        official = p.spec.official_counts
        rows.append([
            p.spec.name, p.spec.num_classes, official["train"], official["test"],
            p.counts["train"] if p.counts else "-", p.counts["test"] if p.counts else "-",
            {None: "-", True: "yes", False: "no"}[p.official], str(p.folder) if p.folder else "not present",
        ])
        if args.check:  # about a second per present dataset
            rows[-1].append(_label_verdict(p) if p.folder else "-")
    print(f"looking in {root}")
    headers = ["dataset", "classes", "official train", "official test", "local train", "local test", "official",
               "folder"]
    print(text_table(headers + (["labels (data check)"] if args.check else []), rows))
    return 0


def _label_verdict(present) -> str:
    from edge_emnist.data import load_dataset
    from edge_emnist.data.sanity import check_labels

    check = check_labels(load_dataset(present.spec, present.folder, quiet=True))
    return f"{'match' if check.ok else 'DO NOT MATCH'} (1-NN {check.accuracy:.3f})"


def cmd_data_verify(args: argparse.Namespace) -> int:
    from edge_emnist.data.inspect import search_root, verify
    from edge_emnist.data.registry import get_dataset
    from edge_emnist.report.tables import text_table

    root = search_root(args.data_dir, args.cache_dir)
    names = list(DATASETS) if args.dataset == "all" else [args.dataset]
    checks = [c for name in names for c in verify(get_dataset(name), root)]
    if args.dataset == "all":  # absent datasets are not failures when checking everything
        present = {c.dataset for c in checks if c.status != "missing"}
        checks = [c for c in checks if c.dataset in present]
    if not checks:
        raise EdgeEmnistError(f"no dataset files found under {root}")
    print(text_table(["dataset", "file", "sha256", "status"],
                     [[c.dataset, c.file, (c.sha256 or "-")[:16], c.status] for c in checks]))
    bad = [c for c in checks if not c.ok]
    print(f"{len(checks) - len(bad)} of {len(checks)} files verified" + (f", {len(bad)} FAILED" if bad else ""))
    return 1 if bad else 0


def _load(args: argparse.Namespace, splits: tuple[str, ...]):
    from edge_emnist.data.source import load_dataset

    return load_dataset(args.dataset, args.data_dir, args.cache_dir, splits=splits, download=not args.no_download)


def cmd_data_show(args: argparse.Namespace) -> int:
    import numpy as np

    from edge_emnist.data.viz import sample_grid

    dataset = _load(args, (args.split,))
    split = dataset.splits[args.split]
    rng = np.random.default_rng(args.seed)
    pick = np.sort(rng.choice(len(split), size=min(args.n, len(split)), replace=False))
    title = f"{dataset.spec.name} ({args.split}, {'official' if dataset.provenance.official else 'not official'})"
    out = sample_grid(split.images[pick], split.labels[pick], dataset.spec, args.output, title=title)
    print(f"wrote {out} ({len(pick)} {args.split} images of {dataset.spec.name})")
    return 0


def cmd_data_check(args: argparse.Namespace) -> int:
    from edge_emnist.data.sanity import check_labels

    check = check_labels(_load(args, ("train", "test")), references=args.references, queries=args.queries)
    print(check.line())
    return 0 if check.ok else 1


def cmd_data_derive_letters(args: argparse.Namespace) -> int:
    from edge_emnist.data.registry import get_dataset
    from edge_emnist.data.source import locate
    from edge_emnist.data.views import derive_letters

    source = locate(get_dataset(args.source), args.data_dir, args.cache_dir, download=not args.no_download)
    counts = derive_letters(source, args.out, args.source, balanced=not args.all_images)
    print(f"wrote emnist-letters to {args.out} from {args.source} in {source}: "
          f"{counts['train']:,} train / {counts['test']:,} test images; "
          f"use it with --data-dir {args.out}")
    return 0


def cmd_data_stats(args: argparse.Namespace) -> int:
    from edge_emnist.data.inspect import class_counts
    from edge_emnist.data.viz import class_histogram
    from edge_emnist.report.tables import text_table

    dataset = _load(args, ("train", "test"))
    counts = class_counts(dataset)
    spec = dataset.spec
    headers = ["class", "label", "train", "test", "train %"]
    total = counts["train"].sum()
    rows = [[c, spec.display_label(c, ascii_only=True), int(counts["train"][c]), int(counts["test"][c]),
             f"{100 * counts['train'][c] / total:.2f}"] for c in range(spec.num_classes)]
    print(text_table(headers, rows))
    ratio = counts["train"].max() / max(counts["train"].min(), 1)
    print(f"{spec.name}: {total:,} train / {counts['test'].sum():,} test images, "
          f"largest/smallest class {ratio:.1f}x, fingerprint {dataset.provenance.fingerprint[:12]}")
    if args.csv:
        from edge_emnist.io import atomic_path

        with atomic_path(args.csv) as tmp, open(tmp, "w", newline="") as f:
            csv.writer(f).writerows([headers, *rows])
        print(f"wrote {args.csv}")
    out = class_histogram(counts, spec, args.output)
    print(f"wrote {out}")
    return 0


def cmd_data_download(args: argparse.Namespace) -> int:
    from edge_emnist.data import download
    from edge_emnist.data.registry import get_dataset
    from edge_emnist.data.source import default_cache_dir, provenance

    spec = get_dataset(args.dataset)
    folder = download.download(spec, Path(args.cache_dir or default_cache_dir()) / spec.family.name,
                               mirror=args.mirror)
    prov = provenance(spec, folder)
    print(f"{spec.name}: {prov.counts['train']:,} train / {prov.counts['test']:,} test in {folder} "
          f"({'official, sha256 verified' if prov.official else 'NOT official'})")
    return 0


# --- models -------------------------------------------------------------------------------------------

def cmd_doctor(args: argparse.Namespace) -> int:
    from edge_emnist.doctor import report

    print(report(args.data_dir, args.cache_dir), end="")
    return 0


def cmd_targets(args: argparse.Namespace) -> int:
    from edge_emnist.targets.qemu import EMULATED_CPUS, install, missing, tools_dir

    if args.install:
        unknown = [name for name in args.install if name not in EMULATED_CPUS]
        if unknown:
            raise EdgeEmnistError(f"unknown emulated target {unknown[0]!r}: choose from {', '.join(EMULATED_CPUS)}")
        for name in args.install:
            install(name, log=lambda line: print(line, file=sys.stderr))
    for cpu in EMULATED_CPUS.values():
        absent = missing(cpu.name)
        state = f"not installed ({absent}): edge-emnist targets --install {cpu.name}" if absent else "ready"
        print(f"{cpu.name:<26} {cpu.describes}; {state}")
    print(f"emulators live in {tools_dir()} (${'EDGE_EMNIST_TOOLS'}); emulated runs check answers, not speed")
    return 0


def cmd_runner(args: argparse.Namespace) -> int:
    """Copy the device runner where a device without SSH (a phone under Termux, a board on a USB stick) gets it."""
    from edge_emnist.bench.runner_folder import write_runner

    written = write_runner(args.out, dataset=args.dataset, force=args.force, data_dir=args.data_dir,
                           cache_dir=args.cache_dir)
    data = written[-1] if args.dataset else None
    print(f"wrote {', '.join(p.name for p in written)} to {args.out}/ (Python "
          "3.9+, numpy, and ai-edge-litert or onnxruntime there). On the device:\n"
          "  python runner.py model.tflite --threads 1,4 --batch 1,32 --json out.json      # latency, memory\n"
          f"  python runner.py model.tflite --data {data.name if data else 'TEST.npz'} --json out.json   # + accuracy\n"
          "  python runner.py model.tflite --profile --json profile.json                   # per operator\n"
          "back here: edge-emnist bench --import out.json --target arm:pi5")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from edge_emnist.models import list_models
    from edge_emnist.models.cost import cached_costs, macs, trainable_params
    from edge_emnist.report.tables import markdown_table, text_table

    profiles = cached_costs()  # no TensorFlow for the usual class counts: the listing is instant
    if any(str(args.classes) not in profiles.get(name, {}).get("classes", {}) for name in list_models()):
        from edge_emnist.models import create_model, model_entry

        profiles = {name: {"description": model_entry(name).description, "classes": {
            str(args.classes): [trainable_params(m), macs(m)] for m in [create_model(name, args.classes)]}}
            for name in list_models()}
    rows = [[name, *profiles[name]["classes"][str(args.classes)], profiles[name]["description"]]
            for name in list_models()]
    headers = ["architecture", f"trainable parameters ({args.classes} classes)", "MACs per image", "description"]
    print((markdown_table if args.markdown else text_table)(headers, rows))
    return 0


# --- train and sweep -----------------------------------------------------------------------------------

def _train_config(args: argparse.Namespace, arch: str):
    from edge_emnist.runs import TrainConfig

    options = {"channels": args.channels, "input_size": args.input_size} if arch == "resnet50" else {}
    return TrainConfig(
        arch=arch, dataset=args.dataset, epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer,
        lr=args.lr, momentum=args.momentum, lr_schedule=args.lr_schedule, init=args.init, patience=args.patience,
        seed=args.seed,
        val_fraction=args.val_fraction, augment=args.augment, train_limit=args.train_limit,
        mixed_precision=args.mixed_precision, distribute=args.distribute,
        model_options={k: v for k, v in options.items() if v is not None},
    )


def _print_metrics(metrics: dict, run_dir: Path) -> None:
    print(f"{metrics['arch']} on {metrics['dataset']}: validation {metrics['val_accuracy']:.4f} "
          f"(epoch {metrics['best_epoch']} of {metrics['epochs_run']}), test {metrics['test_accuracy']:.4f}, "
          f"{metrics['seconds_per_epoch']:.1f} s/epoch, {metrics['images_per_s']:,.0f} images/s -> {run_dir}")


def cmd_train(args: argparse.Namespace) -> int:
    from edge_emnist.runs import default_run_dir
    from edge_emnist.train import train

    config = _train_config(args, args.arch)
    run_dir = args.run_dir or default_run_dir(config)
    metrics = train(config, run_dir, resume=args.resume, data_dir=args.data_dir, cache_dir=args.cache_dir,
                    backend=args.backend, workers=args.workers)
    _print_metrics(metrics, run_dir)
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from edge_emnist.sweep import parse_grid, run_sweep

    grid = parse_grid(args.grid)
    out_dir = args.out or Path("runs") / f"sweep-{args.arch}-{args.dataset}"
    run_sweep(_train_config(args, args.arch), grid, out_dir, data_dir=args.data_dir, cache_dir=args.cache_dir,
              backend=args.backend, workers=args.workers)
    print((out_dir / "sweep.md").read_text())
    print(f"wrote {out_dir / 'sweep.md'} and {out_dir / 'sweep.csv'}")
    return 0


def _augment_spec(text: str) -> str:
    from edge_emnist.data.augment import Augment

    try:
        Augment.parse(text)
    except (TypeError, ValueError) as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _training_options(parser: argparse.ArgumentParser) -> None:
    from edge_emnist.models import list_models
    from edge_emnist.runs import TrainConfig

    parser.add_argument("--arch", required=True, choices=list_models(), metavar="ARCH",
                        help=f"one of: {', '.join(list_models())}")
    _dataset_option(parser)
    parser.add_argument("--epochs", type=_positive_int, default=70, help="maximum epochs (default: 70)")
    parser.add_argument("--batch-size", type=_positive_int, default=256, help="default: 256")
    parser.add_argument("--optimizer", choices=["adam", "nadam", "sgd"], default="adam")
    parser.add_argument("--lr", type=_positive_float, default=TrainConfig.lr,
                        help=f"learning rate (default: {TrainConfig.lr:g})")
    parser.add_argument("--momentum", type=_finite_float, default=TrainConfig.momentum,
                        help=f"SGD momentum (default: {TrainConfig.momentum:g}, the study's)")
    parser.add_argument("--lr-schedule", choices=["constant", "plateau"], default="constant",
                        help="plateau: halve the LR after 2 epochs without validation-loss gain (default: constant, "
                             "the study's); --resume --lr-schedule plateau switches it on for the rest of a run")
    parser.add_argument("--init", choices=["glorot", "random", "he", "lecun"], default="glorot",
                        help="kernel initializer: Keras' glorot (default), random normal (std 0.05), he, lecun")
    parser.add_argument("--patience", type=_positive_int, default=10,
                        help="stop after this many epochs without a better validation accuracy (default: 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-fraction", type=_finite_float, default=0.1,
                        help="share of train held out for validation, stratified (default: 0.1)")
    parser.add_argument("--augment", type=_augment_spec, default="on", metavar="SPEC",
                        help="random handwriting variation while training: on (default: rotation 12 deg, shift 2 px, "
                             "scale 15%%, shear 8 deg, strokes +-1 px, elastic 1 px), off, a strength (0.5 halves "
                             "every magnitude), or NAME=VALUE,... with NAME rotation_deg, shift_px, scale, shear_deg, "
                             "thickness_px, elastic_px, noise; recorded in the run's config.json")
    parser.add_argument("--train-limit", type=_positive_int, metavar="N",
                        help="train on N images only (quick trials; validation shrinks to N/5)")
    parser.add_argument("--channels", type=int, choices=[1, 3], help="resnet50 only: 3 repeats the grey channel")
    parser.add_argument("--input-size", type=int, help="resnet50 only: resize to this size (default: pad to 32)")
    parser.add_argument("--mixed-precision", choices=["auto", "on", "off", "bfloat16", "float16"], default="auto",
                        help="16-bit compute with a float32 softmax: auto (default) = bfloat16 on a GPU, float32 on a "
                             "CPU; on = bfloat16; float16 adds loss scaling")
    parser.add_argument("--distribute", choices=["auto", "none", "mirrored"], default="auto",
                        help="auto (default) = data parallel over 2+ GPUs (JAX: keras.distribution.DataParallel, "
                             "TensorFlow: MirroredStrategy); mirrored = over every device, CPUs too")
    parser.add_argument("--backend", choices=list(BACKENDS),
                        help="Keras 3 backend that trains (default: KERAS_BACKEND, else on an NVIDIA GPU the first "
                             "installed of jax, torch, tensorflow, on a CPU tensorflow, the fastest there); a run can "
                             "be resumed on another")
    parser.add_argument("--workers", type=_positive_int, metavar="N",
                        help="threads making augmented batches ahead of the training step (default: half the cores)")
    _data_options(parser)


# --- optimize and export -------------------------------------------------------------------------------

def _sparsity_fraction(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text}")
    return value


def _print_optimized(metrics: dict, output: Path) -> None:
    sparsity = metrics["sparsity"]
    print(f"{'layer':<40} {'zeros':>10} {'weights':>10} {'sparsity':>9}")
    for name, layer in sparsity["layers"].items():
        print(f"{name:<40} {layer['zeros']:>10,} {layer['size']:>10,} {layer['sparsity']:>9.1%}")
    print(f"{'total':<40} {sparsity['zeros']:>10,} {sparsity['kernel_weights']:>10,} {sparsity['total']:>9.1%}")
    source = metrics.get("source_test_accuracy")
    before = f" (source {source:.4f})" if source is not None else ""
    print(f"validation {metrics['val_accuracy']:.4f}, test {metrics['test_accuracy']:.4f}{before} -> {output}")


def _optimize(args: argparse.Namespace, prune, qat: bool, qat_epochs: int | None = None) -> int:
    from edge_emnist.optimize.finetune import default_output, optimize_run

    output = args.output or default_output(args.run, prune, qat)
    metrics = optimize_run(args.run, prune=prune, qat=qat, epochs=args.epochs, qat_epochs=qat_epochs, lr=args.lr,
                           output=output, data_dir=args.data_dir, cache_dir=args.cache_dir)
    _print_optimized(metrics, output)
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from edge_emnist.runs import check_run_folder

    check_run_folder(args.run)  # before TensorFlow loads
    from edge_emnist.optimize.prune import PruneConfig, parse_m_by_n

    prune = PruneConfig(args.sparsity, args.schedule, parse_m_by_n(args.m_by_n) if args.m_by_n else None)
    prune.validate()
    if prune.m_by_n:
        prune.sparsity = 1 - prune.m_by_n[0] / prune.m_by_n[1]
    return _optimize(args, prune, args.qat, args.qat_epochs)


def cmd_qat(args: argparse.Namespace) -> int:
    from edge_emnist.runs import check_run_folder

    check_run_folder(args.run)  # before TensorFlow loads
    return _optimize(args, None, True)


def cmd_export(args: argparse.Namespace) -> int:
    from edge_emnist.runs import check_run_folder

    for run in args.runs:  # before TensorFlow loads: a wrong path is reported in a fraction of a second
        check_run_folder(run)
    from edge_emnist.export.artifacts import ExportOptions, export_run

    formats = tuple(FORMATS) if args.format == "all" else (args.format,)
    options = ExportOptions(quantize=args.quantize, formats=formats, io_type=args.io,
                            calibration_size=args.calibration_size, out_dir=args.out_dir, force=args.force,
                            check_on=tuple(args.check_on or ()), check_images=args.check_images)
    refused: list[dict] = []
    for run in args.runs:
        export_run(run, options, data_dir=args.data_dir, cache_dir=args.cache_dir,
                   log=lambda line: print(line, file=sys.stderr), refused=refused)
    if refused:
        print(f"{len(refused)} artifact(s) refused by the parity check (recorded in {options.out_dir}/refused.jsonl)",
              file=sys.stderr)
    return 1 if refused else 0


def _finetune_options(parser: argparse.ArgumentParser, epochs_help: str) -> None:
    parser.add_argument("run", type=Path, metavar="RUN", help="a finished training run folder")
    parser.add_argument("--epochs", type=_positive_int, default=2, help=epochs_help)
    parser.add_argument("--lr", type=_positive_float, default=1e-4, help="fine-tuning learning rate (default: 1e-4)")
    parser.add_argument("--output", type=Path, metavar="DIR",
                        help="new run folder (default: RUN-p50, RUN-qat, RUN-p50-qat beside RUN)")
    _data_options(parser)


# --- bench, report, pick -------------------------------------------------------------------------------

def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"want a comma list of integers such as 1,2, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"want positive integers, got {text!r}")
    return values


def cmd_bench(args: argparse.Namespace) -> int:
    from edge_emnist.bench.suite import BenchOptions, bench
    from edge_emnist.io import append_jsonl

    if args.imports:
        from edge_emnist.bench.suite import import_results

        records = import_results(args.imports, target=args.target)
        append_jsonl(args.results, records)
        print(f"imported {len(records)} records into {args.results}")
        return 0
    if not args.artifacts:
        raise EdgeEmnistError("give artifacts to measure, or --import runner JSON files")
    options = BenchOptions(runtimes=tuple(args.runtime.split(",")), threads=args.threads, batches=args.batch,
                           runs=args.runs, warmup=args.warmup, xnnpack=not args.no_xnnpack,
                           accuracy=not args.no_accuracy, yardstick=not args.no_yardstick, target=args.target,
                           results=args.results, test_images=args.test_images)
    records = bench(args.artifacts, options, data_dir=args.data_dir, cache_dir=args.cache_dir,
                    log=lambda line: print(line, file=sys.stderr), machine=_machine(args, options))
    measured = [r for r in records if not r.get("skipped") and not r.get("failed")]
    print(f"{'artifact':<44} {'runtime':<7} {'thr':>3} {'batch':>5} {'accuracy':>8} {'p50 ms':>9} "
          f"{'p90 ms':>9} {'img/s':>9}  litert-benchmark")
    for r in measured:
        yard = r.get("yardstick")
        note = (f"{yard['litert_benchmark']['median_ms']:.2f} ms, {'agrees' if yard['agrees'] else 'DIFFERS'}"
                if yard else "QEMU's time, not the CPU's" if r.get("emulated") else "")
        accuracy = f"{r['accuracy']:.4f}" if r["accuracy"] is not None else "-"
        print(f"{r['artifact']:<44} {r['runtime']:<7} {r['settings']['threads']:>3} {r['batch']:>5} {accuracy:>8} "
              f"{r['latency']['p50_ms']:>9.4f} {r['latency']['p90_ms']:>9.4f} {r['throughput_ips']:>9,.0f}  {note}")
    failures = [r for r in records if r.get("failed")]
    print(f"appended {len(records)} records to {args.results}" + (f" ({len(failures)} failed)" if failures else ""))
    return 1 if failures else 0


def _machine(args: argparse.Namespace, options):
    """Where bench/profile run: an emulated CPU (its records named after it), a device over SSH, or here."""
    from edge_emnist.targets.qemu import EMULATED_CPUS

    if args.target in EMULATED_CPUS:
        from edge_emnist.targets.machines import EmulatedMachine

        options.target = None
        return EmulatedMachine(args.target)
    if args.ssh:
        from edge_emnist.targets.machines import SshMachine

        return SshMachine(args.ssh, port=args.ssh_port, identity=args.ssh_identity,
                          options=tuple(args.ssh_option or ()), python=args.remote_python)
    return None


def cmd_profile(args: argparse.Namespace) -> int:
    from edge_emnist.bench.suite import BenchOptions, bench
    from edge_emnist.report.profiles import outside

    options = BenchOptions(runtimes=tuple(args.runtime.split(",")), threads=args.threads, batches=(1,),
                           runs=args.runs, warmup=args.warmup, xnnpack=not args.no_xnnpack, accuracy=False,
                           yardstick=False, target=args.target, results=args.results, profile=True)
    records = bench(_artifact_files(args.artifacts), options, log=lambda line: print(line, file=sys.stderr),
                    machine=_machine(args, options))
    for r in records:
        if r.get("kind") != "profile":
            continue
        head = f"{r['artifact']} on {r['runtime']} ({r['settings']['threads']} thread(s)), {r['target']}"
        if r.get("unavailable"):
            print(f"{head}: {r['unavailable']}")
            continue
        print(f"{head}: whole inference {r['total_ms']:.4f} ms; {r['method']}")
        for op in r["operators"][:args.top]:
            where = op.get("kernel") or (op.get("provider") or "").replace("ExecutionProvider", "")
            print(f"  {op['ms']:9.4f} ms {op['ms'] / r['operators_ms']:6.1%}  {op['op']:<18} {where:<8} {op['name']}")
        slow = outside(r)
        if slow:
            print(f"  outside the accelerated path: {', '.join(slow)}")
    failures = [r for r in records if r.get("failed")]
    print(f"appended {len(records)} records to {args.results}" + (f" ({len(failures)} failed)" if failures else ""))
    return 1 if failures else 0


def _artifact_files(paths: list[Path]) -> list[Path]:
    """Files as given; a folder stands for every artifact in it."""
    from edge_emnist.device.formats import RUNTIME_OF_SUFFIX

    found = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix in RUNTIME_OF_SUFFIX)
        elif not (path.suffix == ".json" and Path(path.stem).suffix in RUNTIME_OF_SUFFIX):  # a card (`exported/x*`)
            found.append(path)
    if not found:
        raise EdgeEmnistError(f"no .tflite or .onnx artifacts in {', '.join(map(str, paths))}")
    return found


def cmd_robustness(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from edge_emnist.robustness.evaluate import evaluate

    records = evaluate(_artifact_files(args.artifacts), images=args.images, mnist_images=args.mnist_images,
                       seed=args.seed, threads=args.threads,
                       results=args.results, data_dir=args.data_dir, cache_dir=args.cache_dir, log=tqdm.write)
    print(f"appended {len(records)} records to {args.results}; `edge-emnist report --robustness {args.results}` "
          "draws the curves")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from edge_emnist.report.bench_report import write_report
    from edge_emnist.report.results import load_records

    records = load_records(args.results)
    command = "edge-emnist report " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else "edge-emnist report"
    output = write_report(records, args.out, command=command, card_dirs=args.exported,
                          robustness_records=_robustness_records(args.robustness),
                          profile_records=_records_or_committed(args.profiles, COMMITTED_PROFILES))
    print(f"wrote {output}")
    return 0


def _robustness_records(paths: list[Path] | None) -> list[dict]:
    return _records_or_committed(paths, COMMITTED_ROBUSTNESS)


def _records_or_committed(paths: list[Path] | None, committed: Path) -> list[dict]:
    """The named record files; by default the committed one where it exists (else none)."""
    from edge_emnist.report.results import load_records

    if paths is None:
        paths = [committed] if committed.exists() else []
    return load_records(paths) if paths else []


def cmd_pick(args: argparse.Namespace) -> int:
    from edge_emnist.report import robustness
    from edge_emnist.report.pick import Constraints, pick
    from edge_emnist.report.results import load_records

    constraints = Constraints(args.max_latency_ms, args.max_size_kb, args.min_accuracy, args.min_robust_accuracy)
    records = load_records(args.results)
    robust = robustness.current(_robustness_records(args.robustness), args.exported or ())
    if args.min_robust_accuracy is not None and not robust:
        raise EdgeEmnistError("--min-robust-accuracy needs robustness records: run `edge-emnist robustness "
                              "ARTIFACTS` (or pass --robustness FILE)")
    robustness.attach(records, robust)
    target = args.target
    if target is None:  # this machine's own measurements if there are any, else any one CPU's
        from edge_emnist.device.host import host_description
        from edge_emnist.targets.machines import LocalMachine

        here = LocalMachine.label(host_description())
        target = here if any(r.get("target") == here for r in records) else "cpu"
    _, why = pick(records, target, constraints, threads=args.threads, dataset=args.dataset,
                  artifact_dirs=args.exported, check_files=True, allow_uncarded=args.allow_uncarded)
    print(why)
    return 0


# --- pipeline -----------------------------------------------------------------------------------------

def _pick_constraints(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("pick constraints (none: the Pareto knee)")
    group.add_argument("--max-latency-ms", type=_positive_float, help="on p90 at batch 1")
    group.add_argument("--max-size-kb", type=_positive_float, help="raw artifact size in KiB")
    group.add_argument("--min-accuracy", type=_fraction, help="test accuracy as a fraction, e.g. 0.88")


STUDY_ARCHS = ("lenet5", "custom_resnet", "custom_vgg", "simple_cnn", "resnet50")


def _arch_list(text: str) -> tuple[str, ...]:
    from edge_emnist.models import list_models

    archs = STUDY_ARCHS if text == "all" else tuple(a for a in text.split(",") if a)
    unknown = [a for a in archs if a not in list_models()]
    if unknown or not archs:
        raise argparse.ArgumentTypeError(f"unknown architecture {unknown[0] if unknown else text!r}; "
                                         f"choose from {', '.join(list_models())}, or all")
    return archs


def cmd_pipeline(args: argparse.Namespace) -> int:
    from edge_emnist.pipeline import Pipeline

    config = PipelineConfig(archs=args.arch, dataset=args.dataset, epochs=args.epochs, batch_size=args.batch_size,
                            patience=args.patience, seed=args.seed, sparsity=args.sparsity,
                            prune_epochs=args.prune_epochs, qat_epochs=args.qat_epochs, augment=args.augment,
                            threads=args.threads,
                            runs=args.runs, max_latency_ms=args.max_latency_ms, max_size_kb=args.max_size_kb,
                            min_accuracy=args.min_accuracy)
    started = time.perf_counter()
    pipeline = Pipeline(config, args.out, data_dir=args.data_dir, cache_dir=args.cache_dir,
                        log=lambda line: print(line, flush=True))
    chosen = pipeline.execute()
    print(f"\n{chosen['why']}")
    print(f"\nshipping {chosen['artifact']} (+ its .json model card) on {chosen['runtime']}, "
          f"{chosen['threads']} thread(s)")
    print(f"report: {pipeline.out / 'report' / 'report.md'}   ({time.perf_counter() - started:.0f} s this time)")
    return 0


# --- demo ---------------------------------------------------------------------------------------------

def cmd_demo(args: argparse.Namespace) -> int:
    import subprocess

    from edge_emnist.demo.server import BUILD_COMMAND, WEB, make_server

    if args.build:
        print(f"installing onnxruntime-web: {BUILD_COMMAND}")
        try:
            done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(WEB)])
        except FileNotFoundError:
            raise EdgeEmnistError("npm not found: install Node.js (with npm) to build the demo") from None
        if done.returncode != 0:
            raise EdgeEmnistError(f"`{BUILD_COMMAND}` failed (exit {done.returncode})")
    server = make_server(args.exported, args.host, args.port)
    host, port = server.server_address[:2]
    url = f"http://{'localhost' if host in ('127.0.0.1', '::1') else host}:{port}/"
    print(f"edge-emnist demo: open {url}  (models from {args.exported}; Ctrl-C stops)", flush=True)
    if args.open:
        import webbrowser

        webbrowser.open(url)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


# --- parser -------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-emnist",
        description="Train, prune, quantize, export and benchmark handwritten-character CNNs for edge devices.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--verbose", action="store_true",
                        help="let TensorFlow, LiteRT and ONNX Runtime print their own start-up and info lines")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    data = commands.add_parser("data", help="list, verify, download and look at datasets",
                               description="Datasets: EMNIST (six splits), MNIST and KMNIST.")
    data_cmds = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    p = data_cmds.add_parser("list", help="datasets, classes, counts, and whether present locally and official")
    p.add_argument("--check", action="store_true",
                   help="also run `data check` on each present dataset: do its labels belong to its images?")
    _data_options(p)
    p.set_defaults(handler=cmd_data_list)

    p = data_cmds.add_parser("verify", help="check every file's sha256 against the official release "
                                            "(or the folder's SHA256SUMS for derived data)")
    p.add_argument("--dataset", default="all", choices=["all", *DATASETS], metavar="NAME",
                   help="a dataset name, or all (default)")
    _data_options(p)
    p.set_defaults(handler=cmd_data_verify)

    p = data_cmds.add_parser("show", help="PNG grid of upright samples titled with their characters")
    _dataset_option(p)
    p.add_argument("-n", type=_positive_int, default=64, help="number of images (default: 64)")
    p.add_argument("-o", "--output", type=Path, default=Path("grid.png"), help="PNG path (default: grid.png)")
    p.add_argument("--split", choices=["train", "test"], default="train")
    p.add_argument("--seed", type=int, default=0, help="which random sample to show")
    _data_options(p)
    p.set_defaults(handler=cmd_data_show)

    p = data_cmds.add_parser("stats", help="class histogram (PNG) and per-class table")
    _dataset_option(p)
    p.add_argument("-o", "--output", type=Path, default=Path("class-histogram.png"))
    p.add_argument("--csv", type=Path, help="also write the table as CSV")
    _data_options(p)
    p.set_defaults(handler=cmd_data_stats)

    p = data_cmds.add_parser("check", help="do the labels belong to the images? (1-NN on pixels, seconds)",
                             description="Checksums prove the files are the published ones, not that labels and "
                                         "images line up. This classifies test images by their nearest train "
                                         "image; shuffled labels fall to frequency guessing. Exit status 1 when "
                                         "the accuracy is under twice the guessing level.")
    _dataset_option(p)
    p.add_argument("--references", type=_positive_int, default=5000, help="train images used (default: 5000)")
    p.add_argument("--queries", type=_positive_int, default=1000, help="test images classified (default: 1000)")
    _data_options(p)
    p.set_defaults(handler=cmd_data_check)

    p = data_cmds.add_parser("derive-letters", help="write a letters view from bymerge's files (case merged)",
                             description="The letters task (26 classes, upper and lower case merged) re-derived "
                                         "from a 47-class view's images and labels: its digits dropped, a and A "
                                         "both become A. Balanced like the official letters split (the first n "
                                         "images of every letter in file order, n the rarest letter's count) "
                                         "unless --all-images. For local data without a usable letters view; the "
                                         "result is not the official letters split, and its provenance says so.")
    p.add_argument("--source", default="emnist-bymerge", choices=["emnist-bymerge", "emnist-balanced"],
                   help="the view to derive from (default: emnist-bymerge)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the four letters files")
    p.add_argument("--all-images", action="store_true",
                   help="keep every letter image instead of a balanced subset (more images, unequal classes)")
    _data_options(p)
    p.set_defaults(handler=cmd_data_derive_letters)

    p = data_cmds.add_parser("download", help="download the official release into the cache, sha256-verified")
    _dataset_option(p)
    p.add_argument("--cache-dir", metavar="DIR", help="download cache (default: ~/.cache/edge-emnist)")
    p.add_argument("--mirror", metavar="URL", help="base URL of a mirror laid out as <mirror>/<family>/<file> "
                                                   "(default: $EDGE_EMNIST_MIRROR, else the official hosts)")
    p.set_defaults(handler=cmd_data_download)

    p = commands.add_parser("doctor", help="what this machine can do: CPU and int8 ISA, runtimes, targets, "
                                           "training backends, data",
                            description="One screen of what this machine offers edge-emnist and, for what it does "
                                        "not, why: the ISA features that decide int8 behaviour, LiteRT/ONNX Runtime "
                                        "and their GPU paths, emulated CPUs, SSH, Keras backends, the data.")
    _data_options(p)
    p.set_defaults(handler=cmd_doctor)

    p = commands.add_parser("targets", help="emulated CPUs for cross-ISA answer checks, and their installation",
                            description="CPUs this machine can emulate with QEMU user mode to check that an "
                                        "artifact gives the same answers there (int8 kernels differ by ISA). "
                                        "Emulated runs measure correctness, never latency.")
    p.add_argument("--install", nargs="+", metavar="TARGET", help="fetch what these targets need (QEMU from Debian)")
    p.set_defaults(handler=cmd_targets)

    p = commands.add_parser("runner", help="write the device runner to a folder, for a device without SSH",
                            description="Copies the runner and the four modules it needs (edge_emnist/device: "
                                        "plain Python over numpy and the runtimes) to OUT, to carry to a device "
                                        "that `bench --ssh` cannot reach; its --json output comes back with "
                                        "`bench --import`.")
    p.add_argument("out", type=Path, metavar="OUT", help="folder to write to (made if missing)")
    p.add_argument("--force", action="store_true", help="replace runner files already there")
    p.add_argument("--dataset", choices=sorted(DATASETS), help="also write this dataset's test split as "
                                                              "<name>-test.npz, for accuracy on the device")
    _data_options(p)
    p.set_defaults(handler=cmd_runner)

    p = commands.add_parser("models", help="the architectures with their parameters and MACs")
    p.add_argument("--classes", type=_positive_int, default=47, help="output classes (default: 47)")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.set_defaults(handler=cmd_models)

    p = commands.add_parser("train", help="train one architecture; resumable run folder with curves and metrics",
                            description="Train one run. Ctrl-C or a kill loses at most the current epoch: "
                                        "run the same command with --resume to continue.")
    _training_options(p)
    p.add_argument("--run-dir", type=Path, help="run folder (default: runs/<arch>-<dataset>-<opt>-<init>-lr-seed)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
    p.set_defaults(handler=cmd_train)

    p = commands.add_parser("sweep", help="train a grid of settings; writes the study's table (Markdown + CSV)",
                            description="Train every cell of a grid. Re-running skips finished cells and "
                                        "resumes an interrupted one.")
    _training_options(p)
    p.add_argument("--grid", nargs="+", required=True, metavar="KEY=V1,V2",
                   help="e.g. init=random,he,lecun optimizer=adam,nadam,sgd lr=0.01")
    p.add_argument("--out", type=Path, help="sweep folder (default: runs/sweep-<arch>-<dataset>)")
    p.set_defaults(handler=cmd_sweep)

    p = commands.add_parser("prune", help="magnitude pruning with fine-tuning (optionally then QAT) into a new run",
                            description="Prune a trained run to a target sparsity while fine-tuning, strip the "
                                        "wrappers and report per-layer sparsity. Pruning shrinks the gzip'd "
                                        "artifact; it does not make these CNNs faster in LiteRT.")
    _finetune_options(p, "pruning fine-tuning epochs (default: 2)")
    p.add_argument("--sparsity", type=_sparsity_fraction, default=0.5, help="target zero fraction (default: 0.5)")
    p.add_argument("--schedule", choices=["polynomial", "constant"], default="polynomial",
                   help="polynomial ramps to the target over 3/4 of fine-tuning (default); constant prunes at once")
    p.add_argument("--m-by-n", metavar="M:N", help="structured sparsity, e.g. 2:4 (overrides --sparsity)")
    p.add_argument("--qat", action="store_true", help="then pruning-preserving quantization-aware training")
    p.add_argument("--qat-epochs", type=_positive_int, help="QAT epochs (default: --epochs)")
    p.set_defaults(handler=cmd_prune)

    p = commands.add_parser("qat", help="quantization-aware fine-tuning into a new run (export it as int8)")
    _finetune_options(p, "QAT epochs (default: 2)")
    p.set_defaults(handler=cmd_qat)

    p = commands.add_parser("export", help="TFLite/ONNX artifacts with model cards, parity-checked",
                            description="Convert runs to TFLite and/or ONNX. Every artifact is run on the whole "
                                        "test split through its own runtime and compared with the Keras model "
                                        "before it is written, with a model card (.json) beside it.")
    p.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="run folders (trained, pruned or QAT)")
    p.add_argument("--quantize", choices=list(QUANTIZATIONS), default="int8",
                   help="none = float32; fp16 weights; dynamic-range int8 weights; int8 = full integer (default)")
    p.add_argument("--format", choices=[*FORMATS, "all"], default="all", help="default: all")
    p.add_argument("--io", choices=["int8", "uint8", "float"], default="int8",
                   help="TFLite int8 only: input/output type; uint8 takes raw pixels as they are (default: int8)")
    p.add_argument("--calibration-size", type=_positive_int, default=500,
                   help="train images used to calibrate int8 ranges (default: 500)")
    p.add_argument("--out-dir", type=Path, default=USER_EXPORTS,
                   help=f"default: {USER_EXPORTS}/ (your workspace; the shipped models are in exported/)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing artifact that was made from other weights")
    p.add_argument("--check-on", nargs="+", metavar="TARGET",
                   help="also compare the answers under these emulated CPUs (edge-emnist targets), e.g. "
                        "qemu-x86_64:haswell; the card lists every CPU the parity was checked on")
    p.add_argument("--check-images", type=_positive_int, default=2000,
                   help="test images per emulated check (default: 2000)")
    _data_options(p)
    p.set_defaults(handler=cmd_export)

    p = commands.add_parser(
        "pipeline", help="data to a picked edge model in one resumable command",
        description="train -> prune -> QAT -> export (TFLite and ONNX, float32/float16/dynamic/int8) -> bench -> "
                    "report -> pick, for each architecture. Prints the plan first; re-running the same command "
                    "after an interruption skips finished stages. The defaults finish in about 10 minutes on a "
                    "2-core CPU; --arch all --epochs 70 is the full study.")
    p.add_argument("--arch", type=_arch_list, default=("lenet5", "simple_cnn"), metavar="A,B|all",
                   help=f"comma list, or all = the studies' {','.join(STUDY_ARCHS)} (lenet5_relu, a variant, only "
                        "when named) (default: lenet5,simple_cnn)")
    _dataset_option(p)
    p.add_argument("--epochs", type=_positive_int, default=PipelineConfig.epochs,
                   help=f"maximum training epochs (default: {PipelineConfig.epochs}: the 10-minute demo on a 2-core "
                        "CPU; the study trained up to 70)")
    p.add_argument("--batch-size", type=_positive_int, default=256, help="default: 256")
    p.add_argument("--patience", type=_positive_int, default=10, help="early stopping on validation (default: 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sparsity", type=float, default=0.5, help="pruning target (default: 0.5)")
    p.add_argument("--prune-epochs", type=_positive_int, default=1, help="default: 1")
    p.add_argument("--qat-epochs", type=_positive_int, default=1, help="default: 1")
    p.add_argument("--augment", type=_augment_spec, default="off", metavar="SPEC",
                   help="training augmentation, as for train (default: off, to finish in minutes on a CPU; `train` "
                        "has it on)")
    p.add_argument("--threads", type=_int_list, default=(1,), help="bench thread counts (default: 1)")
    p.add_argument("--runs", type=_positive_int, default=PipelineConfig.runs,
                   help=f"timed batch-1 runs per setting (default: {PipelineConfig.runs})")
    _pick_constraints(p)
    p.add_argument("--out", type=Path, default=Path("runs/pipeline"),
                   help="folder for runs, artifacts, results, report and the pick (default: runs/pipeline)")
    _data_options(p)
    p.set_defaults(handler=cmd_pipeline)

    p = commands.add_parser(
        "demo", help="draw a character in the browser; the exported ONNX model reads it on your device",
        description="Serve the handwriting demo: a drawing pad (mouse and touch), undo and clear, the top-5 "
                    "characters with probabilities, the inference time, and a picker among the .onnx models "
                    "in --exported. Inference runs in the browser with onnxruntime-web, served from the local "
                    "npm install (no CDN: works offline).")
    p.add_argument("--port", type=int, default=8000, help="default: 8000 (0: any free port)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default: 127.0.0.1, this machine only; 0.0.0.0 opens it to the network)")
    p.add_argument("--exported", type=Path, default=Path("exported"), help="models to offer (default: exported/)")
    p.add_argument("--build", action="store_true", help="install onnxruntime-web with npm first (needed once)")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.set_defaults(handler=cmd_demo)

    p = commands.add_parser("bench", help="accuracy, size and latency of artifacts through their runtimes",
                            description="Measure artifacts: accuracy on the full test split, size, init and first "
                                        "inference, batch-1 latency over --runs timed runs (mean, std, p50, p90, "
                                        "p99), throughput at larger batches, peak memory, host description. "
                                        "Appends one JSON record per setting to --results.")
    p.add_argument("artifacts", type=Path, nargs="*", metavar="ARTIFACT", help=".tflite / .onnx files")
    _runtime_options(p, runs=1000, runs_help="timed batch-1 runs")
    p.add_argument("--batch", type=_int_list, default=(1, 32), help="comma list; 1 gives latency (default: 1,32)")
    p.add_argument("--no-accuracy", action="store_true", help="skip the test-split accuracy pass")
    p.add_argument("--no-yardstick", action="store_true", help="skip the litert-benchmark comparison")
    p.add_argument("--test-images", type=_positive_int, metavar="N",
                   help="accuracy on the first N test images (default: all; emulated targets are slow)")
    p.add_argument("--results", type=Path, default=USER_RESULTS,
                   help=f"JSONL file to append to (default: {USER_RESULTS}; the committed measurements are "
                        f"{COMMITTED_RESULTS})")
    _where_options(p)
    p.add_argument("--import", dest="imports", type=Path, nargs="+", metavar="JSON",
                   help="merge results a device produced with runner.py --json instead of measuring here")
    _data_options(p)
    p.set_defaults(handler=cmd_bench)

    p = commands.add_parser(
        "profile", help="where one inference's time goes, operator by operator (batch 1)",
        description="Time every operator of each artifact at batch 1 on this machine, an emulated CPU or a device "
                    "over SSH: ONNX Runtime through its own profiler (with the execution provider of each node, so "
                    "a CUDA session shows what fell back to the CPU); LiteRT by timing each operator alone, saying "
                    "whether XNNPACK or a builtin kernel ran it. Prints the top operators and appends one `profile` "
                    "record per artifact, runtime and thread count; `report --profiles` shows them.")
    p.add_argument("artifacts", type=Path, nargs="+", metavar="ARTIFACT", help=".tflite / .onnx files or folders")
    _runtime_options(p, runs=500, runs_help="timed runs per operator and of the whole model")
    p.add_argument("--top", type=_positive_int, default=8, help="operators printed per artifact (default: 8)")
    p.add_argument("--results", type=Path, default=USER_PROFILES,
                   help=f"JSONL file to append to (default: {USER_PROFILES}; the committed profiles are "
                        f"{COMMITTED_PROFILES})")
    _where_options(p)
    p.set_defaults(handler=cmd_profile)

    p = commands.add_parser(
        "robustness", help="accuracy under rotation, stroke thickness, scale, shift, noise; on MNIST; on pen strokes",
        description="Every artifact through its own runtime on a seeded sample of its test split under each "
                    "transformation (rotation -20..20 deg, strokes -2..+2 px, zoom 0.7-1.2, 0-4 px off centre, "
                    "pixel noise), on MNIST test (a different collection of digits: full output and digits only) "
                    "and on characters drawn as pen strokes through the demo's preprocessing. One JSON record per "
                    "artifact; `report --robustness` draws the curves, `pick --min-robust-accuracy` uses them.")
    p.add_argument("artifacts", type=Path, nargs="+", metavar="ARTIFACT", help=".tflite / .onnx files or folders")
    p.add_argument("--images", type=_positive_int, default=2000,
                   help="test images per condition, a seeded random sample (default: 2000)")
    p.add_argument("--mnist-images", type=_positive_int, default=10_000,
                   help="MNIST test digits, a seeded sample (default: all 10,000; fewer for slow models)")
    p.add_argument("--seed", type=int, default=0, help="picks the sample, shift directions and noise (default: 0)")
    p.add_argument("--threads", type=_positive_int, default=2, help="runtime threads (default: 2)")
    p.add_argument("--results", type=Path, default=USER_ROBUSTNESS,
                   help=f"JSONL file to append to (default: {USER_ROBUSTNESS}; the committed measurements are "
                        f"{COMMITTED_ROBUSTNESS})")
    _data_options(p)
    p.set_defaults(handler=cmd_robustness)

    p = commands.add_parser("report", help="Markdown table, Pareto plot per target and size bars from results",
                            description="Write a Markdown report from benchmark records: per target the host, "
                                        "a Pareto plot of accuracy against p90 latency, a per-architecture "
                                        "summary, every measured setting, skipped targets and refused artifacts, "
                                        "and a size chart. Reads the committed measurements unless --results "
                                        "says otherwise; writes to your workspace unless --out says otherwise.")
    p.add_argument("--results", type=Path, nargs="+", default=[COMMITTED_RESULTS],
                   help=f"JSONL files (default: {COMMITTED_RESULTS}; yours: {USER_RESULTS})")
    p.add_argument("--out", type=Path, default=USER_REPORT,
                   help=f"default: {USER_REPORT}/ (the committed report is benchmarks/report/)")
    p.add_argument("--exported", type=Path, nargs="+", default=[Path("exported")], metavar="DIR",
                   help="folders holding the artifacts' model cards, searched in order, for the per-architecture "
                        "summary (default: exported/)")
    p.add_argument("--robustness", type=Path, nargs="+", metavar="JSONL",
                   help=f"records of `edge-emnist robustness` for the robustness curves, table and column (default: "
                        f"{COMMITTED_ROBUSTNESS} where it exists; yours: {USER_ROBUSTNESS})")
    p.add_argument("--profiles", type=Path, nargs="+", metavar="JSONL",
                   help=f"records of `edge-emnist profile` for the per-operator section (default: "
                        f"{COMMITTED_PROFILES} where it exists; yours: {USER_PROFILES})")
    p.set_defaults(handler=cmd_report)

    p = commands.add_parser("pick", help="choose the artifact to ship from measurements on a target, with reasons",
                            description="Without constraints, names the knee of the accuracy/latency Pareto front.")
    p.add_argument("--target", help="a target label such as cpu:vm-avx2, or its kind before ':' (default: this "
                                    "machine's label where it has measurements, else cpu)")
    _pick_constraints(p)
    p.add_argument("--min-robust-accuracy", type=_fraction, metavar="FRACTION",
                   help="mean accuracy under the everyday transformations (rotation +-15 deg, strokes +-1 px, zoom "
                        "0.8/1.2, 2 px off centre) from `edge-emnist robustness` records, e.g. 0.8")
    p.add_argument("--robustness", type=Path, nargs="+", metavar="JSONL",
                   help=f"robustness records (default: {COMMITTED_ROBUSTNESS} where it exists)")
    p.add_argument("--threads", type=_positive_int, help="only settings with this many threads")
    p.add_argument("--dataset", metavar="NAME",
                   help="only artifacts trained on this dataset (needed when the results hold several)")
    p.add_argument("--exported", type=Path, nargs="+", metavar="DIR",
                   help="only artifacts still present in these folders and unchanged since they were measured "
                        "(default: where bench measured each, then exported/ and benchmarks/results/not-shipped/; "
                        "a file found nowhere, changed, or contradicted by its card is never picked)")
    p.add_argument("--allow-uncarded", action="store_true",
                   help="also consider files that were measured without a current model card")
    p.add_argument("--results", type=Path, nargs="+", default=[COMMITTED_RESULTS],
                   help=f"JSONL files (default: {COMMITTED_RESULTS}; yours: {USER_RESULTS})")
    p.set_defaults(handler=cmd_pick)
    return parser


def _terminate_as_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # `kill` cleans up like Ctrl-C: temporaries removed, nothing half-published


def main(argv: Sequence[str] | None = None) -> int:
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    args = build_parser().parse_args(argv)
    if args.verbose:
        from edge_emnist.device.runtimes import VERBOSE_ENV

        os.environ[VERBOSE_ENV] = "1"  # before any stage imports TensorFlow or opens a runtime
    if getattr(args, "no_download", False):
        from edge_emnist.data.source import NO_DOWNLOAD_ENV

        os.environ[NO_DOWNLOAD_ENV] = "1"  # read by every load_dataset, however deep in a stage
    try:
        return args.handler(args)
    except EdgeEmnistError as e:
        print(f"edge-emnist: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edge-emnist: interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # a full disk, a vanished folder, a permission: the system's reason and the file, one line
        where = f": {e.filename}" if e.filename else ""
        print(f"edge-emnist: error: {e.strerror or e}{where}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
