#!/usr/bin/env bash
# What `make test` (and so `.ci/run`) needs on a machine nobody prepared: Debian packages
# (servers, browser, Compose), then RabbitMQ and Redis listening on their usual ports.
# Idempotent and quick when everything is already there; one place for both callers, so the
# README's two commands and CI take the same path.
#
#   deploy/prereqs/install.sh            # packages, then servers
#   deploy/prereqs/install.sh packages   # only what apt installs
#   deploy/prereqs/install.sh servers    # only start RabbitMQ / Redis when nothing listens
#   deploy/prereqs/install.sh python-ft  # only the free-threaded CPython and .venv-ft
set -euo pipefail
cd "$(dirname "$0")/../.."

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "prereqs: need root to run: $*" >&2; return 1
  fi
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for_port() {
  local port=$1 what=$2
  for _ in $(seq 1 120); do
    listening "$port" && return 0
    sleep 1
  done
  echo "prereqs: $what did not start listening on port $port" >&2
  return 1
}

apt_install() {
  [ $# -gt 0 ] || return 0
  if ! command -v apt-get >/dev/null; then
    echo "prereqs: missing $*; install them with your package manager" >&2
    return 1
  fi
  echo "prereqs: installing $*"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "$@" >/dev/null
}

packages() {
  local missing=()
  command -v docker-compose >/dev/null || missing+=(docker-compose)
  # The dashboard test drives Debian's Chromium through its own chromedriver.
  command -v chromium >/dev/null || missing+=(chromium)
  command -v chromedriver >/dev/null || missing+=(chromium-driver)
  # The chaos tests start private instances of both servers, so the binaries are needed
  # even when shared servers already listen.
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v rabbitmq-server >/dev/null || missing+=(rabbitmq-server)
  python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
  apt_install "${missing[@]}"
}

servers() {
  if ! listening 6379; then
    echo "prereqs: starting Redis"
    as_root mkdir -p /var/lib/redis /var/log/redis
    as_root redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" \
      --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
    wait_for_port 6379 Redis
  fi
  if ! listening 5672; then
    echo "prereqs: starting RabbitMQ"
    as_root rabbitmq-server -detached
    wait_for_port 5672 RabbitMQ
  fi
}

# The free-threaded CPython that the runtime tests run workers under (tests/e2e/test_runtimes.py):
# built once from Debian's source package into ~/.cache/coord-cluster/python (a few minutes),
# then skipped; .venv-ft is made once per clone. `make python-ft` also builds its GIL twin.
python_ft() {
  bash deploy/runtimes/python_ft.sh
}

case "${1:-all}" in
  packages) packages ;;
  servers) servers ;;
  python-ft) python_ft ;;
  all) packages; servers; python_ft ;;
  *) echo "usage: $0 [all|packages|servers|python-ft]" >&2; exit 2 ;;
esac
