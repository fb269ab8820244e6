#!/usr/bin/env bash
# Ship the third round of front movers (issue 24): edgenet students distilled from an ensemble of two shipped
# edgenets on their own half-strength augmented images (edgenet_front.sh's `*-kd2` entries). Each replaces its
# undistilled twin in exported/ (same shape, same cost) when it is better on validation; the twin's cards go to
# benchmarks/results/not-shipped/, its run stays committed (the d112 one is a teacher). Exports are checked against
# emulated Cortex-A76 and AVX2-only CPUs; then one bench call beside LeNet-5's float32 .tflite into the committed
# records, and the committed report is rebuilt.
#
#   EDGE_EMNIST_DATA=../shared/data bash benchmarks/ship_distilled_front.sh   (EXPORT_ONLY=1: stop before the bench)
#
# Needs the runs of benchmarks/edgenet_front.sh's kd2 entries (run it first).
set -euo pipefail
runs=benchmarks/results/runs
source benchmarks/ship_lib.sh  # check, best_of, commit_run
students=(  # RUN:SHAPE (the shape tag as the artifacts spell it)
  "runs/front/s2-w05-d112-aug05-e50-kd2:edgenet-depths1.1.2-poolflatten-stem_stride2-width0.5"
  "runs/front/s2-w1-sep111-h64-aug05-kd2:edgenet-head64-poolflatten-separableTrue-stem_stride2-width1.0"
)
shipped=()
for entry in "${students[@]}"; do
  run=${entry%%:*} shape=${entry#*:}
  if [ "$(best_of "$runs/$shape" "$run")" != "$run" ]; then
    echo "$run: not better on validation than the shipped $shape: not shipped"
    continue
  fi
  commit_run "$run" "$shape-kd2"
  new=exported/$shape-emnist-bymerge-kd2-t4-fp32  # the distilled run's float32 files, as export names them
  shipped+=("$new.tflite" "$new.onnx")
  [ -n "${BENCH_ONLY:-}" ] && continue
  [ -f "$new.onnx.json" ] || edge-emnist export "$runs/$shape-kd2" --quantize none "${check[@]}" --out-dir exported \
      --force
  for suffix in tflite onnx; do  # retire the undistilled twin: its records stay, pick finds its card there
    old=exported/$shape-emnist-bymerge-fp32.$suffix
    if [ -f "$old" ]; then
      git mv -f "$old.json" benchmarks/results/not-shipped/ && git rm -q "$old"
    fi
  done
done
[ -n "${EXPORT_ONLY:-}" ] && exit 0
edge-emnist bench exported/lenet5-emnist-bymerge-fp32.tflite "${shipped[@]}" --threads 1 --batch 1,32 \
    --runtime litert,ort --results benchmarks/results/bench.jsonl
edge-emnist report --results benchmarks/results/bench.jsonl --exported exported benchmarks/results/not-shipped \
    --out benchmarks/report
