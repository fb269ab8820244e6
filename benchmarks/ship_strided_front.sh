#!/usr/bin/env bash
# Ship the second round of front movers (issue 24): the strided-stem edgenet shapes of edgenet_front.sh, each the
# run of its shape with the best validation accuracy. Exports are checked against emulated Cortex-A76 and AVX2-only
# CPUs; then one bench call beside LeNet-5's float32 .tflite into the committed records, and the committed report
# is rebuilt. (custom_vgg s50 fine-tuned on a cosine LR, then QAT, scored 0.8984 on validation against the shipped
# constant-LR s50-qat's 0.8996: validation keeps the shipped one.)
#
#   EDGE_EMNIST_DATA=../shared/data bash benchmarks/ship_strided_front.sh    (EXPORT_ONLY=1: stop before the bench)
#
# Needs the runs of benchmarks/edgenet_front.sh (run it first).
set -euo pipefail
check=(--check-on qemu-aarch64:cortex-a76 qemu-x86_64:haswell)
runs=benchmarks/results/runs
best_of() {  # the run folder with the best validation accuracy among those given
  python -c 'import json, sys; print(max(sys.argv[1:], key=lambda r: json.load(open(r + "/metrics.json"))["val_accuracy"]))' "$@"
}
commit_run() {  # SOURCE NAME: a small run into benchmarks/results/runs/, without its resumable checkpoint
  if [ -d "$runs/$2" ]; then return 0; fi
  mkdir -p "$runs/$2"
  cp "$1"/{config.json,metrics.json,best.weights.h5} "$runs/$2/"
  for extra in history.csv learning_curves.png; do
    if [ -f "$1/$extra" ]; then cp "$1/$extra" "$runs/$2/"; fi
  done
}
lenet_speed=$(best_of runs/front/s2-w05-d112 runs/front/s2-w05-d112-aug05 runs/front/s2-w05-d112-aug05-e50)
half_lenet=$(best_of runs/front/s2-w1-sep111-h64 runs/front/s2-w1-sep111-h64-aug05)
d112=edgenet-depths1.1.2-poolflatten-stem_stride2-width0.5  # the shape tag, as the artifacts spell it
sep=edgenet-head64-poolflatten-separableTrue-stem_stride2-width1.0
commit_run "$lenet_speed" "$d112"
commit_run "$half_lenet" "$sep"
stamp=runs/.ship-strided-started
[ -f "$stamp" ] || { mkdir -p runs; touch "$stamp"; }
if [ -z "${BENCH_ONLY:-}" ]; then
  for run in "$runs/$d112" "$runs/$sep"; do
    edge-emnist export "$run" --quantize none "${check[@]}" --out-dir exported --force
  done
fi
[ -n "${EXPORT_ONLY:-}" ] && exit 0
mapfile -t new < <(find exported -newer "$stamp" -type f ! -name '*.json' ! -name '*.jsonl' | sort)
edge-emnist bench exported/lenet5-emnist-bymerge-fp32.tflite "${new[@]}" --threads 1 --batch 1,32 \
    --runtime litert,ort --results benchmarks/results/bench.jsonl
edge-emnist report --results benchmarks/results/bench.jsonl --exported exported benchmarks/results/not-shipped \
    --out benchmarks/report
rm -f "$stamp"
