#!/usr/bin/env bash
# An image task as a new user runs it: `generate --images DIR --seed S`, then `eval --split
# test`, seeds 0-2, on three folders no generator was meta-trained on
# (scripts/image_folders.py), beside same-run pixel logistic regression and a frozen-backbone
# probe (xtask/examples/image_probe.rs). Usage: bash scripts/image_unseen_quick.sh [work dir]
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-target/image-unseen-quick}
mkdir -p "$work"
[ -d "$work/folders/digits" ] || python3 scripts/image_folders.py "$work/folders"
cargo build --release -q -p hyper-infer -p xtask --bin hyper-infer --example image_probe
for seed in 0 1 2; do
  for t in digits fashion3 mnist-parity; do
    m="$work/model-$t-$seed"
    rm -rf "$m"
    s=$(date +%s.%N)
    target/release/hyper-infer generate --images "$work/folders/$t" --seed "$seed" --out "$m" \
      --json > "$m.generate.json" 2> "$m.generate.err"
    e=$(date +%s.%N)
    target/release/hyper-infer eval --model "$m" --images "$work/folders/$t" --split test --json |
      python3 scripts/quick_row.py \
      "$m.generate.json" "$t" "$seed" "$(python3 -c "print($e-$s)")"
  done
done
target/release/examples/image_probe "$work/folders/digits" "$work/folders/fashion3" "$work/folders/mnist-parity"
