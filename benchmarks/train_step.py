"""Training step time per architecture at batch 256, per Keras 3 backend, on this machine (CPU or GPU).

    python benchmarks/train_step.py --backend jax --arch lenet5,simple_cnn [--steps 30] [--precision float32]
    python benchmarks/train_step.py --table          # benchmarks/train_step.md from the committed records

One process per backend (Keras fixes its backend at import): builds the project's model file under Keras 3,
compiles it with Adam and XLA on or off like `edge-emnist train`, runs warm-up steps (compilation), then times
`train_on_batch` on random in-memory batches, so the input pipeline is not in the figure
(benchmarks/input_pipeline.md measures that). Appends one JSON record per architecture, with the machine (CPU
model and ISA, GPUs), to benchmarks/results/train_step.jsonl (or --results). The study's Table 10 (GPU, its
own batch) is printed beside.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
RESULTS = HERE / "results" / "train_step.jsonl"
TABLE = HERE / "train_step.md"
ORDER = ["lenet5", "lenet5_relu", "simple_cnn", "custom_vgg", "custom_resnet", "resnet50"]
# ../shared/study/README.md, Table 10: ms per step of the final candidates (a GPU; the study's batch).
STUDY_MS_PER_STEP = {"lenet5": 3, "resnet50": 31, "custom_resnet": 8, "custom_vgg": 10}


def measure(arch: str, keras, *, batch: int, steps: int, warmup: int, seed: int = 0) -> dict:
    from edge_emnist.keras3 import jit_compile
    from edge_emnist.models import create_model

    options = {"channels": 3} if arch == "resnet50" else {}  # the study's ResNet-50 (23,630,895 parameters)
    model = create_model(arch, 47, keras=keras, **options)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  jit_compile=jit_compile(keras.backend.backend()))  # what `edge-emnist train` uses
    rng = np.random.default_rng(seed)
    x = rng.random((batch, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 47, batch)
    for _ in range(warmup):
        model.train_on_batch(x, y)
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        loss = model.train_on_batch(x, y)
        float(np.asarray(loss))  # wait for the device
        times.append(time.perf_counter() - started)
    return {"arch": arch, "ms_per_step_p50": 1000 * statistics.median(times),
            "ms_per_step_mean": 1000 * statistics.fmean(times), "steps": steps, "warmup": warmup, "batch": batch}


def run(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(HERE.parent))
    from edge_emnist import keras3
    from edge_emnist.device.host import host_description
    from edge_emnist.io import append_jsonl

    keras = keras3.load_keras(args.backend)
    backend = keras.backend.backend()
    keras.mixed_precision.set_global_policy(keras3.precision_policy(args.precision, backend))
    host = host_description()
    machine = {"cpu": host["cpu"], "isa": host["isa"], "cores": host["cores"],
               "gpus": keras3.accelerators(backend), "keras": keras.__version__}
    for arch in args.arch.split(","):
        record = {**measure(arch, keras, batch=args.batch, steps=args.steps, warmup=args.warmup),
                  "backend": backend, "precision": keras.mixed_precision.global_policy().name,
                  "jit_compile": str(keras3.jit_compile(backend)),
                  "machine": machine, "measured": time.strftime("%Y-%m-%dT%H:%M:%S")}
        append_jsonl(args.results, [record])
        study = STUDY_MS_PER_STEP.get(arch)
        print(f"{arch:14s} {backend:10s} {record['precision']:15s} {record['ms_per_step_p50']:9.2f} ms/step"
              + (f"   (study, Table 10: {study} ms/step)" if study else ""), flush=True)


def table(results: Path) -> None:
    sys.path.insert(0, str(HERE.parent))
    from edge_emnist.device.host import isa_tier

    records = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    latest, every = {}, {}
    for r in records:
        m = r["machine"]
        device = ", ".join(m["gpus"]) or f"{m['cpu']} ({m['cores']} cores, {isa_tier(m)})"
        xla = {"False": "off", "True": "on"}.get(r.get("jit_compile"), "Keras' choice")
        key = (device, r["backend"], r["precision"], xla, r["arch"])
        latest[key] = r
        every.setdefault(key, []).append(r["ms_per_step_p50"])
    lines = ["# Training step time at batch 256", "",
             "Median of timed `train_on_batch` steps on in-memory batches after warm-up (compilation), Adam, "
             "Keras 3; made by `python benchmarks/train_step.py` (records: `results/train_step.jsonl`, one per "
             "architecture with the machine; the latest record per row, and the range of every record of that row: "
             "a shared VM's step time varies between runs, so compare backends measured in one session). XLA as "
             "`edge-emnist train` sets it (off for TensorFlow on a CPU, where it doubled the step). The study's "
             "Table 10 was measured on its GPU.", "",
             "| device | backend | precision | XLA | architecture | ms/step | images/s | range ms/step (runs) | "
             "study, Table 10 ms/step |",
             "|---|---|---|---|---|---:|---:|---|---:|"]
    for key, r in sorted(latest.items(), key=lambda kv: (kv[0][:4], ORDER.index(kv[0][4]))):
        device, backend, precision, xla, arch = key
        ms, runs = r["ms_per_step_p50"], every[key]
        lines.append(f"| {device} | {backend} | {precision} | {xla} | {arch} | {ms:.1f} | "
                     f"{r['batch'] * 1000 / ms:,.0f} | {min(runs):.1f}-{max(runs):.1f} ({len(runs)}) | "
                     f"{STUDY_MS_PER_STEP.get(arch, '-')} |")
    TABLE.write_text("\n".join(lines) + "\n")
    print("wrote", TABLE)


def main() -> None:
    sys.path.insert(0, str(HERE.parent))
    from edge_emnist.keras3 import BACKENDS  # no Keras import: the backend is chosen before Keras loads

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=list(BACKENDS))
    parser.add_argument("--arch", default=",".join(ORDER))
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--precision", default="off", choices=["off", "auto", "bfloat16", "float16"],
                        help="off = float32 (default); auto = bfloat16 on a GPU")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--table", action="store_true", help="only write benchmarks/train_step.md from --results")
    args = parser.parse_args()
    if args.table:
        table(args.results)
    else:
        run(args)


if __name__ == "__main__":
    main()
