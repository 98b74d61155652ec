#!/usr/bin/env bash
# Faults under load, longer than the test suite's round: ROUNDS rounds (default 5) of every fault
# with WORKERS token clients (default 8), release build. Needs redis-server on PATH.
#
#   scripts/chaos.sh [ROUNDS] [WORKERS]
#
# Prints, per fault, what the clients saw (tokens issued and refused, plain requests passed and
# failed, requests lost with a killed process) and how long recovery took, then the mapping
# check: users, customers created at LiveChat, users with two customers (must be 0). Exits
# non-zero if any guarantee broke (see tests/chaos/main.rs for the list).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v redis-server >/dev/null || { echo "chaos.sh: needs redis-server (apt-get install redis-server)" >&2; exit 2; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
CHAOS_ROUNDS=${1:-5} CHAOS_WORKERS=${2:-8} CI=true \
    cargo test --release --test chaos -- --nocapture --test-threads=1 >"$out" 2>&1 || status=$?
grep -E '^\||^users|test result|panicked|assert' "$out" || tail -30 "$out"
exit "$status"
