#!/usr/bin/env bash
# F2's student (the distilled d112 edgenet) made int8 by range-only QAT (`qat --ranges-only`: one epoch in which only
# the fake-quant activation ranges move, as moving averages over the training batches; weights and batch-norm
# statistics stay as trained), exported with its answers checked on emulated Cortex-A76 and AVX2-only CPUs, scored
# against the shipped post-training int8 of the same weights on the student's validation split (which chooses), then
# timed beside it and LeNet-5's float32 .tflite in CALLS bench calls. Appends to RESULTS.
#
#   EDGE_EMNIST_DATA=../shared/data bash benchmarks/ship_ranges_int8.sh [RESULTS] [CALLS]
#
# Shipping then means: the chosen file stays in exported/, the other one's cards go to benchmarks/results/not-shipped/
# (git mv) and its files are removed; its records stay. Run it on an idle machine (bench calls).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=benchmarks/results/runs
source benchmarks/ship_lib.sh  # check, commit_run
results="${1:-runs/ranges/bench.jsonl}"
calls="${2:-5}"
student=edgenet-depths1.1.2-poolflatten-stem_stride2-width0.5-kd2
stem=exported/edgenet-depths1.1.2-poolflatten-stem_stride2-width0.5-emnist-bymerge-kd2-t4
[ -f "runs/ranges/$student-qat/metrics.json" ] || edge-emnist qat "$runs/$student" --epochs 1 --ranges-only \
    --output "runs/ranges/$student-qat"
commit_run "runs/ranges/$student-qat" "$student-qat"
[ -f "$stem-qat-int8.onnx.json" ] || edge-emnist export "$runs/$student-qat" --quantize int8 "${check[@]}" \
    --out-dir exported --force
files=(exported/lenet5-emnist-bymerge-fp32.tflite "$stem-qat-int8.tflite" "$stem-qat-int8.onnx")
for old in "$stem-int8.tflite" "$stem-int8.onnx"; do [ -f "$old" ] && files+=("$old"); done
python benchmarks/artifact_validation.py "$runs/$student" "${files[@]:1}"
mkdir -p "$(dirname "$results")"
for ((call = 1; call <= calls; call++)); do
  echo "== call $call of $calls, $(date -u +%FT%TZ)"
  edge-emnist bench "${files[@]}" --threads 1 --batch 1 --no-download --results "$results"
done
