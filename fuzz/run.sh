#!/usr/bin/env bash
# Runs every fuzz target for a bounded time, starting from the committed
# seeds: `fuzz/run.sh [seconds per target, default 60] [target ...]`.
# New inputs collect in fuzz/corpus/ (not committed); a crash stops the run
# with the input that caused it under fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --version 0.13.2 --locked
# cargo fuzz passes sanitizer flags that only nightly accepts; this machine
# has one stable toolchain, which accepts them with RUSTC_BOOTSTRAP.
export RUSTC_BOOTSTRAP=1
cd fuzz
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi
cargo fuzz build -O
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "seeds/$target"
  started=$SECONDS
  cargo fuzz run -O "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -timeout=10 -print_final_stats=1 \
    2>&1 | grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|==|SUMMARY|Done)" || true
  echo "fuzz: target=$target seconds=$((SECONDS - started))"
done
