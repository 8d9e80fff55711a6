#!/usr/bin/env bash
# The main job on a fresh clone: check and describe a network, then (as the features land)
# compile it to PyTorch, draw it and train it briefly on a data set that works offline.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
out=demo
mkdir -p "$out"

$bin/resdsl check specs/*.rd
$bin/resdsl info specs/cifar110.rd
$bin/resdsl info specs/resnet50.rd --set stride_at=middle
