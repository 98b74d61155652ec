# Shared by the benchmark scripts (sourced, not run): the nginx and haproxy configurations Tether
# is compared with, Tether's own, the certificates, the proxies' CPU time, starting and stopping
# processes, and the medians and ratios of the tables. nginx listens on 18082/18444 and haproxy on
# 18083/18445 (plain and TLS), in front of the backend on 18080, with keep-alive to it and access
# logs off, like Tether.

# write_nginx_conf WORK WORKERS: $WORK/nginx.conf (needs $WORK/cert.pem and key.pem).
write_nginx_conf() {
  local work=$1 workers=$2
  cat > "$work/nginx.conf" <<NGINX
worker_processes $workers;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
daemon off;
events { worker_connections 4096; }
http {
  access_log off;
  upstream app { server 127.0.0.1:18080; keepalive 128; }
  server {
    listen 127.0.0.1:18082;
    listen 127.0.0.1:18444 ssl http2;
    ssl_certificate $work/cert.pem;
    ssl_certificate_key $work/key.pem;
    keepalive_requests 1000000;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_set_header X-Forwarded-Proto \$scheme;
    }
  }
}
NGINX
}

# write_haproxy_cfg WORK WORKERS: $WORK/haproxy.cfg (needs $WORK/haproxy.pem).
write_haproxy_cfg() {
  local work=$1 workers=$2
  cat > "$work/haproxy.cfg" <<HAPROXY
global
  nbthread $workers
  maxconn 4000
defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend plain
  bind 127.0.0.1:18083
  bind 127.0.0.1:18445 ssl crt $work/haproxy.pem alpn h2,http/1.1
  option forwardfor
  default_backend app
backend app
  server app 127.0.0.1:18080
HAPROXY
}

# ticks PID...: CPU time (utime + stime) the listed processes used, in clock ticks.
ticks() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }

# write_certs WORK: a throwaway P-256 certificate for localhost and 127.0.0.1 ($WORK/cert.pem,
# key.pem) and the same pair as haproxy reads it ($WORK/haproxy.pem).
write_certs() {
  local work=$1
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
  cat "$work/cert.pem" "$work/key.pem" > "$work/haproxy.pem"
}

# write_tether_conf WORK WORKERS [ENGINE [PLAIN TLS ADMIN]]: $WORK/tether-ENGINE.toml, Tether as a
# plain proxy in front of the backend on 18080 with the given HTTP/1.1 engine (default "tether"
# on 18081/18443, admin 19901), access log off like the others.
write_tether_conf() {
  local work=$1 workers=$2 engine=${3:-tether} plain=${4:-18081} tls=${5:-18443} admin=${6:-19901}
  cat > "$work/tether-$engine.toml" <<TOML
[server]
listen = "127.0.0.1:$tls"
listen_plain = "127.0.0.1:$plain"
admin_listen = "127.0.0.1:$admin"
worker_threads = $workers
http1_engine = "$engine"
[tls]
cert = "$work/cert.pem"
key = "$work/key.pem"
[upstream]
url = "http://127.0.0.1:18080"
[log]
level = "warn"
access_log = false
TOML
}

# livechat_sandbox_section ACCOUNTS_PORT: the [livechat] and [log] sections of a Tether whose
# LiveChat is the sandbox accounts server (examples/sandbox_accounts) on that port.
livechat_sandbox_section() {
  cat <<TOML
[livechat]
enabled = true
license_id = 1
organization_id = "00000000-0000-4000-8000-00000000c0de"
client_id = "sandbox-client"
client_secret = "sandbox-secret"
refresh_token = "sandbox-refresh-0"
accounts_url = "http://127.0.0.1:$1"
api_url = "http://127.0.0.1:$1"
sync_customer_profile = false
[log]
level = "warn"
access_log = false
TOML
}

# wait_port PORT: until something accepts on 127.0.0.1:PORT (10 s at most).
wait_port() {
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return; sleep 0.1; done
  echo "$(basename "$0"): port $1 never opened" >&2
  exit 1
}

# stop_all: kills the processes in the PIDS array and waits for them.
stop_all() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  PIDS=()
}

# nginx_pids MASTER WORKERS: the master's and its workers' PIDs, space-separated, once all WORKERS
# worker processes exist (they serve the requests, so their CPU time is what counts).
nginx_pids() {
  local master=$1 workers=$2
  for _ in $(seq 100); do
    [ "$(pgrep -c -P "$master")" -ge "$workers" ] && break
    sleep 0.1
  done
  echo "$master $(pgrep -P "$master" | xargs)"
}

# median_min_max: "median min max" of the numbers on standard input, one per line.
median_min_max() { sort -n | awk '{a[NR] = $1} END {printf "%s %s %s\n", a[int((NR + 1) / 2)], a[1], a[NR]}'; }

# ratio A B: A / B to two decimals, "-" when B is 0.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
