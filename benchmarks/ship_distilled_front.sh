#!/usr/bin/env bash
# Ship the distilled front movers (issue 24): edgenet students distilled from ensembles on their own half-strength
# augmented images (edgenet_front.sh's `*-kd2` and `*-kd4` entries). A student whose undistilled twin (same shape,
# same cost) is shipped replaces it when it is better on validation: the twin's cards go to
# benchmarks/results/not-shipped/, its run stays committed (the d112 one is a teacher); a student of a new shape is
# shipped beside the rest. Exports are checked against emulated Cortex-A76 and AVX2-only CPUs; then one bench call
# beside LeNet-5's float32 .tflite into the committed records, and the committed report is rebuilt.
#
#   EDGE_EMNIST_DATA=../shared/data bash benchmarks/ship_distilled_front.sh   (EXPORT_ONLY=1: stop before the bench)
#
# Needs the runs of benchmarks/edgenet_front.sh's distilled entries (run it first).
set -euo pipefail
runs=benchmarks/results/runs
source benchmarks/ship_lib.sh  # check, best_of, commit_run
students=(  # RUN:SHAPE:TAG:QUANTIZATIONS (the shape and the tag as the artifacts spell them; kdN: N teachers)
  # its int8 (2.2x faster than its float32 on AVX-512 VNNI; the shape's int8 was slower on AMX) is made by range-only
  # QAT since 2026-12-07, benchmarks/ship_ranges_int8.sh (validation chose it over this script's post-training int8)
  "runs/front/s2-w05-d112-aug05-e50-kd2:edgenet-depths1.1.2-poolflatten-stem_stride2-width0.5:kd2:none"
  "runs/front/s2-w1-sep111-h64-aug05-kd2:edgenet-head64-poolflatten-separableTrue-stem_stride2-width1.0:kd2:none"
  # F1's student (four teachers, two custom_vggs among them); its int8 is the fast one on int8-capable CPUs
  "runs/front/s2-w1-d122-aug05-kd4:edgenet-depths1.2.2-poolflatten-stem_stride2-width1.0:kd4:none,int8"
  # F3 on AVX2: no dense head (the head64 shape is 0.50x LeNet-5 there, this one 0.36x; shape_latency_probe.sh)
  # (its int8: 0.25x LeNet-5 on AVX-512 VNNI, 0.22-0.32x in five calls, the fastest file there above 0.881)
  "runs/front/s2-w05-aug05-e50-kd2:edgenet-poolflatten-stem_stride2-width0.5:kd2:none,int8"
)
shipped=()
for entry in "${students[@]}"; do
  IFS=: read -r run shape tag quantizations <<< "$entry"
  if [ -d "$runs/$shape" ] && [ "$(best_of "$runs/$shape" "$run")" != "$run" ]; then
    echo "$run: not better on validation than the shipped $shape: not shipped"
    continue
  fi
  commit_run "$run" "$shape-$tag"
  for quantize in ${quantizations//,/ }; do
    new=exported/$shape-emnist-bymerge-$tag-t4-${quantize/none/fp32}  # the files, as export names them
    shipped+=("$new.tflite" "$new.onnx")
    [ -n "${BENCH_ONLY:-}" ] && continue
    [ -f "$new.onnx.json" ] || edge-emnist export "$runs/$shape-$tag" --quantize "$quantize" "${check[@]}" \
        --out-dir exported --force
  done
  [ -n "${BENCH_ONLY:-}" ] && continue
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
