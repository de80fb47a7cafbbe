#!/usr/bin/env bash
# Ensures a Redis server for the tests: REDIS_URL if it answers, else 127.0.0.1:6379, else starts one there.
set -euo pipefail
url="${REDIS_URL:-redis://127.0.0.1:6379}"
if ! redis-cli -u "$url" ping >/dev/null 2>&1; then
  echo "starting redis-server on 127.0.0.1:6379" >&2
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir "${PW_STATE_DIR:-/tmp}" --logfile "${PW_STATE_DIR:-/tmp}/redis.log" >&2
  for _ in $(seq 50); do redis-cli -u "$url" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -u "$url" ping >/dev/null || { echo "redis did not start" >&2; exit 1; }
fi
echo "export REDIS_URL='$url'"
