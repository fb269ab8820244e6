#!/usr/bin/env bash
# Time edgenet shapes on this machine before training them: a shape's latency does not depend on its weights, so
# each is trained for one epoch on 2,000 images (to get a file), exported as float32 .tflite, and timed at batch 1,
# 1 thread beside the shipped LeNet-5 float32 .tflite in CALLS bench calls (no accuracy pass). Prints each shape's
# median ratio to LeNet-5 over the calls, with the range.
#
#   EDGE_EMNIST_DATA=../shared/data bash benchmarks/shape_latency_probe.sh OUT CALLS NAME=opt+opt... [NAME=...]
#   e.g. ... runs/probe 3 w05-s2=width=0.5+pool=flatten+stem_stride=2 d112=width=0.5+pool=flatten+depths=1,1,2
#
# Options are edgenet's --option KEY=VALUE pairs joined by "+".
set -euo pipefail
cd "$(dirname "$0")/.."
out="$1" calls="$2"
shift 2
mkdir -p "$out"
files=(exported/lenet5-emnist-bymerge-fp32.tflite)
for spec in "$@"; do
  name="${spec%%=*}" options="${spec#*=}"
  args=()
  IFS=+ read -ra pairs <<< "$options"
  for pair in "${pairs[@]}"; do args+=(--option "$pair"); done
  if [ ! -f "$out/$name/best.weights.h5" ]; then
    edge-emnist train --arch edgenet "${args[@]}" --epochs 1 --train-limit 2000 --no-download \
      --run-dir "$out/$name" > "$out/$name.train.log" 2>&1
  fi
  edge-emnist export "$out/$name" --quantize none --format tflite --out-dir "$out/exported/$name" --force \
    > "$out/$name.export.log" 2>&1
  files+=("$out/exported/$name"/*.tflite)
done
for ((call = 1; call <= calls; call++)); do
  edge-emnist bench "${files[@]}" --threads 1 --batch 1 --no-accuracy --no-yardstick --no-download \
    --results "$out/bench.jsonl" > "$out/bench-$call.log" 2>&1
done
python - "$out/bench.jsonl" <<'EOF'
import json, statistics, sys
from edge_emnist.report.relative import REFERENCE, Beside

records = [json.loads(line) for line in open(sys.argv[1])]
beside = Beside.of(records, REFERENCE)
latest = {r["artifact"]: r for r in records if r.get("latency")}
for name, record in sorted(latest.items(), key=lambda kv: beside.typical(kv[1]) or 0):
    ratios = beside.ratios(record)
    p90 = statistics.median(r["latency"]["p90_ms"] for r in records if r.get("artifact") == name and r.get("latency"))
    print(f"{beside.typical(record):5.2f}x ({min(ratios):.2f}-{max(ratios):.2f}, {len(ratios)} calls)  "
          f"p90 {p90:.4f} ms  {name}")
EOF
