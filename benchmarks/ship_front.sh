#!/usr/bin/env bash
# Ship the artifacts that moved the accuracy-speed front (issue 24) and the app-ready variants (issue 27), then
# bench them beside LeNet-5's float32 .tflite into the committed records and rebuild the committed report.
#
#   EDGE_EMNIST_DATA=../shared/data bash benchmarks/ship_front.sh     (EXPORT_ONLY=1: stop before the bench, whose
#                                                                      latencies need an otherwise idle machine)
#
# Sources: the structured-pruning runs of benchmarks/structured_pruning.sh (runs/structured/, rebuilt by it) and
# the committed runs in benchmarks/results/runs/. Exports are checked against emulated Cortex-A76 and AVX2-only
# CPUs (their answers, on 2,000 test images, are on each card).
set -euo pipefail
runs=benchmarks/results/runs
source benchmarks/ship_lib.sh  # check, best_of, commit_run
vgg=runs/structured/custom_vgg-emnist-bymerge-s50-qat
vgg75=runs/structured/custom_vgg-emnist-bymerge-s75-qat
[ -f "$vgg/metrics.json" ] || bash benchmarks/structured_pruning.sh runs/structured/bench.jsonl 8 custom_vgg
if [ ! -f "$vgg75/metrics.json" ]; then  # three quarters of custom_vgg's filters removed, 12 epochs, then 2 of QAT
  edge-emnist prune benchmarks/results/runs/custom_vgg-emnist-bymerge --structured 0.75 --epochs 12 --lr 1e-3 \
      --output "${vgg75%-qat}"
  edge-emnist qat "${vgg75%-qat}" --epochs 2 --output "$vgg75"
fi
stamp=runs/.ship-front-started  # kept until the bench: EXPORT_ONLY=1 exports now (no quiet CPU needed), bench later
[ -f "$stamp" ] || { mkdir -p runs; touch "$stamp"; }
export_to_shipped() {  # BENCH_ONLY=1: the exports are done (an earlier EXPORT_ONLY=1 call), go to the bench
  [ -n "${BENCH_ONLY:-}" ] || edge-emnist export "$@" --out-dir exported --force
}
commit_run runs/structured/simple_cnn-emnist-bymerge-aug-s50 simple_cnn-emnist-bymerge-aug-s50
commit_run runs/edgenet-shapes/edgenet-width0.75_depths1.2.2 edgenet-width0.75_depths1.2.2
commit_run runs/edgenet-kd/w05-flat edgenet-width0.5_poolflatten
# the front movers: half the filters of custom_vgg and simple_cnn, and the best edgenet shape
export_to_shipped "$vgg" --quantize int8 "${check[@]}"
export_to_shipped "$vgg75" --quantize int8 "${check[@]}"
export_to_shipped "$runs/simple_cnn-emnist-bymerge-aug-s50" --quantize none "${check[@]}"
export_to_shipped "$runs/edgenet-width0.75_depths1.2.2" --quantize none "${check[@]}"
export_to_shipped "$runs/edgenet-width0.5_poolflatten" --quantize none "${check[@]}"
# app-ready (28x28 RGB in, grey inside, metadata MediaPipe reads): the picked models of each machine kind
export_to_shipped "$vgg" --quantize int8 --io uint8 --input rgb --format tflite
export_to_shipped "$runs/simple_cnn-emnist-bymerge-aug-qat" --quantize int8 --io uint8 --input rgb --format tflite
export_to_shipped "$runs/lenet5-emnist-bymerge-aug" --quantize none --input rgb --format tflite
[ -n "${EXPORT_ONLY:-}" ] && exit 0
mapfile -t new < <(find exported -newer "$stamp" -type f ! -name '*.json' ! -name '*.jsonl' | sort)
# the grey twins of the app-ready files in the same call: the latency cost of the RGB input
edge-emnist bench exported/lenet5-emnist-bymerge-fp32.tflite exported/simple_cnn-emnist-bymerge-qat-int8.tflite \
    "${new[@]}" --threads 1 --batch 1,32 \
    --runtime litert,ort --results benchmarks/results/bench.jsonl
edge-emnist report --results benchmarks/results/bench.jsonl --exported exported benchmarks/results/not-shipped \
    --out benchmarks/report
rm -f "$stamp"
