#!/usr/bin/env bash
# Strided stems, flatten heads and depthwise-separable edgenet shapes aimed at the issue 24 targets F2 (0.895 at
# LeNet-5's p90) and F3 (0.881 at half of it): train each shape 20 epochs (cosine LR, no augmentation), export it
# as float32 and int8 (.tflite, .onnx), bench at batch 1 / 1 thread beside LeNet-5's shipped float32 .tflite in the
# same call, append to RESULTS.
#
#   EDGE_EMNIST_DATA=../shared/data bash benchmarks/edgenet_front.sh [RESULTS] [EPOCHS]
#
# Runs go to runs/front/ (a finished shape is skipped, an interrupted one resumes). The bench needs an otherwise
# idle machine: its latencies are the point.
set -euo pipefail
results=${1:-runs/front/bench.jsonl}
epochs=${2:-20}
out=runs/front
mkdir -p "$out"
shapes=(  # NAME:OPTIONS
  "w05-flat:width=0.5 pool=flatten"
  "w05-flat-s2:width=0.5 pool=flatten stem_stride=2"
  "s2-w05-d112:width=0.5 pool=flatten stem_stride=2 depths=1,1,2"
  "s2-w1-sep122:width=1.0 pool=flatten stem_stride=2 separable=true depths=1,2,2"
  "s2-w1-sep111:width=1.0 pool=flatten stem_stride=2 separable=true"
  "s2-w1-sep111-h64:width=1.0 pool=flatten stem_stride=2 separable=true head=64"
)
for entry in "${shapes[@]}"; do
  name=${entry%%:*}
  options=()
  for item in ${entry#*:}; do options+=(--option "$item"); done
  if [ ! -f "$out/$name/metrics.json" ]; then
    resume=()
    [ -f "$out/$name/config.json" ] && resume=(--resume)
    edge-emnist train --arch edgenet "${options[@]}" --dataset emnist-bymerge --epochs "$epochs" --patience "$epochs" \
        --lr-schedule cosine --augment off --run-dir "$out/$name" "${resume[@]}"
  fi
  [ -f "$out/exported/.done-$name" ] && continue
  for quantize in none int8; do
    # a post-training int8 that misses its parity bar is refused and recorded in refused.jsonl: go on
    edge-emnist export "$out/$name" --quantize "$quantize" --out-dir "$out/exported" --force || [ $? -eq 1 ]
  done
  touch "$out/exported/.done-$name"
done
[ -n "${EXPORT_ONLY:-}" ] && exit 0  # EXPORT_ONLY=1: train and export now, bench on an idle machine later
edge-emnist bench exported/lenet5-emnist-bymerge-fp32.tflite "$out/exported" --threads 1 --batch 1 \
    --runtime litert,ort --results "$results"
