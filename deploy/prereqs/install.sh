#!/usr/bin/env bash
# What `make test` (and so `.ci/run`) needs on a machine nobody prepared: Debian packages
# (servers, browser, Compose), then RabbitMQ and Redis listening on their usual ports.
# Idempotent and quick when everything is already there; one place for both callers, so the
# README's two commands and CI take the same path.
#
#   deploy/prereqs/install.sh            # packages, then servers
#   deploy/prereqs/install.sh packages   # only what apt installs
#   deploy/prereqs/install.sh servers    # only start RabbitMQ / Redis when nothing listens
#   deploy/prereqs/install.sh containers # podman, its configuration and the images (cached)
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

# --- Containers: podman behind a Docker-compatible API, for `make up ENGINE=podman` and the
# container tests. Everything is cached: a second run installs and builds nothing.
PODMAN_DIR=${COORD_PODMAN_DIR:-/run/coord-podman}
BASE_IMAGE=localhost/coord-python:3.11-bookworm
# Tagged by the hash of their recipe, so a changed recipe builds a new image.
recipe_hash() { cat "$@" | sha256sum | cut -c1-10; }
RABBITMQ_LOCAL=localhost/coord-rabbitmq:3.10-$(recipe_hash deploy/podman/rabbitmq*)
REDIS_LOCAL=localhost/coord-redis:7.0-$(recipe_hash deploy/podman/redis*)

podman_conf() {
  # The project's own containers.conf (named by CONTAINERS_CONF), not the machine's /etc:
  # runc because crun refuses hybrid cgroups, ulimits within this machine's hard limits, and
  # no systemd/journald (PID 1 here is not systemd).
  local nofile nproc conf="$PODMAN_DIR/containers.conf"
  nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
  [ "$nofile" = unlimited ] && nofile=1048576
  # runc is refused an nproc limit at the machine's own hard limit; 32768 is accepted.
  if [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; then nproc=32768; fi
  as_root mkdir -p "$PODMAN_DIR"
  cat > "$conf.tmp" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
log_driver = "k8s-file"

[engine]
# This file replaces the machine's containers.conf, so it also says where Debian keeps
# netavark and aardvark-dns.
helper_binaries_dir = ["/usr/lib/podman", "/usr/libexec/podman", "/usr/local/libexec/podman"]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"

[network]
network_backend = "netavark"
EOF
  if cmp -s "$conf.tmp" "$conf"; then rm -f "$conf.tmp"; else mv "$conf.tmp" "$conf"; fi
}

has_image() { CONTAINERS_CONF="$PODMAN_DIR/containers.conf" podman image exists "$1"; }

registry_reachable() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 https://registry-1.docker.io/v2/ \
    || true)
  [ "$code" != 000 ] && [ -n "$code" ]
}

base_image() {
  # What `python:3.11-slim` gives, from Debian: bookworm's Python 3.11 and this machine's CA
  # certificates (the network here re-signs TLS, so pip in a build needs them).
  has_image "$BASE_IMAGE" && return 0
  echo "prereqs: building $BASE_IMAGE with debootstrap (about a minute)"
  local rootfs
  rootfs=$(mktemp -d /var/tmp/coord-rootfs.XXXXXX)
  as_root debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
    bookworm "$rootfs" http://deb.debian.org/debian >/dev/null
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    as_root cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
    as_root chroot "$rootfs" update-ca-certificates >/dev/null
  fi
  printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' | as_root tee "$rootfs/etc/pip.conf" >/dev/null
  as_root rm -rf "$rootfs/var/lib/apt/lists/"* "$rootfs/var/cache/apt/"*.bin
  as_root tar -C "$rootfs" -c . | CONTAINERS_CONF="$PODMAN_DIR/containers.conf" podman import \
    --change 'CMD ["python3"]' --change 'ENV LANG=C.UTF-8' - "$BASE_IMAGE" >/dev/null
  as_root rm -rf "$rootfs"
}

standin_image() {
  local tag=$1 dockerfile=$2
  has_image "$tag" && return 0
  echo "prereqs: building $tag from Debian's packages"
  CONTAINERS_CONF="$PODMAN_DIR/containers.conf" podman build --quiet --tag "$tag" \
    --build-arg "BASE_IMAGE=$BASE_IMAGE" --file "deploy/podman/$dockerfile" deploy/podman \
    >/dev/null
}

containers() {
  local missing=()
  for tool in podman runc netavark aardvark-dns slirp4netns fuse-overlayfs docker-compose \
      debootstrap curl iptables; do
    case $tool in
      netavark|aardvark-dns) [ -x "/usr/lib/podman/$tool" ] || missing+=("$tool") ;;
      *) command -v "$tool" >/dev/null || missing+=("$tool") ;;
    esac
  done
  apt_install "${missing[@]}"
  podman_conf
  # Images a registry would give: built locally only when no registry answers. images.env
  # tells `cluster up` and the tests which ones to use (official images stay the defaults).
  if ! { has_image "$BASE_IMAGE" && has_image "$RABBITMQ_LOCAL" && has_image "$REDIS_LOCAL"; } \
      && registry_reachable; then
    : > "$PODMAN_DIR/images.env"
    return 0
  fi
  base_image
  standin_image "$RABBITMQ_LOCAL" rabbitmq.Dockerfile
  standin_image "$REDIS_LOCAL" redis.Dockerfile
  printf 'PYTHON_IMAGE=%s\nRABBITMQ_IMAGE=%s\nREDIS_IMAGE=%s\n' \
    "$BASE_IMAGE" "$RABBITMQ_LOCAL" "$REDIS_LOCAL" > "$PODMAN_DIR/images.env"
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
  containers) containers ;;
  python-ft) python_ft ;;
  all) packages; servers; containers; python_ft ;;
  *) echo "usage: $0 [all|packages|servers|containers|python-ft]" >&2; exit 2 ;;
esac
