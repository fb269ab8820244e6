"""`edge-emnist pipeline`: data -> train -> prune -> QAT -> export -> bench -> report -> pick, resumably.

The plan is a list of stages, each with a key and a function. A stage that finished is written to
pipeline.json in the output folder at once, so re-running the same command after an interruption skips
it; a stage that was cut off starts again (training continues from its own checkpoint, and every stage
writes its outputs under temporary names, so nothing half-made is ever taken for done).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edge_emnist.data.registry import DATASETS
from edge_emnist.device.formats import FORMATS
from edge_emnist.errors import EdgeEmnistError
from edge_emnist.io import atomic_path, folder_lock
from edge_emnist.optimize.config import PruneConfig
from edge_emnist.options import default_of, fraction, option, positive_float
from edge_emnist.progress import clock
from edge_emnist.runs import TrainConfig, augment_spec

STATE_FILE = "pipeline.json"

# What each run of an architecture is exported as: (run, quantization, formats). Post-training int8 of
# the trained model is tried too; when it fails its parity bar the QAT run's int8 stands in for it.
EXPORT_TABLE: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("trained", "none", tuple(FORMATS)),
    ("trained", "fp16", tuple(FORMATS)),
    ("trained", "dynamic", tuple(FORMATS)),
    ("trained", "int8", tuple(FORMATS)),
    ("pruned", "none", tuple(FORMATS)),
    ("qat", "int8", tuple(FORMATS)),
)


def epochs(n: int) -> str:
    return f"{n} epoch{'' if n == 1 else 's'}"


STUDY_ARCHS = ("lenet5", "custom_resnet", "custom_vgg", "simple_cnn", "resnet50")


def arch_list(text: str) -> tuple[str, ...]:
    """--arch: a comma list of registered architectures, or all (the studies' five)."""
    import argparse

    from edge_emnist.models import list_models

    archs = STUDY_ARCHS if text == "all" else tuple(a for a in text.split(",") if a)
    unknown = [a for a in archs if a not in list_models()]
    if unknown or not archs:
        raise argparse.ArgumentTypeError(f"unknown architecture {unknown[0] if unknown else text!r}; "
                                         f"choose from {', '.join(list_models())}, or all")
    return archs


@dataclass
class PipelineConfig:
    archs: tuple[str, ...] = option(("lenet5", "simple_cnn"), flag="--arch", type=arch_list, metavar="A,B|all",
                                    help=f"comma list, or all = the studies' {','.join(STUDY_ARCHS)} (lenet5_relu, a "
                                         "variant, only when named)")
    dataset: str = option(default_of(TrainConfig, "dataset"), help="dataset", choices=lambda: DATASETS,
                          metavar="NAME")
    # the default main command finishes in 10 minutes on a 2-core CPU of either x86 kind
    epochs: int = option(3, help="maximum training epochs (3: the 10-minute demo on a 2-core CPU; the study trained "
                                 "up to 70)")
    batch_size: int = option(default_of(TrainConfig, "batch_size"), help="images per training step")
    lr: float = option(default_of(TrainConfig, "lr"), help="learning rate", cli=False)
    patience: int = option(default_of(TrainConfig, "patience"), help="early stopping on validation")
    seed: int = option(default_of(TrainConfig, "seed"), type=int, help="seeds every stage")
    sparsity: float = option(default_of(PruneConfig, "sparsity"), type=float, help="pruning target")
    prune_epochs: int = option(1, help="pruning fine-tuning epochs")
    qat_epochs: int = option(1, help="quantization-aware fine-tuning epochs")
    # train's --augment. Off here: the 10-minute main command trains 3 epochs, and on a 2-core CPU augmentation
    # doubles an epoch (LeNet-5 11 -> 21.5 s) while paying off only over longer training (docs/robustness.md).
    augment: str = option("off", type=augment_spec, metavar="SPEC",
                          help="training augmentation, as for train (off here, to finish in minutes on a CPU; `train` "
                               "has it on)")
    threads: tuple[int, ...] = option((1,), help="bench thread counts")
    # p90 needs a few hundred; `bench` defaults to 1000
    runs: int = option(500, help="timed batch-1 runs per setting")
    max_latency_ms: float | None = option(None, type=positive_float, help="pick: on p90 at batch 1")
    max_size_kb: float | None = option(None, type=positive_float, help="pick: raw artifact size in KiB")
    min_accuracy: float | None = option(None, type=fraction, help="pick: test accuracy as a fraction, e.g. 0.88")

    def validate(self) -> None:
        from edge_emnist.data.registry import get_dataset
        from edge_emnist.models import model_entry

        if not self.archs:
            raise EdgeEmnistError("give at least one architecture")
        for arch in self.archs:
            model_entry(arch)
        get_dataset(self.dataset)
        if min(self.epochs, self.prune_epochs, self.qat_epochs, self.runs, self.batch_size) < 1:
            raise EdgeEmnistError("epochs, batch size and runs must be at least 1")
        if not 0 < self.sparsity < 1:
            raise EdgeEmnistError("sparsity must be between 0 and 1")

    def settings(self) -> dict:
        """What makes two pipelines the same one: all of it except the pick's constraints."""
        chosen = asdict(self)
        for key in ("max_latency_ms", "max_size_kb", "min_accuracy"):
            chosen.pop(key)
        return json.loads(json.dumps(chosen))  # tuples as lists, as they come back from the state file


@dataclass
class Stage:
    key: str
    describe: str
    run: Callable[[], dict]


@dataclass
class Pipeline:
    config: PipelineConfig
    out: Path
    data_dir: str | Path | None = None
    cache_dir: str | Path | None = None
    log: Callable[[str], None] = print
    state: dict = field(default_factory=dict)

    # --- where things go -------------------------------------------------------------------------------
    def run_dir(self, arch: str, kind: str) -> Path:
        """The run folders' names follow the same optimization tag as `edge-emnist prune`/`qat` (RUN-p50-qat)."""
        from edge_emnist.runs import optimization_tag

        tag = {"trained": "", "pruned": optimization_tag(self.config.sparsity, None, False),
               "qat": optimization_tag(self.config.sparsity, None, True)}[kind]
        return self.out / "runs" / f"{arch}-{self.config.dataset}{'-' + tag if tag else ''}"

    @property
    def exported(self) -> Path:
        return self.out / "exported"

    @property
    def results(self) -> Path:
        return self.out / "bench.jsonl"

    @property
    def profiles(self) -> Path:
        return self.out / "profiles.jsonl"

    # --- the stages ------------------------------------------------------------------------------------
    def shipping(self, chosen: dict, seconds: float) -> str:
        """What the command prints at the end: why the pick, what ships, where the report is."""
        return (f"\n{chosen['why']}\n\nshipping {chosen['artifact']} (+ its .json model card) on {chosen['runtime']}, "
                f"{chosen['threads']} thread(s)\nreport: {self.out / 'report' / 'report.md'}   ({seconds:.0f} s this "
                "time)")

    def stages(self) -> list[Stage]:
        stages = []
        c = self.config
        for arch in c.archs:
            stages += [
                Stage(f"train:{arch}", f"train {arch} on {c.dataset} ({epochs(c.epochs)} at most)",
                      lambda arch=arch: self._train(arch)),
                Stage(f"prune:{arch}", f"prune {arch} to {c.sparsity:.0%} ({epochs(c.prune_epochs)})",
                      lambda arch=arch: self._prune(arch)),
                Stage(f"qat:{arch}", f"quantization-aware fine-tuning of pruned {arch} ({epochs(c.qat_epochs)})",
                      lambda arch=arch: self._qat(arch)),
                Stage(f"export:{arch}", f"export {arch}: TFLite and ONNX, float32/float16/dynamic/int8",
                      lambda arch=arch: self._export(arch)),
            ]
        threads = ",".join(map(str, self.config.threads))
        stages += [
            Stage("bench", f"benchmark every artifact here ({threads} threads, {self.config.runs} runs)", self._bench),
            Stage("profile", "time every operator of every artifact at batch 1 (where the time goes)", self._profile),
            Stage("report", "report: Markdown table, Pareto plot, size bars", self._report),
            Stage("pick", "pick the artifact to ship", self._pick),
        ]
        return stages

    def _train(self, arch: str) -> dict:
        from edge_emnist.train import train

        c = self.config
        config = TrainConfig(arch=arch, dataset=c.dataset, epochs=c.epochs, batch_size=c.batch_size, lr=c.lr,
                             patience=c.patience, seed=c.seed, augment=c.augment)
        run_dir = self.run_dir(arch, "trained")
        metrics = train(config, run_dir, resume=(run_dir / "config.json").exists(), data_dir=self.data_dir,
                        cache_dir=self.cache_dir)
        return {"run": str(run_dir), "test_accuracy": metrics["test_accuracy"], "epochs": metrics["epochs_run"],
                "seconds_per_epoch": metrics["seconds_per_epoch"]}

    def _optimize(self, source: Path, output: Path, **options) -> dict:
        from edge_emnist.optimize.finetune import optimize_run

        if not (output / "metrics.json").exists():  # finetune writes its run atomically: present = complete
            optimize_run(source, output=output, data_dir=self.data_dir, cache_dir=self.cache_dir, **options)
        metrics = json.loads((output / "metrics.json").read_text())
        return {"run": str(output), "test_accuracy": metrics["test_accuracy"]}

    def _prune(self, arch: str) -> dict:

        return self._optimize(self.run_dir(arch, "trained"), self.run_dir(arch, "pruned"),
                              prune=PruneConfig(self.config.sparsity), epochs=self.config.prune_epochs)

    def _qat(self, arch: str) -> dict:
        return self._optimize(self.run_dir(arch, "pruned"), self.run_dir(arch, "qat"), qat=True,
                              epochs=self.config.qat_epochs)

    def _export(self, arch: str) -> dict:
        from edge_emnist.export.artifacts import ExportOptions, export_run

        written, refused = [], []
        for kind, quantize, formats in EXPORT_TABLE:
            # force: this pipeline's own folder; an artifact of a re-trained stage replaces the stale one
            options = ExportOptions(quantize=quantize, formats=formats, out_dir=self.exported, force=True)
            # an artifact below its parity bar is recorded (refused.jsonl, the report) and the others go on
            written += export_run(self.run_dir(arch, kind), options, data_dir=self.data_dir,
                                  cache_dir=self.cache_dir, log=self.log, refused=refused)
        return {"artifacts": [str(p) for p in written],
                "refused": [{"artifact": r["artifact"], "top1_agreement": r["parity"]["top1_agreement"],
                             "required": r["parity"]["required_top1_agreement"]} for r in refused]}

    def artifacts(self) -> list[Path]:
        found = []
        for arch in self.config.archs:
            found += [Path(p) for p in self.state["done"][f"export:{arch}"]["artifacts"]]
        return found

    def _bench_into(self, results: Path, **options) -> int:
        """Every artifact through `bench` into a staged file that takes `results`' name only when complete (a
        re-run of the stage starts clean); the number of records."""
        from edge_emnist.bench.suite import BenchOptions, bench

        staged = results.with_name(f".tmp-{results.name}")
        staged.unlink(missing_ok=True)
        staged.touch()  # records are appended as they come; with every artifact refused there are none
        records = bench(self.artifacts(), BenchOptions(runs=self.config.runs, results=staged, **options),
                        data_dir=self.data_dir, cache_dir=self.cache_dir, log=self.log)
        staged.replace(results)
        return len(records)

    def _bench(self) -> dict:
        # no litert-benchmark yardstick here: it repeats every .tflite timing (a fifth of this stage) and the pick
        # does not read it; `edge-emnist bench` runs it on the committed measurements
        count = self._bench_into(self.results, threads=self.config.threads, yardstick=False)
        return {"results": str(self.results), "records": count}

    def _profile(self) -> dict:
        count = self._bench_into(self.profiles, threads=self.config.threads[:1], batches=(1,), accuracy=False,
                                 yardstick=False, profile=True)
        return {"profiles": str(self.profiles), "records": count}

    def _report(self) -> dict:
        from edge_emnist.report.bench_report import write_report
        from edge_emnist.report.results import load_records

        command = (f"edge-emnist report --results {self.results} --profiles {self.profiles} "
                   f"--out {self.out / 'report'} --exported {self.exported}")
        profiles = load_records([self.profiles]) if self.profiles.exists() else []
        return {"report": str(write_report(load_records([self.results]), self.out / "report", command=command,
                                           card_dirs=[self.exported], profile_records=profiles))}

    def _pick(self) -> dict:
        from edge_emnist.device.cards import card_path
        from edge_emnist.report.pick import Constraints, pick
        from edge_emnist.report.results import load_records

        c = self.config
        constraints = Constraints(c.max_latency_ms, c.max_size_kb, c.min_accuracy)
        records = load_records([self.results])
        if not any(r.get("accuracy") is not None for r in records):
            refused = sum(len(self.state["done"][f"export:{a}"]["refused"]) for a in c.archs)
            raise EdgeEmnistError(f"nothing to pick from: no artifact was measured ({refused} refused at export; "
                                  f"see {self.exported / 'refused.jsonl'})")
        chosen, why = pick(records, "cpu", constraints, dataset=c.dataset, artifact_dirs=[self.exported])
        picked = self.out / "picked"
        shutil.rmtree(picked, ignore_errors=True)
        picked.mkdir()
        source = self.exported / chosen["artifact"]
        for path in (source, card_path(source)):
            shutil.copy(path, picked / path.name)
        (picked / "why.txt").write_text(why + "\n")
        return {"artifact": str(picked / source.name), "runtime": chosen["runtime"],
                "threads": chosen["settings"]["threads"], "accuracy": chosen["accuracy"],
                "p90_ms": chosen["latency"]["p90_ms"], "size_bytes": chosen["size_bytes"], "why": why}

    def weight(self, key: str) -> float:
        """A stage's rough share of the run, for the ETA: training epochs dominate (from the stage times of
        the README's main command, where one epoch of simple_cnn is about a third of an export)."""
        c = self.config
        kind, _, arch = key.partition(":")
        per_epoch = {"simple_cnn": 2.0, "lenet5": 1.0, "lenet5_relu": 1.0}.get(arch, 8.0)
        return {"train": c.epochs * per_epoch, "prune": c.prune_epochs * per_epoch * 2,
                "qat": c.qat_epochs * per_epoch * 2, "export": 5.0, "bench": 6.0 * len(c.threads) * c.runs / 1000,
                "profile": 1.5 * c.runs / 1000, "report": 0.3, "pick": 0.1}[kind]

    # --- running ----------------------------------------------------------------------------------------
    def load_state(self) -> None:
        path = self.out / STATE_FILE
        settings = self.config.settings()
        if path.exists():
            try:
                saved = json.loads(path.read_text())
            except json.JSONDecodeError:
                raise EdgeEmnistError(f"{path} is not a pipeline state file; remove it or use another --out") from None
            if saved.get("settings") != settings:
                changed = sorted(k for k in settings if saved.get("settings", {}).get(k) != settings[k])
                raise EdgeEmnistError(f"{self.out} holds a pipeline with other settings ({', '.join(changed)}); "
                                      "use another --out, or the same options to resume it")
            self.state = saved
        else:
            self.state = {"settings": settings, "done": {}}

    def save_state(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.out / STATE_FILE) as tmp:
            tmp.write_text(json.dumps(self.state, indent=2) + "\n")

    def plan(self) -> list[tuple[Stage, bool]]:
        return [(stage, stage.key in self.state["done"]) for stage in self.stages()]

    def execute(self) -> dict:
        self.config.validate()
        with folder_lock(self.out):  # two pipelines on one --out would race on every stage
            return self._execute()

    def _execute(self) -> dict:
        self.load_state()
        if "pick" in self.state["done"]:  # the constraints may have changed: the pick is cheap, redo it
            self.state["done"].pop("pick")
        plan = self.plan()
        self.log(f"plan for {self.out} ({sum(done for _, done in plan)} of {len(plan)} stages done):")
        for number, (stage, done) in enumerate(plan, 1):
            self.log(f"  {number:>2}. {stage.describe}{'  [done]' if done else ''}")
        todo = [stage for stage, done in plan if not done]
        weights = {stage.key: self.weight(stage.key) for stage in todo}
        began, finished = time.perf_counter(), 0.0
        for number, (stage, done) in enumerate(plan, 1):
            if done:
                continue
            elapsed = time.perf_counter() - began
            left = sum(weights.values()) - finished
            eta = f", about {clock(elapsed * left / finished)} to go" if finished else ""
            self.log(f"[{number}/{len(plan)}] {stage.describe} (elapsed {clock(elapsed)}{eta})")
            started = time.perf_counter()
            result = stage.run()
            result["seconds"] = round(time.perf_counter() - started, 1)
            self.state["done"][stage.key] = result
            self.save_state()
            finished += weights[stage.key]
        return self.state["done"]["pick"]
