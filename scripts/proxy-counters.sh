#!/usr/bin/env bash
# What one proxied request costs each proxy, in CPU instructions and cycles, user space and kernel
# apart: the steadiest figure this noisy machine gives (instructions hardly move between runs,
# cycles move with the host's load). Each proxy runs with one worker on core 0, wrk and the backend
# on core 1 (plain HTTP/1.1 keep-alive, wrk -t1 -c64), `perf stat` counts the proxy's processes
# while wrk runs, and the counts are divided by the requests wrk counted. Rounds are interleaved
# (Tether, nginx, haproxy, then the next round); cells are the median of the rounds.
#
#   scripts/proxy-counters.sh [ROUNDS] [SECONDS]      (defaults: 3 rounds of 6 s)
#
# TETHER_BIN=path runs another build of Tether in the same seat (an A/B against an older commit).
#
# Needs perf (linux-perf, with access to the CPU counters: root, or perf_event_paranoid <= 0),
# wrk, nginx, haproxy and openssl. Where the CPU exposes no counters (perf says "<not
# supported>", as in many virtual machines) the script says so and measures what it can
# instead: CPU time per request, user and kernel apart, from /proc/PID/stat.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/proxies.sh
source scripts/proxies.sh

ROUNDS=${1:-3}
DURATION=${2:-6}
for tool in perf wrk nginx haproxy openssl taskset; do
  command -v "$tool" >/dev/null || { echo "proxy-counters: $tool not found" >&2; exit 2; }
done
[ "$(nproc)" -ge 2 ] || { echo "proxy-counters: needs 2 cores" >&2; exit 2; }
cargo build --release --quiet --bin tether --example bench_backend
BIN=target/release
WORK=$(mktemp -d)
PIDS=()
trap 'stop_all; rm -rf "$WORK"' EXIT

write_certs "$WORK"

taskset -c 1 "$BIN/examples/bench_backend" 127.0.0.1:18080 >/dev/null 2>&1 & PIDS+=($!)
write_tether_conf "$WORK" 1 tether
write_tether_conf "$WORK" 1 hyper 18084 18446 19902
declare -A PROXY_PIDS PORT=([tether]=18081 [tether-hyper]=18084 [nginx]=18082 [haproxy]=18083)
taskset -c 0 "${TETHER_BIN:-$BIN/tether}" run --config "$WORK/tether-tether.toml" & PIDS+=($!); PROXY_PIDS[tether]=$!
taskset -c 0 "${TETHER_BIN:-$BIN/tether}" run --config "$WORK/tether-hyper.toml" & PIDS+=($!); PROXY_PIDS[tether-hyper]=$!
write_nginx_conf "$WORK" 1
taskset -c 0 nginx -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log" & PIDS+=($!); PROXY_PIDS[nginx]=$!
write_haproxy_cfg "$WORK" 1
taskset -c 0 haproxy -f "$WORK/haproxy.cfg" -q & PIDS+=($!); PROXY_PIDS[haproxy]=$!
for port in 18080 18081 18082 18083 18084; do wait_port $port; done
PROXY_PIDS[nginx]=$(nginx_pids "${PROXY_PIDS[nginx]}" 1 | tr ' ' ,)

RESULTS="$WORK/results"
: > "$RESULTS"
# Hardware counters, or CPU time where the CPU has none.
if perf stat -x, -e instructions:u true 2>&1 | grep -q "not supported"; then
  COUNTERS=0
  echo "proxy-counters: this CPU has no performance counters (perf stat: <not supported>);" \
    "measuring CPU time per request instead" >&2
else
  COUNTERS=1
fi
# user_kernel_ticks PID,PID...: "utime stime" of the listed processes, in clock ticks.
user_kernel_ticks() {
  local user=0 kernel=0 p
  for p in ${1//,/ }; do
    read -r u k < <(awk '{print $14, $15}' "/proc/$p/stat")
    user=$((user + u)); kernel=$((kernel + k))
  done
  echo "$user $kernel"
}
# cpu_time PROXY: one line "PROXY req/s user_us kernel_us all_us", per request.
cpu_time() {
  local who=$1 url="http://127.0.0.1:${PORT[$1]}/" before after
  before=$(user_kernel_ticks "${PROXY_PIDS[$who]}")
  taskset -c 1 wrk -t1 -c64 -d"${DURATION}s" "$url" > "$WORK/wrk.txt"
  after=$(user_kernel_ticks "${PROXY_PIDS[$who]}")
  local reqs rps
  reqs=$(awk '/requests in/ {print $1}' "$WORK/wrk.txt")
  rps=$(awk '/Requests\/sec/ {print int($2)}' "$WORK/wrk.txt")
  awk -v who="$who" -v reqs="$reqs" -v rps="$rps" -v hz="$(getconf CLK_TCK)" \
    -v b="$before" -v a="$after" 'BEGIN {
      split(b, x, " "); split(a, y, " ");
      u = (y[1] - x[1]) / hz * 1e6 / reqs; k = (y[2] - x[2]) / hz * 1e6 / reqs;
      printf "%s %d %.1f %.1f %.1f\n", who, rps, u, k, u + k }'
}
# count PROXY: one line "PROXY req/s user_instr kernel_instr user_cycles kernel_cycles all_cycles",
# the counts per request.
count() {
  local who=$1 url="http://127.0.0.1:${PORT[$1]}/"
  perf stat -x, -e instructions:u,instructions:k,cycles:u,cycles:k -p "${PROXY_PIDS[$who]}" \
    -o "$WORK/perf.txt" -- sleep "$DURATION" &
  local perf_pid=$!
  taskset -c 1 wrk -t1 -c64 -d"${DURATION}s" "$url" > "$WORK/wrk.txt"
  wait $perf_pid
  local reqs rps
  reqs=$(awk '/requests in/ {print $1}' "$WORK/wrk.txt")
  rps=$(awk '/Requests\/sec/ {print int($2)}' "$WORK/wrk.txt")
  awk -F, -v who="$who" -v reqs="$reqs" -v rps="$rps" '
    $1 ~ /^[0-9]+$/ {n[$3] = $1}
    END {printf "%s %d %.0f %.0f %.0f %.0f %.0f\n", who, rps, n["instructions:u"] / reqs,
      n["instructions:k"] / reqs, n["cycles:u"] / reqs, n["cycles:k"] / reqs,
      (n["cycles:u"] + n["cycles:k"]) / reqs}' "$WORK/perf.txt"
}
for who in tether tether-hyper nginx haproxy; do taskset -c 1 wrk -t1 -c64 -d2s "http://127.0.0.1:${PORT[$who]}/" >/dev/null; done
for round in $(seq "$ROUNDS"); do
  for who in tether tether-hyper nginx haproxy; do
    if [ "$COUNTERS" = 1 ]; then count "$who"; else cpu_time "$who"; fi >> "$RESULTS"
    echo "round $round $who done" >&2
  done
done

median() { awk -v p="$1" -v c="$2" '$1 == p {print $c}' "$RESULTS" | median_min_max | cut -d' ' -f1; }
echo
echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $ROUNDS interleaved rounds of ${DURATION}s"
echo "Pinned plain HTTP/1.1 (tether: http1_engine = \"tether\", tether-hyper: \"hyper\"; one proxy worker on core 0; wrk -t1 -c64 and the backend on core 1)."
echo "Per proxied request, median of the rounds."
echo
if [ "$COUNTERS" = 1 ]; then
  echo "| proxy | req/s | user instructions | kernel instructions | user cycles | kernel cycles | all cycles |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for who in tether tether-hyper nginx haproxy; do
    echo "| $who | $(median "$who" 2) | $(median "$who" 3) | $(median "$who" 4) | $(median "$who" 5) | $(median "$who" 6) | $(median "$who" 7) |"
  done
else
  echo "No performance counters on this CPU: CPU time per request (clock ticks of $(getconf CLK_TCK) Hz, so"
  echo "each cell is good to about 10 ms over the run, well under 1% at these request counts)."
  echo
  echo "| proxy | req/s | user µs | kernel µs | all µs |"
  echo "|---|---:|---:|---:|---:|"
  for who in tether tether-hyper nginx haproxy; do
    echo "| $who | $(median "$who" 2) | $(median "$who" 3) | $(median "$who" 4) | $(median "$who" 5) |"
  done
fi
