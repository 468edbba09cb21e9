#!/usr/bin/env bash
# Runs each fuzz target for SECONDS (default 60) and prints its executions and crashes.
# Outside CI: see docs/fuzzing.md.
#
#   [FUZZ_SANITIZER=none] fuzz/run.sh [SECONDS] [TARGET...]
#
# The committed seeds (corpus/<target>/) are read, never written: what a run discovers goes to
# target/corpus/<target>/, crash inputs to artifacts/<target>/, full logs to target/logs/.
# Exits 1 when any target crashed.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
shift $(( $# > 0 ? 1 : 0 ))

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# cargo-fuzz passes unstable -Z flags (sanitizer, coverage options): the project's stable toolchain
# accepts them with RUSTC_BOOTSTRAP=1. FUZZ_TOOLCHAIN=nightly uses an installed nightly instead.
if [ -n "${FUZZ_TOOLCHAIN:-}" ]; then
  fuzz=(cargo "+$FUZZ_TOOLCHAIN" fuzz)
else
  export RUSTC_BOOTSTRAP=1
  fuzz=(cargo fuzz)
fi
# Optimised, with overflow checks and debug assertions (an overflow is a crash), AddressSanitizer
# unless FUZZ_SANITIZER says otherwise (`none` builds wasmtime for policy_limits in minutes, not
# an hour; the targets are safe Rust, so the sanitizer mostly guards the dependencies' unsafe code).
flags=(-O --debug-assertions --codegen-units 16 --sanitizer "${FUZZ_SANITIZER:-address}")

if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <("${fuzz[@]}" list); fi
# policy_limits needs the `policy` feature (pix-policy, hence wasmtime): built only when run.
for t in "${targets[@]}"; do if [ "$t" = policy_limits ]; then flags+=(--features policy); fi; done
"${fuzz[@]}" build "${flags[@]}"

mkdir -p target/logs
failed=0
printf '%-14s %12s %10s %8s %8s  %s\n' target executions exec/s corpus crashes artifacts
for t in "${targets[@]}"; do
  mkdir -p "target/corpus/$t" "artifacts/$t"
  log="target/logs/$t.log"
  dict=()
  [ -f "dicts/$t.dict" ] && dict=(-dict="dicts/$t.dict")
  seeds=()   # policy_limits has no committed seeds (see docs/fuzzing.md)
  [ -d "corpus/$t" ] && seeds=("corpus/$t")
  before=$(find "artifacts/$t" -type f | wc -l)
  status=0
  "${fuzz[@]}" run "${flags[@]}" "$t" "target/corpus/$t" "${seeds[@]}" -- \
    -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 "${dict[@]}" >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  corpus=$(find "target/corpus/$t" -type f | wc -l)
  crashes=$(( $(find "artifacts/$t" -type f | wc -l) - before ))
  if [ "$status" -ne 0 ]; then
    failed=1
    [ "$crashes" -gt 0 ] || crashes="?"   # a failure without an artifact: see the log
  fi
  printf '%-14s %12s %10s %8s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "$corpus" "$crashes" \
    "$( [ "$status" -ne 0 ] && echo "artifacts/$t/ (log: fuzz/$log)" )"
done
exit "$failed"
