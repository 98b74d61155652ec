#!/usr/bin/env bash
# Tether against nginx and haproxy as plain reverse proxies, steadied for a noisy machine:
# the proxies take turns within each round (a, b, c, d for Tether with each HTTP/1.1 engine,
# nginx, haproxy, then the next round), and the table gives the median of the rounds with their spread (min-max).
#
# Two variants, in one run:
#   shared  every proxy with one worker per core; wrk and the backend share the same cores
#   pinned  every proxy with one worker on core 0; wrk and the backend on core 1 (taskset): how
#           much one core of proxy does, with less noise from the load generator
#
#   scripts/proxy-bench.sh [ROUNDS] [SECONDS]      (defaults: 3 rounds of 8 s per measurement)
#
# Scenarios: (a) HTTP/1.1 keep-alive, plain; (b) HTTPS HTTP/1.1; (c) HTTPS h2 (h2load); (d) p99
# latency of plain HTTP/1.1 at a fixed rate (RATE, default 5000 req/s over 16 connections, an
# open-loop client: examples/fixed_rate.rs). CPU per request is the proxy processes' utime+stime
# over the requests wrk counted. Needs wrk, h2load
# (nghttp2-client), nginx, haproxy and openssl (apt-get install wrk nghttp2-client nginx haproxy).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/proxies.sh
source scripts/proxies.sh

ROUNDS=${1:-3}
DURATION=${2:-8}
RATE=${RATE:-5000}
CORES=$(nproc)
for tool in wrk h2load nginx haproxy openssl taskset; do
  command -v "$tool" >/dev/null || { echo "proxy-bench: $tool not found (apt-get install wrk nghttp2-client nginx haproxy)" >&2; exit 2; }
done
[ "$CORES" -ge 2 ] || { echo "proxy-bench: the pinned variant needs 2 cores" >&2; exit 2; }
cargo build --release --quiet --bin tether --example bench_backend --example fixed_rate
BIN=target/release
WORK=$(mktemp -d)
PIDS=()
trap 'stop_all; rm -rf "$WORK"' EXIT

write_certs "$WORK"

# start VARIANT: the backend and the three proxies; PROXY_PIN / LOAD_PIN prefix their commands.
start() {
  local workers=$1 proxy_pin=$2 load_pin=$3
  $load_pin "$BIN/examples/bench_backend" 127.0.0.1:18080 >/dev/null 2>&1 & PIDS+=($!)
  write_tether_conf "$WORK" "$workers" tether
  $proxy_pin "$BIN/tether" run --config "$WORK/tether-tether.toml" & PIDS+=($!); PROXY_PIDS[tether]=$!
  write_tether_conf "$WORK" "$workers" hyper 18084 18446 19902
  $proxy_pin "$BIN/tether" run --config "$WORK/tether-hyper.toml" & PIDS+=($!); PROXY_PIDS[hyper]=$!
  write_nginx_conf "$WORK" $workers
  $proxy_pin nginx -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log" & PIDS+=($!); PROXY_PIDS[nginx]=$!
  write_haproxy_cfg "$WORK" $workers
  $proxy_pin haproxy -f "$WORK/haproxy.cfg" -q & PIDS+=($!); PROXY_PIDS[haproxy]=$!
  for port in 18080 18081 18082 18083 18084 18443 18444 18445 18446; do wait_port $port; done
  PROXY_PIDS[nginx]=$(nginx_pids "${PROXY_PIDS[nginx]}" "$workers")
}

# "REQ_PER_S CPU_US_PER_REQUEST" for one wrk run against URL, the proxy being PIDS.
wrk_run() {
  local pin=$1 threads=$2 url=$3; shift 3
  local before out
  before=$(ticks "$@")
  out=$($pin wrk -t"$threads" -c64 -d"${DURATION}s" "$url")
  echo "$out" | awk -v t=$(( $(ticks "$@") - before )) -v hz="$(getconf CLK_TCK)" '
    /Requests\/sec/ {rps = int($2)} /requests in/ {reqs = $1}
    END {printf "%d %.1f\n", rps, t / hz * 1e6 / reqs}'
}
h2_run() {
  local pin=$1 threads=$2 url=$3; shift 3
  local before out
  before=$(ticks "$@")
  out=$($pin h2load -c16 -m10 -t"$threads" -D "$DURATION" "$url" 2>/dev/null)
  echo "$out" | awk -v t=$(( $(ticks "$@") - before )) -v hz="$(getconf CLK_TCK)" '
    /finished in/ {gsub(",", ""); for (i = 1; i <= NF; i++) if ($i == "req/s") rps = int($(i-1))}
    /^requests:/ {reqs = $4}
    END {printf "%d %.1f\n", rps, t / hz * 1e6 / reqs}'
}

# "P99_MICROSECONDS" at RATE requests per second, open loop.
p99_run() {
  $1 "$BIN/examples/fixed_rate" "$2" "$RATE" "$DURATION" 16 | sed -n 's/.*p99_us=\([0-9]*\).*/\1/p'
}

declare -A PROXY_PIDS PORT_A=([tether]=18081 [hyper]=18084 [nginx]=18082 [haproxy]=18083) PORT_B=([tether]=18443 [hyper]=18446 [nginx]=18444 [haproxy]=18445)
RESULTS="$WORK/results"
: > "$RESULTS"
# measure VARIANT LOAD_PIN WRK_THREADS: ROUNDS interleaved rounds of (a), (b), (c).
measure() {
  local variant=$1 pin=$2 threads=$3
  for who in tether hyper nginx haproxy; do  # warm-up: pools, TLS session caches
    $pin wrk -t"$threads" -c64 -d2s "http://127.0.0.1:${PORT_A[$who]}/" >/dev/null
  done
  for round in $(seq "$ROUNDS"); do
    for who in tether hyper nginx haproxy; do
      echo "$variant a $who $(wrk_run "$pin" "$threads" "http://127.0.0.1:${PORT_A[$who]}/" ${PROXY_PIDS[$who]})" >> "$RESULTS"
      echo "$variant b $who $(wrk_run "$pin" "$threads" "https://localhost:${PORT_B[$who]}/" ${PROXY_PIDS[$who]})" >> "$RESULTS"
      echo "$variant c $who $(h2_run "$pin" "$threads" "https://127.0.0.1:${PORT_B[$who]}/" ${PROXY_PIDS[$who]})" >> "$RESULTS"
      echo "$variant d $who $(p99_run "$pin" "http://127.0.0.1:${PORT_A[$who]}/") 0" >> "$RESULTS"
      echo "round $round $variant $who done" >&2
    done
  done
}

start "$CORES" "" ""
measure shared "" 2
stop_all
start 1 "taskset -c 0" "taskset -c 1"
measure pinned "taskset -c 1" 1
stop_all

# stats VARIANT SCENARIO PROXY COLUMN: "median min max" of that column (4 = req/s, 5 = CPU µs).
stats() {
  awk -v v="$1" -v s="$2" -v p="$3" -v c="$4" '$1 == v && $2 == s && $3 == p {print $c}' "$RESULTS" |
    median_min_max
}
echo
echo "Machine: $CORES cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $ROUNDS interleaved rounds of ${DURATION}s"
echo "shared: workers=$CORES per proxy, wrk -t2 -c64 / h2load -t2 -c16 -m10 on the same cores;"
echo "pinned: one worker on core 0, wrk -t1 -c64 / h2load -t1 -c16 -m10 and the backend on core 1."
echo "(d): p99 µs at $RATE req/s, fixed_rate with 16 connections (lower is better; ratio Tether's over the other's)."
echo "Cells: median (min-max). Ratios: of medians (CPU: Tether's over the other's, lower is better)."
echo
echo "Tether: http1_engine = \"tether\" (its own HTTP/1.1 path); Tether-hyper: http1_engine = \"hyper\" (h2 is hyper's in both)."
echo
echo "| variant | scenario | Tether req/s | Tether-hyper req/s | nginx req/s | haproxy req/s | Tether/nginx | Tether/haproxy | Tether/Tether-hyper | CPU µs/req Tether / Tether-hyper / nginx / haproxy |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"
for variant in shared pinned; do
  for scenario in a b c d; do
    read -r t tmin tmax < <(stats $variant $scenario tether 4)
    read -r y ymin ymax < <(stats $variant $scenario hyper 4)
    read -r yc _ _ < <(stats $variant $scenario hyper 5)
    read -r n nmin nmax < <(stats $variant $scenario nginx 4)
    read -r h hmin hmax < <(stats $variant $scenario haproxy 4)
    read -r tc _ _ < <(stats $variant $scenario tether 5)
    read -r nc _ _ < <(stats $variant $scenario nginx 5)
    read -r hc _ _ < <(stats $variant $scenario haproxy 5)
    name=$(case $scenario in a) echo "(a) HTTP/1.1 plain";; b) echo "(b) HTTPS HTTP/1.1";; c) echo "(c) HTTPS h2";; d) echo "(d) p99 µs at $RATE req/s";; esac)
    cpu="$tc / $yc / $nc / $hc"
    [ "$scenario" = d ] && cpu="-"
    echo "| $variant | $name | $t ($tmin-$tmax) | $y ($ymin-$ymax) | $n ($nmin-$nmax) | $h ($hmin-$hmax) | $(ratio "$t" "$n") | $(ratio "$t" "$h") | $(ratio "$t" "$y") | $cpu |"
  done
done
