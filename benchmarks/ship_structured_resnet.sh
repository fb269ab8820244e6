#!/usr/bin/env bash
# Ship custom_resnet with half its inner filters removed (issue 24): `prune --structured 0.5` with a cosine fine-tune
# of 3 epochs (benchmarks/structured_pruning.md: 0.8898 test against the constant LR's 0.8469), then one epoch of QAT,
# exported as int8 (.tflite, .onnx) into exported/ with answers checked on emulated Cortex-A76 and AVX2-only CPUs;
# then benched beside LeNet-5's float32 .tflite and the shipped dense magnitude-pruned p50-qat-int8 in CALLS bench
# calls (default 2; accuracy on the whole test split in each, as the report reads it: about 7 minutes a call on a
# 2-core AVX2 EPYC) into the committed records, and the committed report rebuilt.
#
#   EDGE_EMNIST_DATA=../shared/data bash benchmarks/ship_structured_resnet.sh [CALLS]
#
# (EXPORT_ONLY=1: stop before the bench, whose latencies need an otherwise idle machine; BENCH_ONLY=1: bench only.)
# The runs go to runs/structured/ (not committed: the card names its weights' sha256); each stage that finished is
# skipped. On a 2-core AVX2 EPYC the fine-tune takes about 11 minutes per epoch.
set -euo pipefail
cd "$(dirname "$0")/.."
source benchmarks/ship_lib.sh  # check
calls=${1:-2}
src=benchmarks/results/runs/custom_resnet-emnist-bymerge
run=runs/structured/custom_resnet-emnist-bymerge-s50
if [ -z "${BENCH_ONLY:-}" ]; then
  [ -f "$run/metrics.json" ] || edge-emnist prune "$src" --structured 0.5 --epochs 3 --lr 1e-3 --lr-schedule cosine \
      --output "$run"
  [ -f "$run-qat/metrics.json" ] || edge-emnist qat "$run" --epochs 1 --output "$run-qat"
  edge-emnist export "$run-qat" --quantize int8 --out-dir exported --force "${check[@]}"
fi
[ -n "${EXPORT_ONLY:-}" ] && exit 0
files=(exported/lenet5-emnist-bymerge-fp32.tflite)
for stem in custom_resnet-emnist-bymerge-s50-qat-int8 custom_resnet-emnist-bymerge-p50-qat-int8; do
  files+=("exported/$stem.tflite" "exported/$stem.onnx")
done
for ((call = 1; call <= calls; call++)); do
  echo "== call $call of $calls, $(date -u +%FT%TZ)"
  edge-emnist bench "${files[@]}" --threads 1 --batch 1 --no-download --results benchmarks/results/bench.jsonl
done
edge-emnist report --results benchmarks/results/bench.jsonl --exported exported benchmarks/results/not-shipped \
    --out benchmarks/report
