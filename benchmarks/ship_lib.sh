# Shared by the benchmarks scripts (source it): how a run is trained once, chosen and committed, and how a shipped
# file is checked. commit_run expects $runs (benchmarks/results/runs).
check=(--check-on qemu-aarch64:cortex-a76 qemu-x86_64:haswell)  # answers on emulated Cortex-A76 and AVX2-only CPUs
train_once() {  # DIR COMMAND [OPTIONS...]: edge-emnist COMMAND into run folder DIR; a finished run is skipped,
  local dir=$1 resume=()                   # an interrupted one resumes
  shift
  [ -f "$dir/metrics.json" ] && return 0
  [ -f "$dir/config.json" ] && resume=(--resume)
  edge-emnist "$@" --run-dir "$dir" "${resume[@]}"
}
best_of() {  # the run folder with the best validation accuracy among those given
  python -c 'import json, sys; print(max(sys.argv[1:], key=lambda r: json.load(open(r + "/metrics.json"))["val_accuracy"]))' "$@"
}
commit_run() {  # SOURCE NAME: a small run into benchmarks/results/runs/, without its resumable checkpoint
  if [ -d "$runs/$2" ]; then return 0; fi
  mkdir -p "$runs/$2"
  cp "$1"/{config.json,metrics.json,best.weights.h5} "$runs/$2/"
  for extra in optimization.json history.csv learning_curves.png; do
    if [ -f "$1/$extra" ]; then cp "$1/$extra" "$runs/$2/"; fi
  done
}
