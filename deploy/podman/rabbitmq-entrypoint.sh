#!/bin/sh
# What the official image's entrypoint does with RABBITMQ_DEFAULT_USER/PASS.
set -eu
conf=/etc/rabbitmq/conf.d/20-default-user.conf
if [ -n "${RABBITMQ_DEFAULT_USER:-}" ]; then
  printf 'default_user = %s\ndefault_pass = %s\n' \
    "$RABBITMQ_DEFAULT_USER" "${RABBITMQ_DEFAULT_PASS:-}" > "$conf"
fi
exec "$@"
