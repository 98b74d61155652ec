#!/usr/bin/env bash
# What asking the app who is logged in costs: LiveChat token requests for a cached user with
# [identity] source = "probe" (every request asks the app's probe_path first), next to plain
# pass-through GETs through the same Tether, HTTPS HTTP/1.1, interleaved rounds, median (min-max).
#
#   scripts/probe-bench.sh [ROUNDS] [SECONDS]      (defaults: 5 rounds of 5 s)
#
# TETHER_BIN=path runs another build (an A/B against an older commit). Needs wrk and openssl.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/proxies.sh
source scripts/proxies.sh

ROUNDS=${1:-5}
DURATION=${2:-5}
for tool in wrk openssl curl; do
  command -v "$tool" >/dev/null || { echo "probe-bench: $tool not found" >&2; exit 2; }
done
cargo build --release --quiet --bin tether --example bench_backend --example sandbox_accounts
BIN=target/release
WORK=$(mktemp -d)
PIDS=()
trap 'stop_all; rm -rf "$WORK"' EXIT
write_certs "$WORK"

"$BIN/examples/bench_backend" 127.0.0.1:18080 >/dev/null 2>&1 & PIDS+=($!)
"$BIN/examples/sandbox_accounts" 127.0.0.1:18090 2>/dev/null & PIDS+=($!)
cat > "$WORK/tether.toml" <<TOML
[server]
listen = "127.0.0.1:18443"
admin_listen = "127.0.0.1:19901"
[tls]
cert = "$WORK/cert.pem"
key = "$WORK/key.pem"
[upstream]
url = "http://127.0.0.1:18080"
[identity]
source = "probe"
[store]
kind = "memory"
$(livechat_sandbox_section 18090)
TOML
"${TETHER_BIN:-$BIN/tether}" run --config "$WORK/tether.toml" & PIDS+=($!); TETHER_PID=$!
for port in 18080 18090 18443; do wait_port $port; done

TOKEN=https://localhost:18443/.tether/livechat/token
status=$(curl -sk -o /dev/null -w '%{http_code}' -H "Cookie: session=bench-user" "$TOKEN")
[ "$status" = 200 ] || { echo "probe-bench: the token endpoint answered $status" >&2; exit 1; }

# run NAME URL [HEADER]: one line "NAME req/s CPU_us_per_request".
run() {
  local name=$1 url=$2 before out reqs rps
  shift 2
  before=$(ticks "$TETHER_PID")
  out=$(wrk -t2 -c64 -d"${DURATION}s" "$@" "$url")
  rps=$(echo "$out" | awk '/Requests\/sec/ {print int($2)}')
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  awk -v n="$name" -v r="$rps" -v q="$reqs" -v t=$(( $(ticks "$TETHER_PID") - before )) -v hz="$(getconf CLK_TCK)" \
    'BEGIN {printf "%s %d %.1f\n", n, r, t / hz * 1e6 / q}'
}
RESULTS="$WORK/results"
: > "$RESULTS"
wrk -t2 -c64 -d2s https://localhost:18443/ >/dev/null
for round in $(seq "$ROUNDS"); do
  run pass https://localhost:18443/ >> "$RESULTS"
  run probe "$TOKEN" -H "Cookie: session=bench-user" >> "$RESULTS"
  echo "round $round done" >&2
done
stats() { awk -v n="$1" -v c="$2" '$1 == n {print $c}' "$RESULTS" | median_min_max; }
read -r p pmin pmax < <(stats pass 2)
read -r t tmin tmax < <(stats probe 2)
read -r pc _ _ < <(stats pass 3)
read -r tc _ _ < <(stats probe 3)
echo
echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $ROUNDS interleaved rounds of ${DURATION}s, wrk -t2 -c64, HTTPS HTTP/1.1"
echo
echo "| request | req/s | Tether CPU µs/req | ratio to pass-through |"
echo "|---|---:|---:|---:|"
echo "| pass-through (GET / to the app) | $p ($pmin-$pmax) | $pc | 1.00 |"
echo "| LiveChat token, probe mode (asks the app each time) | $t ($tmin-$tmax) | $tc | $(ratio "$t" "$p") |"
