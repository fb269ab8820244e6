#!/usr/bin/env bash
# A first look at the edgenet family against the shipped front (issue 24): train a few shapes on emnist-dev
# bymerge, export each as float32 and int8 (.tflite, .onnx), bench at batch 1 / 1 thread beside LeNet-5's shipped
# float32 .tflite in the same call (the latency yardstick of the issue's targets), append to RESULTS.
#
#   EDGE_EMNIST_DATA=../shared/data bash benchmarks/edgenet_shapes.sh [RESULTS] [EPOCHS]
#
# Runs go to runs/edgenet-shapes/ (resumable: a finished shape is skipped, an interrupted one resumes).
set -euo pipefail
results=${1:-runs/edgenet-shapes/bench.jsonl}
epochs=${2:-15}
out=runs/edgenet-shapes
mkdir -p "$out"
shapes=(
  "width=0.5"
  "width=1.0"
  "width=0.75 depths=1,2,2"
  "width=1.5"
)
for shape in "${shapes[@]}"; do
  name="edgenet-$(echo "$shape" | tr ' ,' '_.' | tr -d '=')"
  options=()
  for item in $shape; do options+=(--option "$item"); done
  resume=()
  [ -f "$out/$name/config.json" ] && resume=(--resume)
  edge-emnist train --arch edgenet "${options[@]}" --dataset emnist-bymerge --epochs "$epochs" --patience 5 \
      --lr-schedule plateau --augment off --run-dir "$out/$name" "${resume[@]}"
  for quantize in none int8; do
    # a post-training int8 that misses its parity bar is refused and recorded in refused.jsonl: go on
    edge-emnist export "$out/$name" --quantize "$quantize" --out-dir "$out/exported" --force || [ $? -eq 1 ]
  done
done
edge-emnist bench exported/lenet5-emnist-bymerge-fp32.tflite "$out/exported" --threads 1 --batch 1 \
    --runtime litert,ort --results "$results"
