#!/usr/bin/env bash
# On the GPU machine, from the repository root: train architectures with Keras 3 on JAX (or $BACKEND) to
# convergence on emnist-dev bymerge, and leave the run folders (without the resumable checkpoints) in
# $OUT/runs.tar, with files over 15 MiB split into $OUT/NAME.partNN (join with `cat NAME.part* > NAME`).
# Usage: OUT=/tmp/out bash benchmarks/gpu/train.sh lenet5 simple_cnn custom_vgg ...   (needs gpu-bundle/)
# The recipe (train's options) by environment: EPOCHS (70), PATIENCE (8), LR_SCHEDULE (plateau), AUGMENT (on), e.g.
# issue 24's custom_resnet: AUGMENT=0.5 LR_SCHEDULE=cosine EPOCHS=30 PATIENCE=30 OUT=... train.sh custom_resnet
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${OUT:?set OUT to the folder whose files come back}"
backend=${BACKEND:-jax}
site=gpu-bundle/site
if [ ! -d "$site/keras" ]; then
    pip install -q --no-index --no-deps --target "$site" gpu-bundle/wheels/*.whl
fi
export PYTHONPATH="$PWD/$site:$PWD${PYTHONPATH:+:$PYTHONPATH}" EDGE_EMNIST_DATA="$PWD/gpu-bundle/data"
python -c "import edge_emnist.keras3 as e, keras; print('keras', keras.__version__, 'backends', e.installed_backends())"
mkdir -p runs/gpu
for arch in "$@"; do
    run="runs/gpu/$arch-emnist-bymerge-$backend"
    options=()
    [ "$arch" = resnet50 ] && options+=(--channels 3)
    [ -f "$run/config.json" ] && options+=(--resume)  # a call cut short by its time limit goes on from its checkpoint
    python -m edge_emnist.cli train --arch "$arch" --dataset emnist-bymerge --backend "$backend" \
        --epochs "${EPOCHS:-70}" --patience "${PATIENCE:-8}" --lr-schedule "${LR_SCHEDULE:-plateau}" \
        --augment "${AUGMENT:-on}" --batch-size 256 \
        ${TRAIN_LIMIT:+--train-limit "$TRAIN_LIMIT"} "${options[@]}" --run-dir "$run" 2>&1 | tee -a "$run.log"
    # at most 8 files come back per call: this call's runs in one tar, each best.weights.h5 in 15 MiB pieces
    tar -rf "$OUT/runs.tar" --exclude=checkpoints --exclude=.lock --exclude='*.weights.h5' -C runs/gpu "$(basename "$run")" \
        "$(basename "$run").log"
    split -b 15M -d "$run/best.weights.h5" "$OUT/$(basename "$run").best.weights.h5.part"
done
ls -la "$OUT"
