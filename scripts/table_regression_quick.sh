#!/usr/bin/env bash
# Regression tables as a new user runs them: `generate --data X.csv --seed S` (the target
# is the last column; wine-red-quality's 6 grades need --task regression), then `eval
# --split test`, seeds 0-2, on CSVs written by scripts/regression_csvs.py from the tables
# issue 36 allows, beside same-run baselines on the same splits
# (xtask/examples/regression_baselines.rs). Usage: bash scripts/table_regression_quick.sh [dir]
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-target/table-regression-quick}
mkdir -p "$work"
python3 scripts/regression_csvs.py "$work/csv"
cargo build --release -q -p hyper-infer -p xtask --bin hyper-infer --example regression_baselines
for seed in 0 1 2; do
  for f in "$work"/csv/*.csv; do
    t=$(basename "$f" .csv)
    m="$work/model-$t-$seed"
    rm -rf "$m"
    s=$(date +%s.%N)
    target/release/hyper-infer generate --data "$f" --task regression --seed "$seed" --out "$m" \
      > "$m.generate.out" 2>&1
    e=$(date +%s.%N)
    printf '%s\tseed%s\tgenerate %.1fs\t%s\n' "$t" "$seed" "$(python3 -c "print($e-$s)")" \
      "$(target/release/hyper-infer eval --model "$m" --data "$f" --split test)"
  done
done
target/release/examples/regression_baselines "$work"/csv/*.csv
