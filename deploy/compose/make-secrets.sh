#!/bin/sh
# Creates the secret files docker-compose.yml reads, in ./secrets (or $1), without overwriting any:
# random Redis, outbox and Grafana passwords, the Redis URL matching the bundled Redis, and the manager API
# key read from stdin (`printf %s "$KEY" | deploy/compose/make-secrets.sh`). Files are 0644 inside a 0700
# directory: the containers run as other users (workers 10001, Grafana 472) and need to read them, while
# nobody else on the host can reach them. Nothing is printed.
set -eu
dir=${1:-secrets}
key=
if [ ! -s "$dir/api_key" ]; then
  key=$(cat)
  if [ -z "$key" ]; then
    echo "make-secrets: give the manager API key on stdin (printf %s \"\$KEY\" | $0)" >&2
    exit 2
  fi
fi
umask 077
mkdir -p "$dir"
chmod 700 "$dir"
umask 022
new() { [ -s "$dir/$1" ] && return 1; echo "created $dir/$1" >&2; }
rand() { openssl rand -hex 32; }
if new redis_password; then rand > "$dir/redis_password"; fi
if new redis_url; then
  printf 'redis://:%s@redis:6379\n' "$(cat "$dir/redis_password")" > "$dir/redis_url"
fi
if new outbox_key; then openssl rand -base64 32 > "$dir/outbox_key"; fi
if new grafana_admin_password; then rand > "$dir/grafana_admin_password"; fi
if new api_key; then printf '%s\n' "$key" > "$dir/api_key"; fi
chmod 644 "$dir"/*
