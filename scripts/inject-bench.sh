#!/usr/bin/env bash
# What [inject] costs: a 100 KiB HTML page, gzip to the client, through injection vs the same
# page on a path inject.paths does not match (same Tether), and that unmatched page vs a Tether
# without [inject] at all. Interleaved rounds; median (min-max) of each; Tether's CPU per request.
# Two apps: a static page compressed once (like nginx's gzip_static; Tether runs with
# app_encoding = "gzip" and splices the tag into the app's gzip stream) and a page the app
# compresses per request (like a dynamic app's compression middleware; Tether asks for it plain
# and compresses it itself).
# Needs wrk: apt-get install -y wrk.  Usage: scripts/inject-bench.sh [rounds, 3] [seconds, 8]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/proxies.sh
source scripts/proxies.sh

ROUNDS=${1:-3}
DURATION=${2:-8}
command -v wrk >/dev/null || { echo "inject-bench: wrk not found (apt-get install wrk)" >&2; exit 2; }
cargo build --release --quiet --bin tether --example bench_backend
BIN=target/release
WORK=$(mktemp -d)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

"$BIN/examples/bench_backend" 127.0.0.1:18180 & PIDS+=($!)
tether_conf() { # NAME PORT INJECT_SECTION
  cat > "$WORK/$1.toml" <<TOML
[server]
listen = "127.0.0.1:0"
listen_plain = "127.0.0.1:$2"
admin_listen = "127.0.0.1:0"
[tls]
cert = "$WORK/$1.crt"
key = "$WORK/$1.key"
self_signed = true
[upstream]
url = "http://127.0.0.1:18180"
[log]
level = "warn"
access_log = false
$3
TOML
}
tether_conf plain 18181 ""
# The static site's Tether asks the app for gzip (app_encoding = "gzip": the app's file is
# compressed once, Tether splices the tag in); the dynamic app's asks for the page plain.
tether_conf inject 18182 '[inject]
enabled = true
paths = ["/inject"]
livechat = false
app_encoding = "gzip"
extra_html = "<script src=\"/widget.js\"></script>"'
tether_conf inject_dynamic 18183 '[inject]
enabled = true
paths = ["/inject"]
livechat = false
extra_html = "<script src=\"/widget.js\"></script>"'
"$BIN/tether" run --config "$WORK/plain.toml" & PIDS+=($!); PLAIN_PID=$!
"$BIN/tether" run --config "$WORK/inject.toml" & PIDS+=($!); INJECT_PID=$!
"$BIN/tether" run --config "$WORK/inject_dynamic.toml" & PIDS+=($!); DYNAMIC_PID=$!
for port in 18180 18181 18182 18183; do
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
done
# The injection really happens (and only where it should). Whole pages first: `grep -q` closing
# the pipe early would fail the pipeline under pipefail.
page() { curl -s -H 'Accept: text/html' -H 'Accept-Encoding: gzip' "http://127.0.0.1:18182$1" | gzip -d; }
[[ "$(page /inject/page.html)" == *'src="/widget.js"'* ]] \
  || { echo "inject-bench: /inject/page.html was not injected" >&2; exit 1; }
[[ "$(page /plain/page.html)" != *'widget.js'* ]] \
  || { echo "inject-bench: /plain/page.html was injected" >&2; exit 1; }

RESULTS="$WORK/results"
run() { # CASE URL PID
  local before out rps reqs
  before=$(ticks "$3")
  out=$(wrk -t2 -c32 -d"${DURATION}s" -H 'Accept: text/html,*/*;q=0.8' -H 'Sec-Fetch-Dest: document' \
    -H 'Accept-Encoding: gzip, deflate, br' "$2")
  rps=$(echo "$out" | awk '/Requests\/sec/ {print int($2)}')
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  echo "$1 $rps $(awk -v t=$(( $(ticks "$3") - before )) -v r="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t / hz * 1e6 / r }')" >> "$RESULTS"
}
for round in $(seq "$ROUNDS"); do
  run static_injected "http://127.0.0.1:18182/inject/page.html" $INJECT_PID
  run static_unmatched "http://127.0.0.1:18182/plain/page.html" $INJECT_PID
  run static_plain "http://127.0.0.1:18181/plain/page.html" $PLAIN_PID
  run dynamic_injected "http://127.0.0.1:18183/inject/dynamic/page.html" $DYNAMIC_PID
  run dynamic_unmatched "http://127.0.0.1:18183/plain/dynamic/page.html" $DYNAMIC_PID
  echo "round $round done" >&2
done

stats() { # CASE COLUMN -> "median min max"
  awk -v c="$1" -v k="$2" '$1 == c {print $k}' "$RESULTS" | median_min_max
}
echo
echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $ROUNDS interleaved rounds of ${DURATION}s, wrk -t2 -c32, plain HTTP/1.1"
echo "Page: 100 KiB HTML (gzip level 6 from the app: 9 KiB). Static: Tether asks the app for gzip and splices the tag in; dynamic: Tether asks for it plain, rewrites, gzips at level 1."
echo
echo "| case | req/s median (min-max) | Tether CPU µs/req | ratio | target |"
echo "|---|---:|---:|---:|---:|"
line() { # LABEL CASE BASE TARGET
  read -r r rmin rmax < <(stats "$2" 2); read -r c _ _ < <(stats "$2" 3); read -r b _ _ < <(stats "$3" 2)
  echo "| $1 | $r ($rmin-$rmax) | $c | $( [ "$2" = "$3" ] && echo - || ratio "$r" "$b") | $4 |"
}
line "static page, injected" static_injected static_unmatched ">= 0.7 of unmatched"
line "static page, not matched by paths" static_unmatched static_plain ">= 0.97 of no [inject]"
line "static page, Tether without [inject]" static_plain static_plain "-"
line "app compresses per request, injected" dynamic_injected dynamic_unmatched ">= 0.7 of unmatched"
line "app compresses per request, not matched" dynamic_unmatched dynamic_unmatched "-"
