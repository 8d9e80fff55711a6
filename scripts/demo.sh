#!/usr/bin/env bash
# The main job on a fresh clone: check and describe networks, compile one to PyTorch (verified
# against the analysis), draw them, and train a small CIFAR ResNet briefly on scikit-learn's
# bundled digits (a real data set that works offline). Everything is written under demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
out=demo
mkdir -p "$out"

step() { printf '\n== %s\n' "$*"; }

step "check every spec"
$bin/resdsl check specs/*.rd

step "describe CIFAR ResNet-110 and ResNet-50 (v1.5)"
$bin/resdsl info specs/cifar110.rd
$bin/resdsl info specs/resnet50.rd --set stride_at=middle

step "compile ResNet-152 and CIFAR ResNet-110 to standalone PyTorch, verified against the analysis"
$bin/resdsl compile specs/resnet152.rd --set stride_at=middle -o "$out/resnet152.py" --verify
$bin/resdsl compile specs/cifar110.rd -o "$out/cifar110.py" --verify

step "draw: ResNet-34 collapsed, a CIFAR block, and Figure 3 side by side"
if command -v dot >/dev/null; then
    $bin/resdsl viz specs/resnet34.rd -o "$out/resnet34.svg"
    $bin/resdsl viz specs/cifar20.rd --block conv3 -o "$out/cifar20_block.svg"
    $bin/resdsl viz specs/vgg19.rd specs/plain34.rd specs/resnet34.rd -o "$out/figure3.svg"
else
    echo "Graphviz's dot is missing (apt-get install graphviz): writing DOT sources instead"
    $bin/resdsl viz specs/resnet34.rd -o "$out/resnet34.dot"
fi

step "train a CIFAR ResNet-8 (cifar20.rd, n=1) briefly on scikit-learn's digits and plot its curves"
rm -rf "$out/digits-run"
$bin/resdsl train specs/cifar20.rd --dataset digits --set n=1 --set flip=false --set milestones=150 \
    --batch 64 --iterations 200 --eval-every 50 --out "$out/digits-run"
$bin/resdsl plot "$out/digits-run" -o "$out/digits-curves.png"
echo "demo: everything is in $out/"
