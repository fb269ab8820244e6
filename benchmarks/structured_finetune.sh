#!/usr/bin/env bash
# Structured pruning's fine-tuning (issue 24): a cosine LR with the best validation epoch kept, against the
# constant LR / last epoch of benchmarks/structured_pruning.sh, and the batch-norm criterion against L1. Half the
# filters of each source removed, 8 epochs at Adam 1e-3; each exported as float32 (.tflite, .onnx) and benched at
# batch 1 / 1 thread beside its unpruned source's float32 files and LeNet-5's float32 .tflite, in one call.
#
#   EDGE_EMNIST_DATA=../shared/data bash benchmarks/structured_finetune.sh [RESULTS]
#
# Runs and artifacts go to runs/structured/ (a finished run is skipped). Sources: benchmarks/results/runs/.
set -euo pipefail
results=${1:-runs/structured/finetune-bench.jsonl}
src=benchmarks/results/runs
out=runs/structured
prune() {  # SOURCE NAME CRITERION
  [ -f "$out/$2/metrics.json" ] || edge-emnist prune "$src/$1" --structured 0.5 --criterion "$3" --epochs 8 \
      --lr 1e-3 --lr-schedule cosine --output "$out/$2"
  [ -f "$out/exported-finetune/.done-$2" ] && return 0
  edge-emnist export "$out/$2" --quantize none --out-dir "$out/exported-finetune/$2" --force
  touch "$out/exported-finetune/.done-$2"
}
# custom_vgg's unpruned float32 files are not shipped (6.6 MB each): made here from the committed run
[ -f "$out/exported-finetune/.done-custom_vgg" ] || { edge-emnist export "$src/custom_vgg-emnist-bymerge" --quantize none \
    --out-dir "$out/exported-finetune/custom_vgg-unpruned" --force && touch "$out/exported-finetune/.done-custom_vgg"; }
prune custom_vgg-emnist-bymerge custom_vgg-emnist-bymerge-s50-cosine l1
prune simple_cnn-emnist-bymerge-aug simple_cnn-emnist-bymerge-aug-s50-cosine l1
# (simple_cnn has no batch norm: there the bn criterion falls back to L1 and makes the same file)
prune custom_vgg-emnist-bymerge custom_vgg-emnist-bymerge-s50bn-cosine bn
[ -n "${EXPORT_ONLY:-}" ] && exit 0  # EXPORT_ONLY=1: train and export now, bench on an idle machine later
edge-emnist bench exported/lenet5-emnist-bymerge-fp32.tflite exported/simple_cnn-emnist-bymerge-fp32.tflite \
    exported/simple_cnn-emnist-bymerge-fp32.onnx \
    "$out"/exported-finetune/*/ --threads 1 --batch 1 --runtime litert,ort --results "$results"
