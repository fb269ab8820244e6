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
runs=benchmarks/results/runs
source benchmarks/ship_lib.sh  # check, best_of, commit_run
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
