#!/usr/bin/env bash
# Issue 24, item 6: the study's custom_resnet trained to convergence with half-strength augmentation and a cosine
# schedule over 30 epochs (the recipe that trained the edgenets best, benchmarks/edgenet_front.md), resumable on any
# machine, then made int8 (QAT) and exported (.tflite, .onnx) into runs/resnet-aug/exported.
#
#   EDGE_EMNIST_DATA=../shared/data bash benchmarks/custom_resnet_converge.sh
#
# The run trains in runs/resnet-aug/custom_resnet-emnist-bymerge-aug05. A session that stops mid-run commits what
# resumes it to benchmarks/results/runs/ under the same name: config.json, history.csv, learning_curves.png and the
# newest checkpoints/epoch-N.weights.h5 (weights and Adam's state, 4.5 MB), plus best.weights.h5 only when the best
# epoch is an earlier one (otherwise `train --resume` rebuilds it from the checkpoint). Where runs/ has no such folder
# yet, this script starts from a copy of the committed one, so the committed files are never written. Epochs take 700-1,700 s on a 2-core AVX2 EPYC; the GPU recipe is benchmarks/gpu/README.md.
set -euo pipefail
source benchmarks/ship_lib.sh  # train_once
name=custom_resnet-emnist-bymerge-aug05
out=runs/resnet-aug
run=$out/$name
committed=benchmarks/results/runs/$name
if [ ! -d "$run" ] && [ -d "$committed/checkpoints" ]; then
  mkdir -p "$out" && cp -r "$committed" "$run" && echo "resuming from the committed checkpoint of $committed"
fi
train_once "$run" train --arch custom_resnet --dataset emnist-bymerge --epochs 30 --patience 30 --augment 0.5 \
    --lr-schedule cosine
[ -f "$run-qat/metrics.json" ] || edge-emnist qat "$run" --epochs 2 --lr-schedule cosine --output "$run-qat"
[ -f "$out/exported/.done-qat" ] || { edge-emnist export "$run-qat" --quantize int8 --out-dir "$out/exported" --force \
    && touch "$out/exported/.done-qat"; }
