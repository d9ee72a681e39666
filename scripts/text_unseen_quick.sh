#!/usr/bin/env bash
# A user's text task as a new user runs it: `generate --data X.csv --text-column text
# --target label --seed S`, then `eval --split test`, seeds 0-2, on three CSVs derived from
# GLUE (scripts/glue_text_csvs.py), beside the same-run frozen-encoder probe
# (xtask/examples/text_probe.rs). Usage: bash scripts/text_unseen_quick.sh [work dir]
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-target/text-unseen-quick}
mkdir -p "$work"
python3 scripts/glue_text_csvs.py "$work"
cargo build --release -q -p hyper-infer -p xtask --bin hyper-infer --example text_probe
for seed in 0 1 2; do
  for t in sst2 cola source4; do
    m="$work/model-$t-$seed"
    rm -rf "$m"
    s=$(date +%s.%N)
    target/release/hyper-infer generate --data "$work/$t.csv" --text-column text --target label \
      --seed "$seed" --out "$m" --json > "$m.generate.json" 2> "$m.generate.err"
    e=$(date +%s.%N)
    target/release/hyper-infer eval --model "$m" --data "$work/$t.csv" --split test --json |
      python3 scripts/quick_row.py \
      "$m.generate.json" "$t" "$seed" "$(python3 -c "print($e-$s)")"
  done
done
target/release/examples/text_probe "$work/sst2.csv" "$work/cola.csv" "$work/source4.csv"
