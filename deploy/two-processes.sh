#!/usr/bin/env bash
# Bring up (or down) the scaled-out deployment of docs/operators.md on one machine:
# two stopcsam ASGI processes on 127.0.0.1:8001/8002 behind nginx on 127.0.0.1:8080,
# with PostgreSQL and Redis on 127.0.0.1.
#
#   DATABASE_URL=... REDIS_URL=... deploy/two-processes.sh up   STATE_DIR
#   deploy/two-processes.sh down STATE_DIR
#
# Secrets must be set in the environment (SECRET_KEY, STOPCSAM_ENCRYPTION_KEYS,
# STOPCSAM_LOOKUP_KEY or their *_FILE forms). Ports can be moved with PORT_A, PORT_B, PORT_NGINX.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
action="${1:?up or down}"
state="${2:?a state directory}"
stopcsam="${STOPCSAM:-$here/../.venv/bin/stopcsam}"
PORT_A="${PORT_A:-8001}" PORT_B="${PORT_B:-8002}" PORT_NGINX="${PORT_NGINX:-8080}"

down() {
  for pidfile in "$state"/*.pid; do
    [ -e "$pidfile" ] || continue
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  done
  if [ -e "$state/nginx/nginx.pid" ]; then
    nginx -p "$state/nginx" -c "$state/nginx/nginx.conf" -s quit 2>/dev/null || true
  fi
}

up() {
  : "${DATABASE_URL:?set DATABASE_URL (PostgreSQL)}" "${REDIS_URL:?set REDIS_URL}"
  mkdir -p "$state/nginx" "$state/var"
  export STOPCSAM_PROCESSES=2 STOPCSAM_VAR_DIR="$state/var" STOPCSAM_EXTERNAL_WORKERS=true
  "$stopcsam" check --deploy --fail-level ERROR >/dev/null
  "$stopcsam" migrate --verbosity 0
  for port in "$PORT_A" "$PORT_B"; do
    "$stopcsam" serve --host 127.0.0.1 --port "$port" --processes 1 \
      >"$state/serve-$port.log" 2>&1 &
    echo $! >"$state/serve-$port.pid"
  done
  # The background jobs, once for the deployment (deploy/stopcsam-worker.service).
  "$stopcsam" scheduling_worker >"$state/worker.log" 2>&1 &
  echo $! >"$state/worker.pid"
  sed -e "s/127.0.0.1:8001/127.0.0.1:$PORT_A/; s/127.0.0.1:8002/127.0.0.1:$PORT_B/" \
      -e "s/listen 127.0.0.1:8080/listen 127.0.0.1:$PORT_NGINX/" \
      -e "s#pid /tmp/stopcsam-nginx.pid#pid $state/nginx/nginx.pid#" \
      "$here/nginx.conf" >"$state/nginx/nginx.conf"
  nginx -p "$state/nginx" -c "$state/nginx/nginx.conf" -e "$state/nginx/error.log" \
    </dev/null >"$state/nginx/start.log" 2>&1
  for port in "$PORT_A" "$PORT_B" "$PORT_NGINX"; do
    for _ in $(seq 1 100); do
      curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
      sleep 0.2
    done
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null
  done
  echo "up: nginx on 127.0.0.1:$PORT_NGINX, processes on $PORT_A and $PORT_B"
}

case "$action" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down STATE_DIR" >&2; exit 2 ;;
esac
