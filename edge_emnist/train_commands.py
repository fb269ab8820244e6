"""The commands that make runs: train, sweep, distill, prune, qat. Each builds its stage's config from the options
its dataclass declares (options.py) and calls the stage; the CLI (cli.py) registers them with its own helper."""

from __future__ import annotations

import argparse
from pathlib import Path

from edge_emnist.data.source import DataLocation
from edge_emnist.keras3 import BACKENDS
from edge_emnist.optimize.config import FinetuneConfig, PruneConfig
from edge_emnist.options import add_options, from_args, positive_int
from edge_emnist.runs import DistillConfig, TrainConfig
from edge_emnist.tracking import DEFAULT as MLFLOW_DEFAULT


def _train_config(args: argparse.Namespace) -> TrainConfig:
    from edge_emnist.models import parse_model_options

    options = {"channels": args.channels, "input_size": args.input_size} if args.arch == "resnet50" else {}
    options = {**{k: v for k, v in options.items() if v is not None}, **parse_model_options(args.arch, args.option)}
    return from_args(TrainConfig, args, model_options=options)


def cmd_train(args: argparse.Namespace) -> int:
    from edge_emnist.runs import default_run_dir, summary_line
    from edge_emnist.train import train

    config = _train_config(args)
    run_dir = args.run_dir or default_run_dir(config)
    print(summary_line(train(config, run_dir, resume=args.resume, data_dir=args.data_dir, cache_dir=args.cache_dir,
                             backend=args.backend, workers=args.workers, tracking=args.mlflow), run_dir))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from edge_emnist.sweep import parse_grid, run_sweep

    out_dir = args.out or Path("runs") / f"sweep-{args.arch}-{args.dataset}"
    run_sweep(_train_config(args), parse_grid(args.grid), out_dir, data_dir=args.data_dir, cache_dir=args.cache_dir,
              tracking=args.mlflow,
              backend=args.backend, workers=args.workers)
    print((out_dir / "sweep.md").read_text())
    print(f"wrote {out_dir / 'sweep.md'} and {out_dir / 'sweep.csv'}")
    return 0


def _finetune(args: argparse.Namespace, prune: PruneConfig | None, qat: bool) -> int:
    from edge_emnist.runs import check_run_folder

    check_run_folder(args.run)  # before TensorFlow loads: a wrong path is reported in a fraction of a second
    if prune:
        prune.validate()
    from edge_emnist.optimize.finetune import default_output, optimize_run
    from edge_emnist.optimize.prune import report_lines

    output = args.output or default_output(args.run, prune, qat)
    tune = from_args(FinetuneConfig, args)
    settings = from_args(DistillConfig, args)
    metrics = optimize_run(args.run, prune=prune, qat=qat, epochs=tune.epochs, qat_epochs=tune.qat_epochs,
                           lr=tune.lr, lr_schedule=tune.lr_schedule, output=output,
                           distill=settings if settings.teachers else None, ranges_only=tune.ranges_only,
                           data_dir=args.data_dir, cache_dir=args.cache_dir)
    print("\n".join(report_lines(metrics, output)))
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    from edge_emnist.distill import check_teachers, resolved
    from edge_emnist.runs import default_run_dir, summary_line
    from edge_emnist.train import train

    config = _train_config(args)
    settings = from_args(DistillConfig, args)
    resuming = args.resume and args.run_dir and (args.run_dir / "config.json").exists()
    if settings.teachers or not resuming:  # a resumed run's config.json names its teachers (and their sha256)
        config.distill = resolved(settings, check_teachers(config, settings))
    run_dir = args.run_dir or default_run_dir(config)
    print(summary_line(train(config, run_dir, resume=args.resume, data_dir=args.data_dir, cache_dir=args.cache_dir,
                             backend=args.backend, workers=args.workers, tracking=args.mlflow), run_dir))
    return 0


def _training(p: argparse.ArgumentParser) -> None:
    add_options(p, TrainConfig)
    p.add_argument("--channels", type=int, choices=[1, 3], help="resnet50 only: 3 repeats the grey channel")
    p.add_argument("--input-size", type=int, help="resnet50 only: resize to this size (default: pad to 32)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="an architecture's own option, repeatable, e.g. --arch edgenet --option width=0.5 --option "
                        "depths=1,2,2 --option separable=true (the builder's keyword arguments)")
    p.add_argument("--backend", choices=list(BACKENDS),
                   help="Keras 3 backend that trains (default: KERAS_BACKEND, else on an NVIDIA GPU the first "
                        "installed of jax, torch, tensorflow, on a CPU tensorflow, the fastest there); a run can be "
                        "resumed on another")
    p.add_argument("--workers", type=positive_int, metavar="N",
                   help="threads making augmented batches ahead of the training step (default: half the cores)")
    p.add_argument("--mlflow", nargs="?", const=MLFLOW_DEFAULT, metavar="URI",
                   help=f"also track the run in MLflow: parameters, metrics per epoch, curves (URI: a folder, default "
                        f"{MLFLOW_DEFAULT}/ with a local SQLite store, or a tracking server such as http://host:5000)")
    add_options(p.add_argument_group("data location"), DataLocation)


def _finetuning(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=Path, metavar="RUN", help="a finished training run folder")
    add_options(p, FinetuneConfig, ["epochs", "lr", "lr_schedule"])
    p.add_argument("--output", type=Path, metavar="DIR",
                   help="new run folder (default: RUN-p50, RUN-qat, RUN-p50-qat beside RUN)")
    add_options(p.add_argument_group("distillation while fine-tuning (optional: with --teacher)"), DistillConfig)
    add_options(p.add_argument_group("data location"), DataLocation)


def training_commands(commands, command) -> None:
    """train, sweep, distill, prune and qat; `command` is the CLI's helper (one look for every command)."""
    p = command(commands, "train", cmd_train, "train one architecture; resumable run folder with curves and metrics",
                 "Train one run. Ctrl-C or a kill loses at most the current epoch: run the same command with --resume "
                 "to continue.")
    _training(p)
    p.add_argument("--run-dir", type=Path, help="run folder (default: runs/<arch>-<dataset>-<opt>-<init>-lr-seed)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
    p = command(commands, "sweep", cmd_sweep, "train a grid of settings; writes the study's table (Markdown + CSV)",
                 "Train every cell of a grid. Re-running skips finished cells and resumes an interrupted one; it says "
                 "which fixed settings differ from the study's grid.")
    _training(p)
    p.add_argument("--grid", nargs="+", required=True, metavar="KEY=V1,V2",
                   help="e.g. init=random,he,lecun optimizer=adam,nadam,sgd lr=0.01")
    p.add_argument("--out", type=Path, help="sweep folder (default: runs/sweep-<arch>-<dataset>)")
    p = command(commands, "distill", cmd_distill, "train a student on teacher runs' softened answers and the labels",
                "Knowledge distillation: the teachers (one run, or several for an ensemble) run on every augmented "
                "batch the student sees; loss = (1 - w) x cross-entropy + w x T^2 x KL(teachers_T || student_T). The "
                "result is an ordinary run (resumable, exported like any other).")
    _training(p)
    add_options(p.add_argument_group("distillation"), DistillConfig)
    p.add_argument("--run-dir", type=Path, help="run folder (default: runs/<arch>-<dataset>-kd<N>-t<T>-...)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
    p = command(commands, "prune", lambda args: _finetune(args, from_args(PruneConfig, args), args.qat),
                 "magnitude or structured (filter) pruning with fine-tuning, optionally then QAT", "Magnitude pruning "
                 "zeroes weights (smaller gzip'd files, no faster: dense kernels skip no zeros); --structured SHARE "
                 "removes whole filters and rebuilds a smaller model, which is faster where it runs. Into a new run.")
    _finetuning(p)
    add_options(p, PruneConfig)
    p.add_argument("--qat", action="store_true", help="then (pruning-preserving) quantization-aware training")
    add_options(p, FinetuneConfig, ["qat_epochs", "ranges_only"])
    p = command(commands, "qat", lambda args: _finetune(args, None, True), "quantization-aware fine-tuning into a "
                 "new run (export it as int8)")
    _finetuning(p)
    add_options(p, FinetuneConfig, ["ranges_only"])
