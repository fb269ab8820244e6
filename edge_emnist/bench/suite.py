"""`edge-emnist bench`: every artifact x runtime x setting, one runner process each, results appended as JSONL.

Each setting runs in a fresh process (the same runner.py that goes to devices), so peak memory is its own
and one runtime's threads never warm another's caches. LiteRT figures are checked against Google's
`litert-benchmark`, run on the same file with the same threads.
"""

from __future__ import annotations

import json
import platform
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edge_emnist.device import records as records_of
from edge_emnist.device.cards import (
    ANSWERS_KEPT,
    CARD_MISSING,
    CARD_OF_ANOTHER_FILE,
    card_answers,
    card_input,
    checked_card,
)
from edge_emnist.device.files import sha256_file
from edge_emnist.device.formats import CPU_RUNTIMES, RUNTIME_OF_SUFFIX, RUNTIMES, on_gpu, runtimes_for
from edge_emnist.device.host import gpu_target
from edge_emnist.device.records import BUSY_SPREAD, DEFAULT_BATCHES, DEFAULT_RUNS, DEFAULT_WARMUP
from edge_emnist.errors import EdgeEmnistError
from edge_emnist.io import append_jsonl, check_results_file
from edge_emnist.options import name_list, option, positive_int
from edge_emnist.targets.machines import EmulatedMachine, LocalMachine, SshMachine
from edge_emnist.workspace import COMMITTED_RESULTS, USER_RESULTS

YARDSTICK_TOLERANCE = 0.10


@dataclass
class BenchOptions:
    runtimes: tuple[str, ...] | str = option(
        CPU_RUNTIMES, flag="--runtime", type=name_list, metavar="A,B",
        help=f"comma list of {', '.join(RUNTIMES)}; each artifact runs on the ones that take its format; GPU runtimes "
             "absent here are recorded as skipped with the reason")
    threads: tuple[int, ...] = option((1,), help="comma list of thread counts")
    batches: tuple[int, ...] = option(DEFAULT_BATCHES, flag="--batch",
                                      help="comma list of batch sizes; 1 gives latency")
    runs: int = option(DEFAULT_RUNS, help="timed batch-1 runs")
    warmup: int = option(DEFAULT_WARMUP, help="untimed runs first")
    xnnpack: bool = option(True, negate="--no-xnnpack", help="LiteRT without the XNNPACK delegate")
    accuracy: bool = option(True, negate="--no-accuracy", help="skip the test-split accuracy pass")
    yardstick: bool = option(True, negate="--no-yardstick", help="skip the litert-benchmark comparison")
    target: str | None = option(None, help="label for this machine in results (default: cpu:<hostname>-<ISA tier>); "
                                           "an emulated target (edge-emnist targets: qemu-aarch64:cortex-a76, ...) "
                                           "runs the artifacts there under QEMU: its answers are that CPU's, its "
                                           "times QEMU's")
    test_images: int | None = option(None, type=positive_int, metavar="N",
                                     help="accuracy on the first N test images (default: all; emulated targets are "
                                          "slow)")
    results: Path = option(USER_RESULTS, help=f"JSONL file to append to (the committed measurements are "
                                              f"{COMMITTED_RESULTS})")
    profile: bool = option(False, help="time every operator at batch 1 instead (device.profiles)", cli=False)
    progress: bool = option(True, help="a progress bar on the terminal", cli=False)

    def __post_init__(self) -> None:
        if isinstance(self.runtimes, str):
            self.runtimes = name_list(self.runtimes)
        self.runtimes, self.threads, self.batches = tuple(self.runtimes), tuple(self.threads), tuple(self.batches)
        self.results = Path(self.results)

    def validate(self) -> None:
        unknown = [r for r in self.runtimes if r not in RUNTIMES]
        if unknown:
            raise EdgeEmnistError(f"unknown runtime {unknown[0]!r}: choose from {', '.join(RUNTIMES)}")
        if self.test_images is not None and self.test_images < 1:
            raise EdgeEmnistError("--test-images must be at least 1")
        if self.runs < 1:
            raise EdgeEmnistError("--runs must be at least 1 (the headline figures want 1000 or more)")
        if min(self.threads) < 1 or min(self.batches) < 1:
            raise EdgeEmnistError("threads and batch sizes must be positive")
        if max(self.threads) > MAX_THREADS:
            raise EdgeEmnistError(f"--threads {max(self.threads)}: at most {MAX_THREADS} (more than any CPU here has)")
        check_results_file(self.results)


MAX_THREADS = 1024  # the runtimes abort far above a machine's cores (LiteRT on 99999 threads leaves no output)


def check_label(target: str | None) -> None:
    """A label for a native run may not claim another machine: an emulated target's name (mistyped or bare, it
    would measure here and file x86 numbers as ARM) or another processor architecture."""
    from edge_emnist.targets.qemu import EMULATED_CPUS

    if target is None:
        return
    kind = target.split(":", 1)[0].lower()
    if kind.startswith("qemu"):
        raise EdgeEmnistError(f"unknown emulated target {target!r}: choose from {', '.join(EMULATED_CPUS)}")
    here = {"x86_64": "x86", "amd64": "x86", "aarch64": "arm", "arm64": "arm"}.get(platform.machine().lower())
    claims = {"x86_64": "x86", "x86": "x86", "amd64": "x86", "arm": "arm", "aarch64": "arm", "arm64": "arm"}.get(kind)
    if claims and here and claims != here:
        raise EdgeEmnistError(f"--target {target!r} names a {claims} machine, but this one is {platform.machine()}: "
                              "measure there (--ssh, or runner.py and --import), or leave --target out")


def _test_data(cards: list[dict], data_dir, cache_dir, scratch: Path, limit: int | None = None) -> dict[str, Path]:
    """One .npz of the test split (or its first `limit` images) per dataset the artifacts were trained on."""
    from edge_emnist.data import load_dataset

    files = {}
    for name in sorted({c["dataset"] for c in cards if c.get("dataset")}):
        test = load_dataset(name, data_dir, cache_dir, splits=("test",)).test
        files[name] = scratch / f"{name}.npz"
        np.savez_compressed(files[name], images=test.images[:limit], labels=test.labels[:limit])
    return files


def runner_argv(model: str, threads: int, options: BenchOptions, data: str | None,
                runtimes: list[str] | None = None) -> list[str]:
    argv = [model, "--threads", str(threads), "--batch", ",".join(map(str, options.batches)),
            "--runs", str(options.runs), "--warmup", str(options.warmup)]
    if runtimes:
        argv += ["--runtime", ",".join(runtimes)]
    if not options.xnnpack:
        argv.append("--no-xnnpack")
    if options.profile:
        argv.append("--profile")
    return argv + (["--data", data, "--answers", str(ANSWERS_KEPT)] if data else [])


def hold_answers(record: dict, kept: np.ndarray | None) -> None:
    """The runner's top-1 answers (dropped from the record: 2,000 of them per line would swamp a results file)
    against those the card kept at export; the record keeps how many images were compared and how many differ."""
    mine = record.pop("answers_top1", None)
    if mine is None or kept is None:
        return
    mine = np.array(records_of.decode_top1(mine))
    count = min(len(mine), len(kept))
    if count:
        differ = int(np.sum(mine[:count] != kept[:count]))
        record["answers"] = {"images": count, "agreement": 1 - differ / count, "differ": differ}


def yardstick_check(ours_p50: float, theirs_median: float, resolution: float = 0.01) -> dict:
    """Agreement within 10%, allowing for litert-benchmark printing milliseconds with two decimals."""
    difference = abs(ours_p50 - theirs_median)
    relative = difference / theirs_median if theirs_median else float("inf")
    return {"relative_difference": relative,
            "agrees": relative <= YARDSTICK_TOLERANCE or difference <= resolution / 2 + 1e-9}


UNCARDED = {CARD_MISSING: "no model card beside it", CARD_OF_ANOTHER_FILE: "its model card describes another file "
             "(sha256 differs)"}


def new_session() -> str:
    """A bench call's id: its start to the second, plus random digits, so concurrent calls never share one."""
    return f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"


def _check_classes(artifact: Path, card: dict) -> None:
    """The card's dataset must have as many classes as its labels (so accuracy compares like with like)."""
    from edge_emnist.data.registry import DATASETS

    spec = DATASETS.get(card.get("dataset"))
    labels = len(card.get("labels") or {})
    if spec is not None and labels and spec.num_classes != labels:
        raise EdgeEmnistError(f"{artifact}: the card names {spec.name} ({spec.num_classes} classes) but lists "
                              f"{labels} labels; export the artifact again")


def label_records(records: list[dict], card: dict, target: str, session: str, card_status: str | None = None,
                  artifact: Path | None = None) -> None:
    """What a record says beyond the runner's own fields: where it ran, when, the card it was measured with and
    the path bench was given (where `pick` looks for the file again)."""
    for record in records:
        if card_status is not None:
            record["card"] = card_status
        if artifact is not None:
            record["artifact_path"] = str(artifact)
        record.update({
            "target": target, "session": session, "recorded": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "arch": card.get("arch"), "dataset": card.get("dataset"), "quantize": card.get("quantize"),
            "format": card.get("format"), "input": card_input(card),
            "optimization": (card.get("source") or {}).get("optimization"),
            "data_fingerprint": (card.get("source") or {}).get("data_fingerprint"),
            "card_sha256": card.get("sha256"),
            "reference_accuracy": (card.get("accuracy") or {}).get("artifact"),
        })


def bench(artifacts: list[Path], options: BenchOptions, *, data_dir=None, cache_dir=None, log=print,
          machine: LocalMachine | SshMachine | None = None) -> list[dict]:
    """Measure every applicable combination on `machine` (default: here); records are also appended to
    options.results, labelled with the description the runner took on the machine that ran it."""
    options.validate()
    for artifact in artifacts:
        if not artifact.exists():
            raise EdgeEmnistError(f"no artifact at {artifact}")
        if artifact.suffix not in RUNTIME_OF_SUFFIX:
            raise EdgeEmnistError(f"{artifact}: not a {' or '.join(RUNTIME_OF_SUFFIX)} artifact")
    machine = machine or LocalMachine()
    if isinstance(machine, EmulatedMachine):
        options.target = None  # its records carry the emulated CPU's name, never a label given for this machine
    elif not isinstance(machine, SshMachine):
        check_label(options.target)
    cards, card_status, kept = {}, {}, {}
    for artifact in artifacts:  # a card that contradicts its model stops the run here, before any measurement
        card, card_status[artifact] = checked_card(artifact, sha256_file(artifact))
        cards[artifact] = card or {}
        kept[artifact] = card_answers(card) if card else None
        if card:
            _check_classes(artifact, card)
        else:
            log(f"warning: {artifact}: {UNCARDED[card_status[artifact]]}; measured without accuracy, and `pick` "
                "leaves it out unless --allow-uncarded")
    session = new_session()
    jobs = [(a, t) for a in artifacts for t in options.threads if runtimes_for(a.suffix, options.runtimes)]
    said_skipped: set[str] = set()
    records: list[dict] = []
    known_host: dict | None = None
    with tempfile.TemporaryDirectory() as scratch, machine:
        data = (_test_data(list(cards.values()), data_dir, cache_dir, Path(scratch), options.test_images)
                if options.accuracy and not options.profile else {})
        placed = machine.place(sorted({a for a, _ in jobs}) + list(data.values()))
        for artifact, threads in tqdm(jobs, desc="profile" if options.profile else "bench", unit="setting",
                                      disable=not jobs or not options.progress):
            card = cards[artifact]
            dataset = data.get(card.get("dataset"))
            try:
                result = machine.run_runner(runner_argv(placed[artifact], threads, options,
                                                        placed[dataset] if dataset else None,
                                                        runtimes_for(artifact.suffix, options.runtimes)))
            except EdgeEmnistError as error:  # one broken artifact costs only its own records
                failed = records_of.failed(artifact.name, RUNTIME_OF_SUFFIX[artifact.suffix], threads, str(error))
                where = known_host or machine.describe()  # the runner died: the host as last seen, or asked here
                label_records([failed], card, options.target or machine.label(where), session,
                              card_status[artifact], artifact)
                append_jsonl(options.results, records_of.checked([failed]))
                records.append(failed)
                log(f"failed {artifact.name} ({threads} threads): {error}")
                continue
            host = known_host = result["host"]
            target = options.target or machine.label(host)
            for skipped in (r for r in result["records"] if r.get("skipped")):
                if skipped["runtime"] not in said_skipped:  # the machine says why, once per runtime
                    said_skipped.add(skipped["runtime"])
                    skipped["host"] = host
                    label_records([skipped], {}, target, session)
                    append_jsonl(options.results, records_of.checked([skipped]))
                    records.append(skipped)
                    log(f"skipped {skipped['runtime']} on {target}: {skipped['skipped']}")
            found = [r for r in result["records"] if not r.get("failed") and not r.get("skipped")]
            for failed in (r for r in result["records"] if r.get("failed")):
                log(f"failed {artifact.name} ({threads} threads): {failed['failed']}")
                failed["host"] = host
                found.append(failed)
            timed = options.yardstick and not options.profile and options.xnnpack
            for runtime in runtimes_for(artifact.suffix, options.runtimes) if timed else ():
                tool = RUNTIMES[runtime].yardstick  # an independent timer of the same file (litert-benchmark)
                if not tool:
                    continue
                key = tool.replace("-", "_")
                theirs = getattr(machine, key)(placed[artifact], threads, options.runs, options.warmup)
                for record in found:
                    if theirs and record["batch"] == 1 and record["runtime"] == runtime:
                        ours = record["latency"]["p50_ms"]
                        check = yardstick_check(ours, theirs["median_ms"], theirs["resolution_ms"])
                        record["yardstick"] = {key: theirs, **check}
            for record in found:  # GPU figures go under the GPU's name, CPU figures under the CPU's
                label_records([record], card, options.target or (gpu_target(host) if on_gpu(record["runtime"])
                                                                 else target), session, card_status[artifact], artifact)
                hold_answers(record, kept[artifact])
            for record in {r["runtime"]: r for r in found if (r.get("answers") or {}).get("differ")}.values():
                answers = record["answers"]
                log(f"warning: {artifact.name} on {record['target']} ({record['runtime']}): {answers['differ']} of "
                    f"{answers['images']:,} top-1 answers differ from those its card kept at export: this machine "
                    "computes something else than the one that exported it")
            if isinstance(machine, SshMachine):
                for record in found:
                    record["via"] = f"ssh {machine.destination}"
            for record in found:
                if record.get("busy"):
                    log(f"warning: {artifact.name} ({threads} threads, batch {record['batch']}): p99 is "
                        f"{record['latency']['spread_p99_p50']:.0f}x p50 (over {BUSY_SPREAD:.0f}x), load average "
                        f"{record['load']['before']} -> {record['load']['after']}: the machine was busy; the record "
                        "is flagged, measure again on a quiet machine")
            append_jsonl(options.results, records_of.checked(found))  # as each setting finishes: a crash loses nothing
            records += found
    return records


def import_results(paths: list[Path], target: str | None = None) -> list[dict]:
    """Records a device wrote with `runner.py --json`, labelled with that device's own description."""
    session = new_session()
    records = []
    for path in paths:
        try:
            payload = json.loads(Path(path).read_text())
            host, found = payload["host"], payload["records"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError):
            raise EdgeEmnistError(f"{path} is not a runner result (python runner.py ... --json FILE)") from None
        for record in found:  # GPU figures under the GPU's name, as when measured here or over SSH
            where = gpu_target(host) if on_gpu(record.get("runtime")) else SshMachine.label(host)
            label_records([record], {}, target or where, session)
            hold_answers(record, None)  # no card here to hold them against
            record["imported_from"] = str(path)
        records += found
    return records


def artifact_files(paths: list[Path]) -> list[Path]:
    """Files as given; a folder stands for every artifact in it (its cards are not artifacts)."""
    found = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix in RUNTIME_OF_SUFFIX)
        elif not (path.suffix == ".json" and Path(path.stem).suffix in RUNTIME_OF_SUFFIX):  # a card (`exported/x*`)
            found.append(path)
    if not found:
        raise EdgeEmnistError(f"no .tflite or .onnx artifacts in {', '.join(map(str, paths))}")
    return found


def summary_lines(records: list[dict]) -> list[str]:
    """`bench`'s table: one line per measured setting, with litert-benchmark's verdict where it ran."""
    lines = [f"{'artifact':<44} {'runtime':<7} {'thr':>3} {'batch':>5} {'accuracy':>8} {'p50 ms':>9} "
             f"{'p90 ms':>9} {'img/s':>9}  litert-benchmark"]
    for r in (r for r in records if not r.get("skipped") and not r.get("failed")):
        yard = r.get("yardstick")
        note = (f"{yard['litert_benchmark']['median_ms']:.2f} ms, {'agrees' if yard['agrees'] else 'DIFFERS'}"
                if yard else "QEMU's time, not the CPU's" if r.get("emulated") else "")
        accuracy = f"{r['accuracy']:.4f}" if r["accuracy"] is not None else "-"
        lines.append(f"{r['artifact']:<44} {r['runtime']:<7} {r['settings']['threads']:>3} {r['batch']:>5} "
                     f"{accuracy:>8} {r['latency']['p50_ms']:>9.4f} {r['latency']['p90_ms']:>9.4f} "
                     f"{r['throughput_ips']:>9,.0f}  {note}")
    return lines
