#!/usr/bin/env bash
# Structured against magnitude pruning (issue 24): half the filters of every prunable layer removed
# (`prune --structured 0.5`, fine-tuned), against the committed magnitude-pruned (p50) and unpruned runs of the
# same architecture; each exported as float32 and int8 (.tflite/.onnx; the structured run's int8 after 2 epochs of
# QAT, as the shipped magnitude-pruned int8 files were made) and benched at batch 1, 1 thread, beside
# the shipped LeNet-5 float32 .tflite in the same call (the issue's latency yardstick). Appends to RESULTS.
#
#   EDGE_EMNIST_DATA=../shared/data bash benchmarks/structured_pruning.sh [RESULTS] [EPOCHS] [ARCH...]
#
# EPOCHS: fine-tuning after the filters go (default 8); QAT_EPOCHS=N before the command changes the QAT's (default 2).
#
# Runs and artifacts go to runs/structured/ (a finished pruning is skipped; nothing here is committed but the
# records). Sources: benchmarks/results/runs/ (the runs the shipped artifacts came from).
set -euo pipefail
results=${1:-runs/structured/bench.jsonl}
epochs=${2:-8}
qat_epochs=${QAT_EPOCHS:-2}
shift $(( $# > 2 ? 2 : $# ))
archs=("${@:-lenet5 simple_cnn custom_vgg}")
archs=(${archs[*]})
src=benchmarks/results/runs
out=runs/structured
declare -A source=([lenet5]=lenet5-emnist-bymerge-aug [simple_cnn]=simple_cnn-emnist-bymerge-aug
                   [custom_vgg]=custom_vgg-emnist-bymerge [custom_resnet]=custom_resnet-emnist-bymerge)
declare -A magnitude=([lenet5]=lenet5-emnist-bymerge-aug-p50 [simple_cnn]=simple_cnn-emnist-bymerge-aug-p50
                      [custom_vgg]=custom_vgg-emnist-bymerge-p50 [custom_resnet]=custom_resnet-emnist-bymerge-p50)
mkdir -p "$out"
artifacts=()
for arch in "${archs[@]}"; do
  run="$out/${source[$arch]}-s50"
  [ -f "$run/metrics.json" ] || edge-emnist prune "$src/${source[$arch]}" --structured 0.5 --epochs "$epochs" \
      --lr 1e-3 --output "$run"
  # int8 through QAT, as the shipped magnitude-pruned int8 files were made (post-training int8 misses the bar often)
  [ -f "$run-qat/metrics.json" ] || edge-emnist qat "$run" --epochs "$qat_epochs" --output "$run-qat"
  for variant in "$src/${source[$arch]}" "$src/${magnitude[$arch]}" "$run" "$run-qat"; do
    [ -f "$variant/best.weights.h5" ] || continue  # custom_vgg's p50 run kept no weights: its shipped files stand in
    done_marker="$out/exported/$arch/.done-$(basename "$variant")"
    [ -f "$done_marker" ] && continue
    quantizations=(none int8)
    [[ "$variant" == *-qat ]] && quantizations=(int8)
    for quantize in "${quantizations[@]}"; do
      # a post-training int8 that misses its parity bar is refused (and recorded in refused.jsonl): go on
      edge-emnist export "$variant" --quantize "$quantize" --out-dir "$out/exported/$arch" --force || [ $? -eq 1 ]
    done
    touch "$done_marker"
  done
  shipped="exported/${source[$arch]%-aug}-p50-qat-int8"
  artifacts+=("$out/exported/$arch")
  # the dense twin where it still ships (custom_vgg's was retired on 2026-12-07; README says how to rebuild it)
  for file in "$shipped.tflite" "$shipped.onnx"; do [ -f "$file" ] && artifacts+=("$file"); done
done
edge-emnist bench exported/lenet5-emnist-bymerge-fp32.tflite "${artifacts[@]}" --threads 1 --batch 1 \
    --runtime litert,ort --results "$results"
