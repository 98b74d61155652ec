#!/usr/bin/env bash
# Times the store commands on N mappings (default 1,000,000): export from the embedded store,
# import into Redis, export from Redis, import into a new embedded store, and a backup; with the
# peak memory of each command. Needs redis-server on PATH. Usage: scripts/store-bench.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000000}"
cargo build --release --quiet --bin tether --example store_load
bin=target/release/tether
work="$(mktemp -d)"
port=$((20000 + RANDOM % 10000))
redis-server --port "$port" --save "" --appendonly yes --appendfsync always --dir "$work" \
  --daemonize yes --pidfile "$work/redis.pid" >/dev/null
trap 'kill "$(cat "$work/redis.pid")" 2>/dev/null; rm -rf "$work"' EXIT
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done

config() { # name, store lines
  printf '[upstream]\nurl = "http://127.0.0.1:1"\n[store]\n%s\n' "$2" > "$work/$1.toml"
}
config file "kind = \"file\"
path = \"$work/first.db\""
config redis "kind = \"redis\"
url = \"redis://127.0.0.1:$port/0\""
config last "kind = \"file\"
path = \"$work/last.db\""

target/release/examples/store_load "$n" "$work/first.db"
step() { # label, command...
  local label="$1"; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" 2>"$work/err" || { cat "$work/err"; exit 1; }
  read -r seconds kib < "$work/time"
  printf '%-32s %8.1f s %10.0f rows/s %8d MiB peak RSS\n' "$label" "$seconds" \
    "$(echo "$n / $seconds" | bc -l)" "$((kib / 1024))"
}
echo "$n mappings on $(nproc) cores ($(uname -m)):"
step "export (embedded store)" sh -c "$bin store export --config $work/file.toml > $work/a.jsonl"
step "import into Redis" $bin store import --config "$work/redis.toml" "$work/a.jsonl"
step "import into Redis again (no-op)" $bin store import --config "$work/redis.toml" "$work/a.jsonl"
step "export (Redis)" sh -c "$bin store export --config $work/redis.toml > $work/b.jsonl"
step "import into a new embedded store" $bin store import --config "$work/last.toml" "$work/b.jsonl"
step "backup (embedded store)" $bin store backup --config "$work/file.toml" "$work/backup.db"
cmp <(sort "$work/a.jsonl") <(sort "$work/b.jsonl") && echo "round trip: identical"
