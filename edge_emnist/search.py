"""`edge-emnist search`: walk the edgenet family with Optuna for the accuracy-latency front of one target.

Each trial draws a shape (width, depth per stage, kernel sizes, separable blocks, head), trains it briefly on
Keras 3 (with `--teacher`, distilled from those runs at a temperature and soft weight the trial also draws),
converts it to a float32 .tflite and times it with the device runner at batch 1 on the target (this machine or a
device over SSH; an emulated CPU's time is QEMU's, so it is refused). Selection uses the validation split; no
trial touches the test split. Two objectives, validation accuracy up and p90 latency down, give a front (NSGA-II),
with the limits as constraints; with `--max-latency-ms`, a shape is timed before it is trained (a float32 graph's
cost does not depend on its weights) and one well over the limit is recorded untrained, so no training is spent on
it. The study lives in a database: an SQLite file in the output folder by default, so a killed search resumes and
two workers on one machine share it; a database URL (PostgreSQL, MySQL) lets workers on many machines share one
study. `optuna-dashboard <storage>` shows it.

With `--finalists N`, up to N trials spread along the front are then trained to convergence (half-strength
augmentation and a cosine schedule by default, `--final-*` to change them; with `--teacher`, distilled at their
trial's temperature and soft weight), exported in every variant (.tflite and .onnx, float32/float16/dynamic/int8;
a variant below its parity bar is recorded as refused), benched on the target and written to a report in
OUT/report: only these winners are ever scored on the test split.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

from edge_emnist.bench.suite import BenchOptions, bench
from edge_emnist.data.registry import DATASETS, DEFAULT_DATASET
from edge_emnist.errors import EdgeEmnistError
from edge_emnist.keras3 import LR_SCHEDULES
from edge_emnist.options import fraction, option, positive_float
from edge_emnist.runs import augment_spec, check_run_folder, resolve_augment, teacher_list
from edge_emnist.workspace import SHIPPED_EXPORTS

# The family's search space: what a trial may draw for each option of models/edgenet.py.
SPACE = {
    "width": (0.25, 0.5, 0.75, 1.0, 1.5, 2.0),
    "depth": (1, 2, 3),  # each stage's own: the shipped winners deepen late (1,1,2 and 1,2,2)
    "kernel1": (3, 5),  # the first stage's kernel (later stages: 3)
    "separable": (False, True),
    "head": (0, 32, 64),
    "pool": ("gap", "flatten"),
    "stem_stride": (1, 2),  # 2: the first convolution at 14x14 (a quarter of the positions: the cheap lever)
}
# Distillation's settings, drawn by each trial when the search has teachers (DistillConfig's fields). T = 4 with
# weight 0.5 made every shipped student (benchmarks/distillation.md); T = 2 was measured no better on a plain run.
DISTILL_SPACE = {
    "temperature": (1.0, 2.0, 4.0, 8.0),
    "soft_weight": (0.0, 0.25, 0.5, 0.75),  # 0: labels only, so the search also weighs not distilling
}

# A shape timed this far over --max-latency-ms before training is not trained: a float32 graph's cost does not depend
# on its weights, but two timings of one small graph on a busy 2-core VM differed by up to 1.66x (300 runs of
# 0.02-0.07 ms, one runner process each; benchmarks/search_gate.md), so only a shape well over the limit is spared its
# training.
UNTRAINED_MARGIN = 2.0


@dataclass
class SearchOptions:
    trials: int = option(10, help="trials to run in this call (a resumed study adds them to those it has)")
    timeout: float | None = option(None, type=positive_float, metavar="SECONDS",
                                   help="no new trial starts after this many seconds of this call (the running one "
                                        "finishes; --trials stays the most)")
    max_latency_ms: float | None = option(None, type=positive_float,
                                          help="constraint: p90 at batch 1 on the target (a shape timed at "
                                               f"over {UNTRAINED_MARGIN:g}x it before training is not trained)")
    min_accuracy: float | None = option(None, type=fraction, help="constraint: validation accuracy, e.g. 0.88")
    dataset: str = option(DEFAULT_DATASET, choices=lambda: DATASETS, metavar="NAME", help="dataset")
    epochs: int = option(3, help="training epochs per trial (brief: a trial ranks a shape, it does not finish it)")
    train_limit: int = option(20_000, metavar="N", help="train images per trial (validation: N/5)")
    batch_size: int = option(128, help="images per training step")
    runs: int = option(300, help="timed batch-1 runs per timing")
    timings: int = option(5, help="runner processes per latency (each `--runs` runs); the trial's p90 is their "
                                  "lowest: one process's p90 differs from the next by up to 2x (benchmarks/"
                                  "search_gate.md)")
    threads: int = option(1, help="runtime threads on the target")
    out: Path = option(Path("runs/search"), help="folder for the study database, the trials' runs and models")
    storage: str | None = option(None, metavar="URL", help="Optuna storage (default: sqlite:///OUT/study.db); a "
                                                           "database URL shares one study between machines")
    study: str = option("edgenet", help="study name in the storage")
    seed: int = option(0, type=int, help="seeds the sampler and every trial's training")
    finalists: int = option(0, help="then train this many front trials to convergence, export every variant, bench "
                                    "them on the target and write OUT/report (0: the front only)")
    # The finalists' recipe: what trained the shipped edgenets best on emnist-dev bymerge (benchmarks/edgenet_front.md:
    # half-strength augmentation +0.8 to +1.0 points over none, full strength -0.8; cosine = plateau within 0.05, and
    # a cosine run needs no early stop: the validation split picks its best epoch).
    final_epochs: int = option(40, help="finalists: epochs (the cosine schedule decays the LR to 0 over them)")
    final_augment: str = option("0.5", type=augment_spec, metavar="SPEC",
                                help="finalists: augmentation (train's --augment)")
    final_lr_schedule: str = option("cosine", choices=lambda: LR_SCHEDULES,
                                    help="finalists: LR schedule (train's --lr-schedule)")
    final_patience: int | None = option(None, metavar="N", help="finalists: early stopping after N epochs without "
                                                                "a better validation accuracy (default: none)")
    mlflow: str | None = option(None, metavar="URI", help="also track every trial and finalist in MLflow (a folder "
                                                          "such as mlruns, or a tracking server URL)")
    teachers: tuple[str, ...] = option((), flag="--teacher", type=teacher_list, metavar="RUN[,RUN...]",
                                       help="distil every trial and finalist from these trained runs (an ensemble "
                                            "when several); each trial draws its temperature and soft weight, a "
                                            "finalist keeps its trial's")

    def validate(self) -> None:
        if self.trials < 1:
            raise EdgeEmnistError("--trials must be at least 1")
        if self.runs < 1 or self.timings < 1:
            raise EdgeEmnistError("--runs and --timings must be at least 1")
        if self.min_accuracy is not None and not 0 <= self.min_accuracy <= 1:
            raise EdgeEmnistError("--min-accuracy must be a fraction between 0 and 1")
        if self.finalists < 0 or self.final_epochs < 1:
            raise EdgeEmnistError("--finalists must be 0 or more and --final-epochs at least 1")
        if self.final_patience is not None and self.final_patience < 1:
            raise EdgeEmnistError("--final-patience must be at least 1")
        if self.final_lr_schedule not in LR_SCHEDULES:
            raise EdgeEmnistError(f"--final-lr-schedule must be one of {', '.join(LR_SCHEDULES)}")
        resolve_augment(self.final_augment)  # a bad spec fails here, not after the trials
        for teacher in self.teachers:  # before any trial: a typo must not cost a search
            check_run_folder(teacher)

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{(self.out / 'study.db').resolve()}"


def shape_of(trial) -> dict:
    """The edgenet options a trial draws (the names Optuna records are these option names; `depthN` is stage N's)."""
    return {"width": trial.suggest_categorical("width", SPACE["width"]),
            "depths": tuple(trial.suggest_categorical(f"depth{stage}", SPACE["depth"]) for stage in (1, 2, 3)),
            "kernels": (trial.suggest_categorical("kernel1", SPACE["kernel1"]), 3, 3),
            "separable": trial.suggest_categorical("separable", SPACE["separable"]),
            "head": trial.suggest_categorical("head", SPACE["head"]),
            "pool": trial.suggest_categorical("pool", SPACE["pool"]),
            "stem_stride": trial.suggest_categorical("stem_stride", SPACE["stem_stride"])}


def distillation_of(trial) -> dict:
    """The distillation settings a trial draws (DistillConfig's field names; only a search with teachers draws them)."""
    return {name: trial.suggest_categorical(name, values) for name, values in DISTILL_SPACE.items()}


def distill_config(config, options: SearchOptions, drawn: dict) -> dict | None:
    """config.json's `distill` for a trial's or finalist's run: the search's teachers at the drawn settings; None
    without teachers or at soft weight 0 (a plain run: the teachers' answers would cost time and teach nothing)."""
    from edge_emnist.distill import check_teachers, resolved
    from edge_emnist.runs import DistillConfig

    if not options.teachers or drawn.get("soft_weight") == 0:
        return None
    settings = DistillConfig(teachers=options.teachers, **drawn)
    return resolved(settings, check_teachers(config, settings))


def open_study(options: SearchOptions):
    """The study in its storage, created or resumed; an unreachable or locked database is a one-line error."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    options.out.mkdir(parents=True, exist_ok=True)
    sampler = optuna.samplers.NSGAIISampler(seed=options.seed)  # it reads the constraints each trial sets
    try:
        storage = optuna.storages.RDBStorage(options.storage_url, engine_kwargs=_engine_kwargs(options.storage_url))
        return optuna.create_study(study_name=options.study, storage=storage, sampler=sampler, load_if_exists=True,
                                   directions=["maximize", "minimize"])
    except (SQLAlchemyError, ImportError, ValueError) as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise EdgeEmnistError(f"cannot open the study at {options.storage_url}: {reason}") from None


LOCK_WAIT_S = 30  # a second worker waits this long for SQLite's lock before it gives up ("database is locked")


def _engine_kwargs(url: str) -> dict:
    return {"connect_args": {"timeout": LOCK_WAIT_S}} if url.startswith("sqlite") else {}


def _violations(trial) -> list[float]:
    """Above 0 where a trial breaks a limit (the constraints it set)."""
    return list((trial.constraints or {}).values()) or [0.0]


def run_search(options: SearchOptions, *, data_dir=None, cache_dir=None, machine=None, log=print) -> list[dict]:
    """Run `options.trials` more trials; returns the front (non-dominated trials that meet the limits)."""
    options.validate()
    if getattr(machine, "target", "").startswith("qemu"):
        raise EdgeEmnistError("an emulated CPU times QEMU, not the CPU: search on this machine or a device (--ssh)")
    _claim_folder(options)
    study = open_study(options)
    done_before, started = len(study.trials), time.monotonic()
    for _ in range(options.trials):
        if options.timeout and time.monotonic() - started > options.timeout:
            log(f"--timeout {options.timeout:g} s reached: no more trials in this call")
            break
        trial = study.ask()
        try:
            accuracy, p90 = _evaluate(trial, options, data_dir, cache_dir, machine)
        except BaseException:  # an error or Ctrl-C: the trial is recorded as failed, never left running
            study.tell(trial, state=_failed())
            raise
        study.tell(trial, [accuracy, p90])
        log(_trial_line(study, trial.number, accuracy, p90, options))
    front = front_of(study, options)
    table, plot = write_trials(study, options, front)
    log(f"{len(study.trials) - done_before} trials run, {len(study.trials)} in the study; front: {len(front)} trials "
        f"(every trial: {table}{f', {plot}' if plot else ''}; the study: optuna-dashboard {options.storage_url})")
    return front


def trial_rows(study, options: SearchOptions, front: list[dict]) -> list[dict]:
    """One plain row per trial of the study (what report/search_trials.py writes), in trial order."""
    on_front = {row["trial"] for row in front}
    rows = []
    for trial in study.trials:
        attrs, values = trial.user_attrs, trial.values or [None, None]
        accuracy = None if attrs.get("untrained") else values[0]  # never trained: no accuracy to show
        rows.append({"trial": trial.number, "state": trial.state.name, "val_accuracy": accuracy, "p90_ms": values[1],
                     "p90_untrained_ms": attrs.get("p90_untrained_ms"), "p90_each_ms": attrs.get("p90_each_ms"),
                     "p90_untrained_each_ms": attrs.get("p90_untrained_each_ms"), "params": attrs.get("params"),
                     "trained": not attrs.get("untrained"), "within_limits": max(_violations(trial)) <= 0,
                     "on_front": trial.number in on_front, "shape": attrs.get("shape"),
                     "distill": attrs.get("distill"), "target": attrs.get("target"), "run": attrs.get("run")})
    return rows


def write_trials(study, options: SearchOptions, front: list[dict]) -> tuple[Path, Path | None]:
    """OUT/trials.csv and OUT/trials.png (none before a trial finished), rewritten after every call."""
    from edge_emnist.report.search_trials import plot_trials, write_trials_csv

    rows = trial_rows(study, options, front)
    targets = sorted({row["target"] for row in rows if row["target"]})
    title = (f"search '{options.study}' on {', '.join(targets) or 'the target'}: {len(rows)} trials, "
             f"{options.epochs} epoch{'s' if options.epochs != 1 else ''} on {options.train_limit:,} images each")
    return (write_trials_csv(rows, options.out / "trials.csv"),
            plot_trials(rows, options.out / "trials.png", title=title, max_latency_ms=options.max_latency_ms,
                        min_accuracy=options.min_accuracy))


FOLDER_STUDY = "study-name.txt"  # in OUT: the one study whose trials and finalists the folder holds


def _claim_folder(options: SearchOptions) -> None:
    """One output folder, one study: trial N of two studies would share OUT/trials/trial-N (and a trial resumes a
    run it finds there), so a second study needs its own --out. A folder from before the marker is claimed."""
    marker = options.out / FOLDER_STUDY
    holder = marker.read_text().strip() if marker.is_file() else None
    if holder not in (None, options.study):
        raise EdgeEmnistError(f"{options.out} holds study {holder!r}: give study {options.study!r} its own --out")
    options.out.mkdir(parents=True, exist_ok=True)
    marker.write_text(options.study + "\n")


def _failed():
    import optuna

    return optuna.trial.TrialState.FAIL


def _evaluate(trial, options: SearchOptions, data_dir, cache_dir, machine) -> tuple[float, float]:
    from edge_emnist.runs import TrainConfig
    from edge_emnist.train import train

    shape = shape_of(trial)
    drawn = distillation_of(trial) if options.teachers else {}
    run = options.out / "trials" / f"trial-{trial.number:04d}"
    trial.set_user_attr("shape", {k: list(v) if isinstance(v, tuple) else v for k, v in shape.items()})
    trial.set_user_attr("distill", drawn)
    if options.max_latency_ms:
        gate_started = time.monotonic()
        untrained = _time_untrained(shape, run, options, machine, trial.number)
        trial.set_user_attr("p90_untrained_ms", untrained["p90"])
        trial.set_user_attr("p90_untrained_each_ms", untrained["p90_each"])
        trial.set_user_attr("gate_seconds", round(time.monotonic() - gate_started, 2))  # what the check cost
        if untrained["p90"] > options.max_latency_ms * UNTRAINED_MARGIN:
            return _not_trained(trial, untrained, options)
    config = TrainConfig(arch="edgenet", dataset=options.dataset, epochs=options.epochs, batch_size=options.batch_size,
                         patience=options.epochs, seed=options.seed + trial.number, augment="off",
                         train_limit=options.train_limit, model_options=shape)
    config.distill = distill_config(config, options, drawn)
    metrics = train(config, run, resume=(run / "config.json").exists(), data_dir=data_dir, cache_dir=cache_dir,
                    verbose=0, evaluate_test=False, tracking=options.mlflow)
    model_file = _float32_tflite(run, metrics)
    measured = _time(model_file, options, machine, trial.number)
    accuracy, p90 = float(metrics["val_accuracy"]), measured["p90"]
    if options.mlflow:  # the trial's latency beside its training, in the same MLflow run
        from edge_emnist.tracking import Tracker

        tracker = Tracker(options.mlflow, run)
        tracker.params({"study": options.study, "trial": trial.number, "target": measured["target"]})
        tracker.metrics({"p90_ms": p90, "val_accuracy": accuracy})
        tracker.close()
    _set_limits(trial, accuracy, p90, options)
    for key, value in {"params": metrics["trainable_params"], "run": str(run), "target": measured["target"],
                       "model": str(model_file), "p90_each_ms": measured["p90_each"]}.items():
        trial.set_user_attr(key, value)
    return accuracy, p90


def _time_untrained(shape: dict, run: Path, options: SearchOptions, machine, number: int) -> dict:
    """The shape's float32 .tflite with its initial weights, timed as a trained one is: what the limit is checked on
    before a training is spent on a shape that cannot meet it."""
    from edge_emnist.data.registry import get_dataset
    from edge_emnist.export.tflite import convert
    from edge_emnist.models import create_model
    from edge_emnist.models.cost import trainable_params

    model = create_model("edgenet", get_dataset(options.dataset).num_classes, **shape)
    run.mkdir(parents=True, exist_ok=True)
    path = run / "untrained.tflite"
    convert(model, path, quantize="none", representative=None)
    return {**_time(path, options, machine, number), "params": trainable_params(model)}


def _time(model_file: Path, options: SearchOptions, machine, number: int) -> dict:
    """p90 (ms) at batch 1 on the target, the lowest of `options.timings` runner processes (and each one's), and the
    target's label. The lowest, not the median: one graph's p90 is bimodal across processes on a VM (0.043 or 0.06 ms,
    whatever the runs per process), and the lowest of 5 varied 1.01-1.33x (p90/p10) where one timing varied 1.26-2.02x
    (benchmarks/search_gate.md)."""
    records = bench([model_file] * options.timings,
                    BenchOptions(runtimes=("litert",), threads=(options.threads,), batches=(1,), runs=options.runs,
                                 warmup=min(50, options.runs), accuracy=False, yardstick=False,
                                 results=options.out / "latency.jsonl", progress=False),
                    machine=machine, log=lambda _: None)
    measured = [r for r in records if r.get("latency")]
    if len(measured) < options.timings:
        failed = next((r.get("failed") for r in records if r.get("failed")), "no record")
        raise EdgeEmnistError(f"trial {number}: the runner measured {len(measured)} of {options.timings} timings "
                              f"({failed})")
    each = [float(r["latency"]["p90_ms"]) for r in measured]
    return {"p90": min(each), "p90_each": each, "target": measured[0]["target"]}


def _not_trained(trial, untrained: dict, options: SearchOptions) -> tuple[float, float]:
    """A shape over the latency limit before training: recorded with accuracy 0 (it was never trained: `untrained`
    says so) and its untrained p90, so NSGA-II learns the region breaks the limit without a training spent on it."""
    _set_limits(trial, 0.0, untrained["p90"], options)
    for key, value in {"untrained": True, "params": untrained["params"], "target": untrained["target"]}.items():
        trial.set_user_attr(key, value)
    return 0.0, untrained["p90"]


def _set_limits(trial, accuracy: float, p90: float, options: SearchOptions) -> None:
    """The constraints NSGA-II reads: above 0 where the trial breaks a limit."""
    trial.set_constraint("latency", p90 - options.max_latency_ms if options.max_latency_ms else 0.0)
    trial.set_constraint("accuracy", options.min_accuracy - accuracy if options.min_accuracy is not None else 0.0)


def _float32_tflite(run: Path, metrics: dict) -> Path:
    """The trial's best weights as a float32 .tflite (what its latency is measured on)."""
    from edge_emnist.data.registry import get_dataset
    from edge_emnist.export.tflite import convert
    from edge_emnist.optimize.rebuild import build_model
    from edge_emnist.runs import open_run

    opened = open_run(run)
    path = run / "model.tflite"
    convert(build_model(opened, get_dataset(opened.config.dataset).num_classes), path, quantize="none",
            representative=None)
    return path


def front_of(study, options: SearchOptions) -> list[dict]:
    """The non-dominated finished trials that meet the limits, fastest first."""
    import optuna

    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    feasible = [t for t in finished if max(_violations(t)) <= 0]
    front = [t for t in feasible if not any(_dominates(o, t) for o in feasible)]
    return sorted(({"trial": t.number, "accuracy": t.values[0], "p90_ms": t.values[1], **t.user_attrs}
                   for t in front), key=lambda row: row["p90_ms"])


def _dominates(a, b) -> bool:
    return (a.values[0] >= b.values[0] and a.values[1] <= b.values[1]) and a.values != b.values


def _trial_line(study, number: int, accuracy: float, p90: float, options: SearchOptions) -> str:
    trial = study.trials[number]
    shape = trial.user_attrs["shape"]
    best = front_of(study, options)
    top = max(best, key=lambda row: row["accuracy"]) if best else None
    limits = "" if max(_violations(trial)) <= 0 else " (breaks a limit)"
    taught = _taught(trial.user_attrs.get("distill"))  # absent in a study from before distillation was drawn
    return (f"trial {number}: width {shape['width']:g} depths {','.join(map(str, shape['depths']))} "
            f"k{shape['kernels'][0]} "
            f"{'separable' if shape['separable'] else 'conv'} {shape.get('pool', 'gap')} head {shape['head']}{taught} "
            f"({trial.user_attrs['params']:,} "
            + (f"params): p90 {p90:.4f} ms untrained, over the limit: not trained; best so far "
               if trial.user_attrs.get("untrained") else
               f"params): val {accuracy:.4f}, p90 {p90:.4f} ms{limits}; best so far ")
            + (f"{top['accuracy']:.4f} at {top['p90_ms']:.4f} ms (trial {top['trial']})" if top and
               not math.isnan(top["accuracy"]) else "none within the limits"))


def front_lines(front: list[dict]) -> list[str]:
    """What `search` prints at the end: the front, fastest first, with where each trial's run is."""
    return [f"front: trial {r['trial']} {r['shape']}{_taught(r.get('distill'))} val {r['accuracy']:.4f} "
            f"p90 {r['p90_ms']:.4f} ms -> {r['run']}" for r in front]


def _taught(drawn: dict | None) -> str:
    if not drawn:
        return ""
    if drawn["soft_weight"] == 0:
        return " not distilled (weight 0)"
    return f" distilled T {drawn['temperature']:g} weight {drawn['soft_weight']:g}"


def spread(front: list[dict], count: int) -> list[dict]:
    """`count` trials along the front (it is sorted fastest first): both ends and evenly between them."""
    if count >= len(front):
        return list(front)
    if count == 1:
        return [max(front, key=lambda row: row["accuracy"])]
    step = (len(front) - 1) / (count - 1)
    return [front[round(i * step)] for i in range(count)]


def shipped_reference(dataset: str) -> Path | None:
    """The report's latency reference (ReportOptions.reference) where this checkout ships it for `dataset`."""
    from edge_emnist.device.cards import read_card
    from edge_emnist.report.bench_report import ReportOptions

    path = SHIPPED_EXPORTS / ReportOptions.reference
    card = read_card(path) if path.is_file() else None
    return path if card and card.get("dataset") == dataset else None


def train_finalists(front: list[dict], options: SearchOptions, *, data_dir=None, cache_dir=None, machine=None,
                    log=print) -> dict:
    """The finalists stage: train, export every variant, bench on the target, report. Resumable: a finished
    finalist is skipped, an interrupted one resumes; a re-run replaces the stage's artifacts and records."""
    from edge_emnist.export.artifacts import ExportOptions, export_run
    from edge_emnist.report.bench_report import ReportOptions, write_report
    from edge_emnist.report.relative import Beside
    from edge_emnist.report.results import iter_records, load_records
    from edge_emnist.runs import TrainConfig
    from edge_emnist.train import train

    chosen = spread(front, options.finalists)
    exported, results = options.out / "exported", options.out / "bench.jsonl"
    artifacts, refused, trained = [], [], []
    for number, row in enumerate(chosen, 1):
        run = options.out / "finalists" / f"trial-{row['trial']:04d}"
        config = TrainConfig(arch="edgenet", dataset=options.dataset, epochs=options.final_epochs,
                             patience=options.final_patience or options.final_epochs,
                             lr_schedule=options.final_lr_schedule, augment=options.final_augment, seed=options.seed,
                             model_options={k: tuple(v) if isinstance(v, list) else v for k, v in row["shape"].items()})
        # a trial drawn without teachers (an older study, or one searched without them) distils at distill's defaults
        config.distill = distill_config(config, options, row.get("distill") or {})
        log(f"finalist {number}/{len(chosen)}: trial {row['trial']} {row['shape']}{_taught(row.get('distill'))} "
            f"(val {row['accuracy']:.4f} "
            f"after {options.epochs} epoch{'s' if options.epochs != 1 else ''}) -> {run}")
        metrics = train(config, run, resume=(run / "config.json").exists(), data_dir=data_dir, cache_dir=cache_dir,
                        verbose=1, tracking=options.mlflow)
        trained.append({"trial": row["trial"], "run": str(run), "val_accuracy": metrics["val_accuracy"],
                        "test_accuracy": metrics["test_accuracy"]})
        for quantize in ("none", "fp16", "dynamic", "int8"):
            # force: this stage's own folder, where a re-trained finalist replaces its earlier artifacts
            artifacts += export_run(run, ExportOptions(quantize=quantize, out_dir=exported, force=True),
                                    data_dir=data_dir, cache_dir=cache_dir, log=log, refused=refused)
    if not artifacts:
        raise EdgeEmnistError(f"every finalist's export was refused at its parity bar (see "
                              f"{exported / 'refused.jsonl'})")
    results.unlink(missing_ok=True)
    reference = shipped_reference(options.dataset)  # timed in the same call: the report reads budgets as ratios
    bench([*artifacts, *([reference] if reference else [])],
          BenchOptions(runtimes=("litert", "ort"), threads=(options.threads,), batches=(1,), results=results,
                       yardstick=False), data_dir=data_dir, cache_dir=cache_dir, machine=machine, log=log)
    cards = [exported, *([reference.parent] if reference else [])]
    report = write_report(load_records([results]), options.out / "report", card_dirs=cards,
                          command=f"edge-emnist report --results {results} --exported {' '.join(map(str, cards))} "
                                  f"--out {options.out / 'report'}",
                          beside=Beside.of(iter_records([results]), ReportOptions.reference))
    return {"finalists": trained, "artifacts": [str(p) for p in artifacts], "refused": len(refused),
            "results": str(results), "report": str(report)}
