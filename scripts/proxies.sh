# Shared by scripts/bench.sh and scripts/proxy-bench.sh (sourced, not run): the nginx and haproxy
# configurations Tether is compared with, and the proxies' CPU time. Both proxies listen on
# 18082/18444 (nginx) and 18083/18445 (haproxy), plain and TLS, in front of the backend on 18080,
# with keep-alive to it and access logs off, like Tether.

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
