#!/usr/bin/env bash
# Is F1 (issue 24: 0.905 test at <= 7x LeNet-5) a question of the network or of the data? The F1 candidate's shape
# (`edgenet width=1.0 depths=1,2,2 pool=flatten stem_stride=2`) trained plain with the recipe of its committed twin
# (half-strength augmentation, cosine, 30 epochs, best validation epoch kept) on an eighth, a quarter and half of
# emnist-dev bymerge's 83,751 training images (`--train-limit`; validation shrinks to N/5, test stays whole), so
# test accuracy can be read against the number of training images. The full-data point is the committed run
# s2-w1-d122-aug05 of benchmarks/edgenet_front.md (0.8946 test).
#
#   EDGE_EMNIST_DATA=../shared/data bash benchmarks/data_scaling.sh
#
# Runs go to runs/data-scaling/ (a finished run is skipped, an interrupted one resumes); the last lines print
# training images, validation and test accuracy per run.
set -euo pipefail
source benchmarks/ship_lib.sh  # train_once
out=runs/data-scaling
for n in 10469 20938 41876; do
  train_once "$out/s2-w1-d122-aug05-n$n" train --arch edgenet --dataset emnist-bymerge --option width=1.0 \
      --option depths=1,2,2 --option pool=flatten --option stem_stride=2 --epochs 30 --patience 30 \
      --lr-schedule cosine --augment 0.5 --train-limit "$n"
done
for metrics in "$out"/*/metrics.json; do
  python - "$metrics" <<'PY'
import json, sys
from pathlib import Path
m = json.loads(Path(sys.argv[1]).read_text())
c = json.loads((Path(sys.argv[1]).parent / "config.json").read_text())
print(f"{c['train_limit']:>6} images  validation {m['val_accuracy']:.4f}  test {m['test_accuracy']:.4f}  "
      f"{Path(sys.argv[1]).parent.name}")
PY
done
