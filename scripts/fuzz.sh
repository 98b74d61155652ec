#!/usr/bin/env bash
# Fuzzes Tether's parsers with cargo-fuzz (libFuzzer, nightly toolchain), each target for SECONDS
# (default 60), starting from the seed corpora in tests/fuzz/corpus. The properties checked are
# those of tests/properties/checks.rs and, for `engines`, tests/properties/differential.rs (the
# two HTTP/1.1 engines agree); the proptest suite runs the same ones in `cargo test`. `splice`
# feeds any bytes to the gzip splicer (the property is in its target).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# New inputs found go to a scratch corpus (not the committed seeds); a crash leaves its input in
# tests/fuzz/artifacts/TARGET/ and this script exits 1. It ends with a table: executions and
# crashes per target.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
all=(reserved_prefix identity_headers request_framing oauth_params accounts_answer config_load engines splice)
targets=("${@:-${all[@]}}")

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz.sh: needs the nightly toolchain (rustup toolchain install nightly)" >&2
    exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install --locked cargo-fuzz
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
echo "== building the fuzz targets" >&2
    cargo +nightly fuzz build --fuzz-dir tests/fuzz

failed=0
printf '%-18s %12s %10s %8s\n' target executions exec/s crashes > "$scratch/table"
for target in "${targets[@]}"; do
    mkdir -p "$scratch/$target"
    log="$scratch/$target.log"
    echo "== $target (${seconds}s)" >&2
    status=0
    extra=()
    # The engines target keeps its two Tethers and app running for the whole process (starting
    # them per input would be most of the work): what LeakSanitizer would call leaks.
    leaks=1
    [ "$target" = engines ] && extra=(-detect_leaks=0) && leaks=0
    ASAN_OPTIONS="detect_leaks=$leaks" cargo +nightly fuzz run --fuzz-dir tests/fuzz "$target" "$scratch/$target" \
        "tests/fuzz/corpus/$target" -- -max_total_time="$seconds" -print_final_stats=1 \
        "${extra[@]}" >"$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    crashes=0
    if [ "$status" -ne 0 ]; then
        crashes=1
        failed=1
        grep -E 'panicked|ERROR|error\[|Test unit written' "$log" | head -8 >&2 || tail -20 "$log" >&2
    fi
    printf '%-18s %12s %10s %8s\n' "$target" "${runs:-?}" "${rate:-?}" "$crashes" >> "$scratch/table"
done
cat "$scratch/table"
exit "$failed"
