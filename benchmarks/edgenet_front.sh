#!/usr/bin/env bash
# Strided stems, flatten heads and depthwise-separable edgenet shapes aimed at the issue 24 targets F2 (0.895 at
# LeNet-5's p90) and F3 (0.881 at half of it): train each (cosine LR, no augmentation, 20 epochs unless the entry
# says otherwise; early stopping off), export it as float32 and int8 (.tflite, .onnx), bench at batch 1 / 1 thread
# beside LeNet-5's shipped float32 .tflite in the same call, append to RESULTS.
#
#   EDGE_EMNIST_DATA=../shared/data bash benchmarks/edgenet_front.sh [RESULTS]
#
# Runs go to runs/front/ (a finished run is skipped, an interrupted one resumes). EXPORT_ONLY=1 stops before the
# bench, which needs an otherwise idle machine: its latencies are the point.
set -euo pipefail
source benchmarks/ship_lib.sh  # train_once
results=${1:-runs/front/bench.jsonl}
out=runs/front
mkdir -p "$out/exported"
teacher=benchmarks/results/runs/custom_vgg-emnist-bymerge
# two shipped edgenets as an ensemble teacher (0.9013 test averaged; cheap enough to run on every augmented batch)
edge_teachers=benchmarks/results/runs/edgenet-width0.75_depths1.2.2,benchmarks/results/runs/edgenet-depths1.1.2-poolflatten-stem_stride2-width0.5
# F1 (0.905 at 7x): the best four-member ensemble on validation (0.9075 val / 0.9065 test, ensemble_probe.py), two
# custom_vggs among them (the augmented one is runs/vgg-aug/, made by custom_vgg_augmented.sh; not committed)
vgg_teachers=$teacher,runs/vgg-aug/custom_vgg-emnist-bymerge-aug05,$edge_teachers
stem2=(--option pool=flatten --option stem_stride=2)
runs=(  # NAME:COMMAND and its options after the common ones (a later flag overrides an earlier one)
  "w05-flat:train --option width=0.5 --option pool=flatten"
  "w05-flat-s2:train --option width=0.5 ${stem2[*]}"
  "s2-w05-d112:train --option width=0.5 ${stem2[*]} --option depths=1,1,2"
  "s2-w05-d112-aug05:train --option width=0.5 ${stem2[*]} --option depths=1,1,2 --epochs 30 --patience 30 --augment 0.5"
  "s2-w05-d112-kd:distill --option width=0.5 ${stem2[*]} --option depths=1,1,2 --teacher $teacher"
  "s2-w1-sep122:train --option width=1.0 ${stem2[*]} --option separable=true --option depths=1,2,2"
  "s2-w1-sep111:train --option width=1.0 ${stem2[*]} --option separable=true"
  "s2-w1-sep111-h64:train --option width=1.0 ${stem2[*]} --option separable=true --option head=64"
  "s2-w1-sep111-h128:train --option width=1.0 ${stem2[*]} --option separable=true --option head=128"
  "s2-w1-sep111-h64-aug05:train --option width=1.0 ${stem2[*]} --option separable=true --option head=64 --epochs 30 --patience 30 --augment 0.5"
  "s2-w05-d112-aug05-e50:train --option width=0.5 ${stem2[*]} --option depths=1,1,2 --epochs 50 --patience 50 --augment 0.5"
  "s2-w1-sep111-h64-aug05-kd2:distill --option width=1.0 ${stem2[*]} --option separable=true --option head=64 --epochs 30 --patience 30 --augment 0.5 --teacher $edge_teachers"
  "s2-w1-d122-aug05-kd4:distill --option width=1.0 ${stem2[*]} --option depths=1,2,2 --epochs 30 --patience 30 --augment 0.5 --teacher $vgg_teachers"
  "s2-w1-d122-aug05:train --option width=1.0 ${stem2[*]} --option depths=1,2,2 --epochs 30 --patience 30 --augment 0.5"
  "s2-w15-d122-aug05-kd4:distill --option width=1.5 ${stem2[*]} --option depths=1,2,2 --epochs 24 --patience 24 --augment 0.5 --teacher $vgg_teachers"
  "s2-w05-d112-aug05-e50-kd2:distill --option width=0.5 ${stem2[*]} --option depths=1,1,2 --epochs 50 --patience 50 --augment 0.5 --teacher $edge_teachers"
  # F3 on AVX2 (benchmarks/shape_latency_probe.sh: this shape 0.36x LeNet-5 there, the shipped head64 one 0.50x)
  "s2-w05-aug05-e50-kd2:distill --option width=0.5 ${stem2[*]} --epochs 50 --patience 50 --augment 0.5 --teacher $edge_teachers"
  # its plain twin: what distillation gave this shape (benchmarks/distillation.md, fifth round)
  "s2-w05-aug05-e50:train --option width=0.5 ${stem2[*]} --epochs 50 --patience 50 --augment 0.5"
  # F3 on AVX-512 VNNI (shape_latency_probe.sh there: this shape 0.41x LeNet-5, the shipped head64 one 0.53-0.58x);
  # too narrow: 0.8778 validation, 0.8766 test (benchmarks/distillation.md, sixth round)
  "s2-w05-sep111-h64-aug05-e50-kd2:distill --option width=0.5 ${stem2[*]} --option separable=true --option head=64 --epochs 50 --patience 50 --augment 0.5 --teacher $edge_teachers"
  # F2 on VNNI with a margin (0.78x there); stopped at epoch 9, 0.7 points behind the d112 student at its epoch 9
  "s2-w1-sep112-h64-aug05-e50-kd2:distill --option width=1.0 ${stem2[*]} --option separable=true --option depths=1,1,2 --option head=64 --epochs 50 --patience 50 --augment 0.5 --teacher $edge_teachers"
)
for entry in "${runs[@]}"; do
  name=${entry%%:*}
  read -r -a args <<< "${entry#*:}"
  train_once "$out/$name" "${args[0]}" --arch edgenet --dataset emnist-bymerge --epochs 20 --patience 20 \
      --lr-schedule cosine --augment off "${args[@]:1}"
  [ -f "$out/exported/.done-$name" ] && continue
  for quantize in none int8; do
    # a post-training int8 that misses its parity bar is refused and recorded in refused.jsonl: go on
    edge-emnist export "$out/$name" --quantize "$quantize" --out-dir "$out/exported/$name" --force || [ $? -eq 1 ]
  done
  touch "$out/exported/.done-$name"
done
[ -n "${EXPORT_ONLY:-}" ] && exit 0  # EXPORT_ONLY=1: train and export now, bench on an idle machine later
# Runs of one shape trained differently (longer, augmented) export files of the same name: bench the one with the
# best validation accuracy of each name (a results row is one file name; the test split chooses nothing).
mapfile -t chosen < <(python - "$out" "${runs[@]%%:*}" <<'PY'
import json, sys
from pathlib import Path
out, best = Path(sys.argv[1]), {}
for name in sys.argv[2:]:
    val = json.loads((out / name / "metrics.json").read_text())["val_accuracy"]
    key = tuple(sorted(p.name for p in (out / "exported" / name).iterdir() if p.suffix in (".tflite", ".onnx")))
    if key not in best or val > best[key][0]:
        best[key] = (val, name)
print("\n".join(str(out / "exported" / name) for _, name in best.values()))
PY
)
edge-emnist bench exported/lenet5-emnist-bymerge-fp32.tflite "${chosen[@]}" --threads 1 --batch 1 \
    --runtime litert,ort --results "$results"
