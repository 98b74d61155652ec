#!/usr/bin/env bash
# Tether against nginx and haproxy in front of the same backend, in one run, on this machine.
# Installs nothing: needs wrk, h2load (nghttp2-client), nginx, haproxy, redis-server and openssl
# on PATH:  apt-get install -y wrk nghttp2-client nginx haproxy redis-server
# Usage: scripts/bench.sh [seconds per run, default 10]   (ends with scripts/inject-bench.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/proxies.sh
source scripts/proxies.sh

DURATION=${1:-10}
CONNS=64
RATE=${RATE:-5000}
THREADS=$(nproc)
for tool in wrk h2load nginx haproxy redis-server openssl; do
  command -v "$tool" >/dev/null || { echo "bench: $tool not found (apt-get install wrk nghttp2-client nginx haproxy redis-server)" >&2; exit 2; }
done
cargo build --release --quiet --bin tether --example bench_backend --example fixed_rate \
  --example sandbox_accounts --example store_load --example rs256_rate --example code_exchange --example first_login
BIN=target/release
WORK=$(mktemp -d)
PIDS=()
cleanup() { stop_all; rm -rf "$WORK"; }
trap cleanup EXIT

# Ports: backend 18080; plain 18081 tether, 18082 nginx, 18083 haproxy; TLS 18443 / 18444 / 18445.
write_certs "$WORK"

"$BIN/examples/bench_backend" 127.0.0.1:18080 & PIDS+=($!)
# One sandbox accounts server per token-serving Tether: the sandbox rotates the agent refresh
# token like LiveChat may, and two instances sharing one would lock each other out (sharing it
# between replicas is what the Redis store is for).
"$BIN/examples/sandbox_accounts" 127.0.0.1:18090 2>/dev/null & PIDS+=($!)
"$BIN/examples/sandbox_accounts" 127.0.0.1:18091 2>/dev/null & PIDS+=($!)
"$BIN/examples/sandbox_accounts" 127.0.0.1:18092 2>/dev/null & PIDS+=($!)
"$BIN/examples/sandbox_accounts" 127.0.0.1:18093 2>/dev/null & PIDS+=($!)
# Redis as a replica set would use it: every write fsynced before it is acknowledged, like the
# embedded store's commits.
mkdir -p "$WORK/redis"
redis-server --port 18379 --bind 127.0.0.1 --save "" --appendonly yes --appendfsync always \
  --dir "$WORK/redis" >/dev/null & PIDS+=($!)

write_tether_conf "$WORK" "$THREADS"
"$BIN/tether" run --config "$WORK/tether-tether.toml" & PIDS+=($!); TETHER_PID=$!

# Tethers serving identity endpoints: NAME PORT ADMIN ACCOUNTS_PORT IDENTITY_SOURCE STORE_KIND
# [liveperson]. LiveChat against its own sandbox accounts server; LivePerson optional.
token_tether() {
  local name=$1 port=$2 admin=$3 accounts=$4 source=$5 store=$6 liveperson=${7:-}
  cat > "$WORK/tether-$name.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
admin_listen = "127.0.0.1:$admin"
worker_threads = $THREADS
trusted_proxies = ["127.0.0.1/32"]
[tls]
cert = "$WORK/cert.pem"
key = "$WORK/key.pem"
[upstream]
url = "http://127.0.0.1:18080"
[identity]
source = "$source"
[store]
kind = "$store"
path = "$WORK/tether-$name.db"
url = "redis://127.0.0.1:18379/0"
$(livechat_sandbox_section "$accounts")
TOML
  if [ -n "$liveperson" ]; then
    cat >> "$WORK/tether-$name.toml" <<TOML
[liveperson]
enabled = true
client_id = "bench-client"
client_secret = "bench-secret-0123456789"
signing_key = "$WORK/liveperson.pem"
TOML
  fi
  "$BIN/tether" run --config "$WORK/tether-$name.toml" & PIDS+=($!)
}
# LiveChat tokens and LivePerson id_tokens (in-memory store): one Tether asking the app who is
# logged in (probe), one trusting a gateway's header.
"$BIN/tether" liveperson-key --generate "$WORK/liveperson.pem" >/dev/null 2>&1
token_tether probe 18446 19902 18090 probe memory liveperson
token_tether header 18447 19903 18091 header memory liveperson
# Two more, identical but for the store: the embedded file store (one replica) and Redis (several).
token_tether file 18448 19904 18092 header file
token_tether redis 18449 19905 18093 header redis

write_nginx_conf "$WORK" $THREADS
nginx -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log" & PIDS+=($!); NGINX_PID=$!

write_haproxy_cfg "$WORK" $THREADS
haproxy -f "$WORK/haproxy.cfg" -q & PIDS+=($!); HAPROXY_PID=$!

for port in 18080 18081 18082 18083 18090 18091 18092 18093 18379 18443 18444 18445 18446 18447 18448 18449; do
  wait_port $port
done

# "REQ_PER_S CPU_US_PER_REQUEST": throughput, and the proxy's CPU per request (steadier than
# req/s on a shared machine, where the load generator and backend compete for the same cores).
wrk_rps() {
  local url=$1; shift
  local before out reqs secs rps
  before=$(ticks "$@")
  out=$(wrk -t2 -c$CONNS -d"${DURATION}s" "$url")
  rps=$(echo "$out" | awk '/Requests\/sec/ {print int($2)}')
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  if [ $# -gt 0 ]; then
    echo "$rps $(awk -v t=$(( $(ticks "$@") - before )) -v r="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t / hz * 1e6 / r }')"
  else
    echo "$rps -"
  fi
}
h2_rps() { h2load -c16 -m10 -t2 -D "$DURATION" "$1" 2>/dev/null | awk '/finished in/ {gsub(",", ""); for (i=1;i<=NF;i++) if ($i=="req/s") print int($(i-1))}'; }
latency() { "$BIN/examples/fixed_rate" "$1" "$RATE" "$DURATION" 16; }

declare -A R
echo "warming up..." >&2
wrk -t2 -c$CONNS -d2s http://127.0.0.1:18081/ >/dev/null; wrk -t2 -c$CONNS -d2s http://127.0.0.1:18082/ >/dev/null
NGINX_PIDS=$(nginx_pids "$NGINX_PID" "$THREADS")
declare -A P=([direct]="" [tether]="$TETHER_PID" [nginx]="$NGINX_PIDS" [haproxy]="$HAPROXY_PID")
for who in direct:18080 tether:18081 nginx:18082 haproxy:18083; do
  name=${who%%:*}
  read -r R[a_$name] R[acpu_$name] < <(wrk_rps "http://127.0.0.1:${who##*:}/" ${P[$name]})
done
for who in tether:18443 nginx:18444 haproxy:18445; do
  name=${who%%:*}
  read -r R[b_$name] R[bcpu_$name] < <(wrk_rps "https://localhost:${who##*:}/" ${P[$name]})
  R[c_$name]=$(h2_rps "https://127.0.0.1:${who##*:}/")
done
for who in direct:18080 tether:18081 nginx:18082 haproxy:18083; do
  R[d_${who%%:*}]=$(latency "http://127.0.0.1:${who##*:}/")
done

# (e) LiveChat token requests for a cached user, next to plain pass-through through Tether.
TOKEN=/.tether/livechat/token
read -r R[e_pass] _ < <(wrk_rps "https://localhost:18443/")
read -r R[e_probe] _ < <(wrk -t2 -c$CONNS -d"${DURATION}s" -H "Cookie: session=bench-user" "https://localhost:18446$TOKEN" | awk '/Requests\/sec/ {print int($2)}'; echo)
read -r R[e_header] _ < <(wrk -t2 -c$CONNS -d"${DURATION}s" -H "X-Authenticated-User: bench-user" "https://localhost:18447$TOKEN" | awk '/Requests\/sec/ {print int($2)}'; echo)
for port in 18446 18447; do
  status=$(curl -sk -o /dev/null -w '%{http_code}' -H "Cookie: session=bench-user" -H "X-Authenticated-User: bench-user" "https://localhost:$port$TOKEN")
  [ "$status" = 200 ] || { echo "bench: token endpoint on $port answered $status" >&2; exit 1; }
done
calls() { curl -s "http://127.0.0.1:$1/sandbox/state" | python3 -c 'import json,sys; print(json.load(sys.stdin)["customer_token_calls"])'; }
R[e_calls]="probe instance $(calls 18090), header instance $(calls 18091)"
# (g) LivePerson: the Implicit Flow JWT for a cached user, RS256 speed on one core, and the code
# exchange LivePerson's server waits on.
JWT=/.tether/liveperson/token
read -r R[g_probe] _ < <(wrk -t2 -c$CONNS -d"${DURATION}s" -H "Cookie: session=bench-user" "https://localhost:18446$JWT" | awk '/Requests\/sec/ {print int($2)}'; echo)
read -r R[g_header] _ < <(wrk -t2 -c$CONNS -d"${DURATION}s" -H "X-Authenticated-User: bench-user" "https://localhost:18447$JWT" | awk '/Requests\/sec/ {print int($2)}'; echo)
for port in 18446 18447; do
  status=$(curl -sk -o /dev/null -w '%{http_code}' -H "Cookie: session=bench-user" -H "X-Authenticated-User: bench-user" "https://localhost:$port$JWT")
  [ "$status" = 200 ] || { echo "bench: JWT endpoint on $port answered $status" >&2; exit 1; }
done
signed() { curl -s "http://127.0.0.1:$1/metrics" | awk '/^tether_liveperson_tokens_signed_total/ {print $2}'; }
R[g_signed]="probe instance $(signed 19902), header instance $(signed 19903)"
R[g_rs256]=$("$BIN/examples/rs256_rate" 3)
R[g_exchange]=$("$BIN/examples/code_exchange" https://localhost:18447 bench-client bench-secret-0123456789 5000)
# (h) the Redis store against the embedded store: a cached user's token, and first logins.
for kind in file:18448 redis:18449; do
  name=${kind%%:*}; port=${kind##*:}
  status=$(curl -sk -o /dev/null -w '%{http_code}' -H "X-Authenticated-User: bench-user" "https://localhost:$port$TOKEN")
  [ "$status" = 200 ] || { echo "bench: token endpoint on $port ($name store) answered $status" >&2; exit 1; }
  read -r R[h_$name] _ < <(wrk -t2 -c$CONNS -d"${DURATION}s" -H "X-Authenticated-User: bench-user" "https://localhost:$port$TOKEN" | awk '/Requests\/sec/ {print int($2)}'; echo)
  R[h_first_$name]=$("$BIN/examples/first_login" "https://localhost:$port" 2000 4)
done
# (f) the durable store's start-up load.
R[f_load]=$("$BIN/examples/store_load" 1000000 2>/dev/null)

field() { echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {print $2}'; }
echo
echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "Each run ${DURATION}s; wrk -t2 -c$CONNS; h2load -c16 -m10 -t2; fixed rate $RATE req/s over 16 connections."
echo "Tether worker_threads=$THREADS, nginx worker_processes=$THREADS, haproxy nbthread=$THREADS; access logs off."
echo
echo "| scenario | direct | Tether | nginx | haproxy | Tether/nginx | Tether/haproxy | Tether/direct |"
echo "|---|---|---|---|---|---|---|---|"
echo "| (a) HTTP/1.1 keep-alive, plain (req/s) | ${R[a_direct]} | ${R[a_tether]} | ${R[a_nginx]} | ${R[a_haproxy]} | $(ratio ${R[a_tether]} ${R[a_nginx]}) | $(ratio ${R[a_tether]} ${R[a_haproxy]}) | $(ratio ${R[a_tether]} ${R[a_direct]}) |"
echo "| (a) proxy CPU µs per request (lower is better) | - | ${R[acpu_tether]} | ${R[acpu_nginx]} | ${R[acpu_haproxy]} | $(ratio ${R[acpu_tether]} ${R[acpu_nginx]}) | $(ratio ${R[acpu_tether]} ${R[acpu_haproxy]}) | - |"
echo "| (b) HTTPS HTTP/1.1 (req/s) | - | ${R[b_tether]} | ${R[b_nginx]} | ${R[b_haproxy]} | $(ratio ${R[b_tether]} ${R[b_nginx]}) | $(ratio ${R[b_tether]} ${R[b_haproxy]}) | - |"
echo "| (b) proxy CPU µs per request (lower is better) | - | ${R[bcpu_tether]} | ${R[bcpu_nginx]} | ${R[bcpu_haproxy]} | $(ratio ${R[bcpu_tether]} ${R[bcpu_nginx]}) | $(ratio ${R[bcpu_tether]} ${R[bcpu_haproxy]}) | - |"
echo "| (c) HTTPS h2 (req/s) | - | ${R[c_tether]} | ${R[c_nginx]} | ${R[c_haproxy]} | $(ratio ${R[c_tether]} ${R[c_nginx]}) | $(ratio ${R[c_tether]} ${R[c_haproxy]}) | - |"
for q in p50_us p99_us; do
  d=$(field "${R[d_direct]}" $q); t=$(field "${R[d_tether]}" $q); n=$(field "${R[d_nginx]}" $q); h=$(field "${R[d_haproxy]}" $q)
  echo "| (d) $q at $RATE req/s (lower is better) | $d | $t | $n | $h | $(ratio $t $n) | $(ratio $t $h) | $(ratio $t $d) |"
done

echo
echo "| LiveChat token endpoint, cached user, HTTPS HTTP/1.1 | req/s | ratio to pass-through | target |"
echo "|---|---|---|---|"
echo "| pass-through (GET / to the app) | ${R[e_pass]} | 1.00 | - |"
echo "| token, probe mode (asks the app each time) | ${R[e_probe]} | $(ratio ${R[e_probe]} ${R[e_pass]}) | >= 0.8 |"
echo "| token, header mode (trusted gateway) | ${R[e_header]} | $(ratio ${R[e_header]} ${R[e_pass]}) | >= 1.5 |"
echo
echo "LiveChat customer-token calls during the token runs: ${R[e_calls]} (expected 1 each: one user, one token lifetime)."
echo "Durable store start-up: ${R[f_load]} (target: 1000000 mappings in under 2 s)."
echo
echo "| LivePerson JWT endpoint, cached user, HTTPS HTTP/1.1 | req/s | ratio to pass-through | target |"
echo "|---|---|---|---|"
echo "| pass-through (GET / to the app) | ${R[e_pass]} | 1.00 | - |"
echo "| JWT, probe mode | ${R[g_probe]} | $(ratio ${R[g_probe]} ${R[e_pass]}) | >= 0.8 |"
echo "| JWT, header mode | ${R[g_header]} | $(ratio ${R[g_header]} ${R[e_pass]}) | - |"
echo
echo "id_tokens signed during the JWT runs: ${R[g_signed]} (the rest were served from the cache)."
echo "RS256 on one core (2048-bit key): ${R[g_rs256]}."
echo "Code exchange (POST /oauth/token, sequential, keep-alive HTTPS): ${R[g_exchange]} (target: p99 under 2000 µs)."
echo
echo "| LiveChat token endpoint, header mode, by store | embedded file | Redis | Redis/file | target |"
echo "|---|---|---|---|---|"
echo "| cached user (req/s) | ${R[h_file]} | ${R[h_redis]} | $(ratio ${R[h_redis]} ${R[h_file]}) | >= 0.9 |"
for q in p50_us p99_us max_us; do
  f=$(field "${R[h_first_file]}" $q); r=$(field "${R[h_first_redis]}" $q)
  echo "| first login $q (4 clients, 2000 new users) | $f | $r | $(ratio $r $f) | reported |"
done

# [inject]: a 100 KiB page through injection vs not matched, and not matched vs no [inject]
# (its own Tethers and backend on other ports, after everything above has stopped using the CPU).
echo
echo "### [inject] (scripts/inject-bench.sh 3 $DURATION)"
scripts/inject-bench.sh 3 "$DURATION" 2>/dev/null
