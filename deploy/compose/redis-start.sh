#!/bin/sh
# Entry point of the compose `redis` service: turns the password secret into a `requirepass` line of a config
# file only Redis reads (never a command-line argument, so not in `ps` or `docker inspect`), then hands over
# to the image's own entry point (which drops to the redis user) with the flags from `command:`.
# REDIS_PASSWORD_FILE, REDIS_AUTH_CONF and REDIS_ENTRYPOINT move the paths (tests/it/compose_stack.rs runs this
# script with a local redis-server).
set -eu
secret=${REDIS_PASSWORD_FILE:-/run/secrets/redis_password}
conf=${REDIS_AUTH_CONF:-/tmp/redis-auth.conf}
if [ ! -s "$secret" ]; then
  echo "redis-start: $secret is missing or empty (create it: deploy/compose/make-secrets.sh)" >&2
  exit 2
fi
password=$(cat "$secret")
case $password in
  *[!A-Za-z0-9._~-]*)
    echo "redis-start: the password in $secret must be URL-safe ([A-Za-z0-9._~-]): it also goes in redis_url" >&2
    exit 2 ;;
esac
umask 077
printf 'requirepass %s\n' "$password" > "$conf"
chown redis:redis "$conf" 2>/dev/null || true
exec "${REDIS_ENTRYPOINT:-docker-entrypoint.sh}" redis-server "$conf" "$@"
