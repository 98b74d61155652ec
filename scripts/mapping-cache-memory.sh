#!/usr/bin/env bash
# A replica's resident memory while a million distinct users pass through its Redis store
# (the bounded read-through mapping cache). Needs redis-server on PATH.
# Usage: scripts/mapping-cache-memory.sh [USERS] [CAPACITY]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --example mapping_cache_memory
work="$(mktemp -d)"
port=$((20000 + RANDOM % 10000))
redis-server --port "$port" --save "" --appendonly no --dir "$work" \
  --daemonize yes --pidfile "$work/redis.pid" >/dev/null
trap 'kill "$(cat "$work/redis.pid")" 2>/dev/null; rm -rf "$work"' EXIT
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done
target/release/examples/mapping_cache_memory "redis://127.0.0.1:$port/0" "${1:-1000000}" "${2:-100000}"
