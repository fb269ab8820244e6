#!/usr/bin/env bash
# On the workstation: put what a bare GPU machine (JAX or PyTorch with CUDA, no TensorFlow, no network) needs to
# train with `edge-emnist train` into gpu-bundle/ (git-ignored), in pieces small enough to travel one per call:
#   gpu-bundle/wheels/   Keras 3 and the few pure-Python packages the training path imports, for Python 3.12
#   gpu-bundle/data/     emnist-dev bymerge (IDX, as in ../shared/data/emnist-dev)
# Usage: bash benchmarks/gpu/prepare.sh [DATA_DIR] [PYTHON_VERSION]     (defaults: ../shared/data/emnist-dev, 3.12)
set -euo pipefail
cd "$(dirname "$0")/../.."
data_dir=${1:-../shared/data/emnist-dev}
python_version=${2:-3.12}
out=gpu-bundle
mkdir -p "$out/wheels" "$out/data/emnist-dev"

# Keras 3 and what it needs beyond numpy/jax/torch (which the GPU machine has); tqdm for the data loader.
pip download -q --no-deps --only-binary=:all: --python-version "$python_version" \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    -d "$out/wheels" "keras==$(python -c 'from importlib.metadata import version; print(version("keras"))')" namex optree tqdm \
    absl-py rich markdown-it-py mdurl pygments h5py ml-dtypes

cp "$data_dir"/emnist-bymerge-* "$data_dir"/SHA256SUMS "$out/data/emnist-dev/"
(cd "$out" && find . -type f ! -name SHA256SUMS.bundle -print0 | sort -z | xargs -0 sha256sum > SHA256SUMS.bundle)
du -sh "$out"/* && echo "tracked tree: $(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1) bytes"
