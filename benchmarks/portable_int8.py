"""Do the shipped int8 ONNX artifacts answer the same on every CPU? Before and after storing them as uint8.

For every quantized ONNX in exported/ this compares the file as it was at git revision --before (int8
weights) with the file now (every 8-bit tensor uint8), on this machine:
- accuracy on the whole emnist-dev test split through ONNX Runtime with all graph optimizations (what an
  app gets), and the accuracy the file's model card recorded where it was exported;
- top-1 agreement of the fused int8 kernels with ONNX Runtime's `basic` level, which leaves QDQ graphs
  unfused (float math between quantize and dequantize): a CPU-independent reference for static int8;
- top-1 agreement with the same file under `qemu-x86_64 -cpu Haswell-noTSX` (AVX2, no VNNI) and under
  `qemu-aarch64 -cpu cortex-a76` on the first --emulated images, where they are installed
  (`edge-emnist targets --install qemu-x86_64:haswell qemu-aarch64:cortex-a76`);
Latency is not measured here (this can share the machine with other work); the uint8 files' latency is in the
committed bench records (`edge-emnist bench`, target cpu:vm-avx2 and others).

    python benchmarks/portable_int8.py --before 07f2e2d --data-dir ../shared/data
writes benchmarks/results/portable_int8.jsonl and benchmarks/portable_int8.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from edge_emnist.data import load_dataset
from edge_emnist.device.cards import card_path
from edge_emnist.device.host import host_description, isa_tier
from edge_emnist.device.runtimes import OrtModel, accuracy
from edge_emnist.io import atomic_path
from edge_emnist.tables import markdown_table
from edge_emnist.targets.qemu import emulated_predictions, missing

ROOT = Path(__file__).resolve().parents[1]
EMULATED = {"qemu-x86_64:haswell": "haswell_vs_native", "qemu-aarch64:cortex-a76": "cortex_a76_vs_native"}


def measure(path: Path, card: dict, test, emulated_images: int, emulate: bool = True) -> dict:
    x = test.images[..., None].astype(np.float32) / 255
    fused = OrtModel(path, optimization="all")
    answers = fused.predict(x)
    unfused = OrtModel(path, optimization="basic").predict(x)
    row = {"accuracy": accuracy(answers, test.labels), "card_accuracy": card["accuracy"]["artifact"],
           "card_onnxruntime": card["tools"].get("onnxruntime"),
           "fused_vs_unfused": float(np.mean(answers.argmax(1) == unfused.argmax(1)))}
    for target, key in EMULATED.items():
        if emulate and not missing(target):
            n = emulated_images
            emulated, _ = emulated_predictions(path, test.images[:n], test.labels[:n], target)
            row[key] = float(np.mean(emulated.argmax(1) == answers[:n].argmax(1)))
            row["emulated_images"] = n
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="git revision holding the int8-weight files")
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--only", default="*.onnx", help="glob of exported/ files (default: *.onnx)")
    parser.add_argument("--emulated", type=int, default=300, help="images checked under emulation")
    parser.add_argument("--not-emulated", nargs="*", default=["custom_resnet", "custom_vgg"], metavar="ARCH",
                        help="architectures left out of the emulated check (custom_resnet: ~2.5 s per image "
                             "under QEMU)")
    args = parser.parse_args()

    test = load_dataset("emnist-bymerge", args.data_dir, splits=("test",), quiet=True).test
    host = host_description()
    rows, table = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for path in sorted((ROOT / "exported").glob(args.only)):
            card = json.loads(card_path(path).read_text())
            if card["quantize"] not in ("int8", "dynamic"):
                continue
            old = Path(scratch) / path.name
            relative = path.relative_to(ROOT)
            old.write_bytes(subprocess.run(["git", "show", f"{args.before}:{relative}"], cwd=ROOT,
                                           capture_output=True, check=True).stdout)
            old_card = json.loads(subprocess.run(["git", "show", f"{args.before}:{relative}.json"], cwd=ROOT,
                                                 capture_output=True, check=True).stdout)
            started = time.perf_counter()
            emulate = card["arch"] not in args.not_emulated
            before = measure(old, old_card, test, args.emulated, emulate)
            after = measure(path, card, test, args.emulated, emulate)
            rows.append({"artifact": path.name, "quantize": card["quantize"], "before": before, "after": after,
                         "host": host, "before_revision": args.before,
                         "recorded": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
            print(f"{path.name}: {time.perf_counter() - started:.0f} s", flush=True)

            def cells(r: dict) -> list[str]:
                return [f"{r['accuracy']:.4f}", f"{r['card_accuracy']:.4f} (ORT {r['card_onnxruntime']})",
                        f"{r['fused_vs_unfused']:.4f}",
                        *(f"{r[key]:.4f}" if key in r else "-" for key in EMULATED.values())]
            table.append([path.name, *cells(before), *cells(after)])

    results = ROOT / "benchmarks" / "results" / "portable_int8.jsonl"
    with atomic_path(results) as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    columns = ["accuracy here", "card (where exported)", "fused = unfused", "= Haswell", "= Cortex-A76"]
    headers = ["artifact", *(f"int8: {c}" for c in columns), *(f"uint8: {c}" for c in columns)]
    text = [
        "# Portable int8 ONNX: the same answers on every CPU", "",
        f"Made by `python benchmarks/portable_int8.py --before {args.before} --data-dir {args.data_dir}` on "
        f"{host['cpu']} ({isa_tier(host)}: ISA {' '.join(host['isa'])}), {host['cores']} cores, onnxruntime "
        f"{host['versions'].get('onnxruntime')}, {time.strftime('%Y-%m-%d')}.", "",
        "\"int8\": the files as shipped before (int8 weights); \"uint8\": the same models with every 8-bit tensor "
        "stored as uint8 (`edge_emnist/export/onnx_unsigned.py`). Accuracy on the 23,265 emnist-dev bymerge test "
        "images through ONNX Runtime with all graph optimizations; \"card\": what the file's model card recorded "
        "on the machine that exported it. \"fused = unfused\": top-1 agreement of ONNX Runtime's fused int8 "
        "kernels with its `basic` level (QDQ left unfused, float math between quantize and dequantize), a "
        "reference no CPU changes (for static int8; dynamic-range graphs run the same integer kernels at both "
        "levels). \"= Haswell\", \"= Cortex-A76\": top-1 agreement with the same file under QEMU as a Haswell CPU "
        "(AVX2, no VNNI) and as an ARM Cortex-A76 (dotprod, as in a Raspberry Pi 5) on the first "
        f"{args.emulated:,} test images (not for {', '.join(args.not_emulated) or 'none'}: too slow under "
        "emulation).", "",
        markdown_table(headers, table), "",
    ]
    with atomic_path(ROOT / "benchmarks" / "portable_int8.md") as tmp:
        tmp.write_text("\n".join(text))


if __name__ == "__main__":
    main()
