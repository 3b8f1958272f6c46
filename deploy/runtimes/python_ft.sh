#!/usr/bin/env bash
# Builds a free-threaded CPython (--disable-gil) from Debian's python3.N source package, once,
# into a cache directory outside the clone (the install is not relocatable), then a virtual
# environment under it with the worker's dependencies and this project. The only source of
# interpreters reachable here is Debian's archive; PyPI serves no CPython.
#
#   deploy/runtimes/python_ft.sh              # interpreter (cached) + venv (.venv-ft)
#   deploy/runtimes/python_ft.sh interpreter  # only the interpreter
#   deploy/runtimes/python_ft.sh venv         # only the venv (needs the interpreter)
#   deploy/runtimes/python_ft.sh gil          # the GIL build of the same source (cached): the
#                                             # baseline of the free-threaded build's cost
#   deploy/runtimes/python_ft.sh path [gil]   # print an interpreter's path, build nothing
#
# PYTHON_FT_VERSION (default 3.13) picks the version; 3.14 is one setting away when Debian
# serves its source. PYTHON_FT_CACHE (default ~/.cache/coord-cluster/python) holds builds;
# .venv-ft in the clone is the environment the workers run under (deploy/coordctl/runtimes/runtime.py).
set -euo pipefail
cd "$(dirname "$0")/../.."

VERSION=${PYTHON_FT_VERSION:-3.13}
CACHE=${PYTHON_FT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/coord-cluster/python}
PREFIX=$CACHE/${VERSION}t
BINARY=$PREFIX/bin/python${VERSION}t
GIL_PREFIX=$CACHE/$VERSION
GIL_BINARY=$GIL_PREFIX/bin/python$VERSION
VENV=.venv-ft
JOBS=${PYTHON_FT_JOBS:-$(nproc)}

say() { echo "python-ft: $*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else say "need root to run: $*"; return 1
  fi
}

# interpreter_works BINARY GIL: it runs, has its usual modules, and the GIL is as expected.
interpreter_works() {
  [ -x "$1" ] && "$1" -c "import sys, ssl, sqlite3, ctypes, zlib
raise SystemExit(0 if sys._is_gil_enabled() is $2 else 1)" 2>/dev/null
}

build_deps() {
  local wanted=(build-essential pkg-config libssl-dev libffi-dev zlib1g-dev libbz2-dev
    liblzma-dev libsqlite3-dev libreadline-dev libncurses-dev uuid-dev libexpat1-dev
    libgdbm-dev libgdbm-compat-dev libzstd-dev xz-utils dpkg-dev)
  local missing=()
  for package in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' \
      || missing+=("$package")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  say "installing build dependencies: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

# The source comes from a private apt configuration (its own sources and lists directories),
# so the machine's apt configuration is neither read nor changed.
fetch_source() {
  local src=$CACHE/src/$VERSION apt=$CACHE/apt
  if ls "$src"/python"$VERSION"_*.orig.tar.xz >/dev/null 2>&1; then return 0; fi
  mkdir -p "$src" "$apt/sources" "$apt/lists/partial"
  cat >"$apt/sources/debian-src.sources" <<SOURCES
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  local options=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$apt/sources"
    -o "Dir::State::Lists=$apt/lists")
  say "fetching Debian's python$VERSION source package"
  apt-get "${options[@]}" update -qq 2>/dev/null
  # The index can list a version whose files are not served yet: try each, newest first.
  local listed
  listed=$(apt-cache "${options[@]}" showsrc "python$VERSION" 2>/dev/null \
    | awk '/^Version:/ {print $2}' | sort -rV | uniq)
  for version in $listed; do
    (cd "$src" && apt-get "${options[@]}" source --download-only -qq \
      "python$VERSION=$version" >/dev/null 2>&1) && { say "got python$VERSION $version"; return 0; }
    say "python$VERSION $version is listed but not served"
    rm -f "$src"/*
  done
  say "Debian serves no python$VERSION source here; try PYTHON_FT_VERSION=3.13"
  return 1
}

# build_interpreter [gil]: the free-threaded build, or with "gil" the GIL build.
build_interpreter() {
  local prefix=$PREFIX binary=$BINARY gil=False flags=(--disable-gil) lib=python${VERSION}t
  if [ "${1:-}" = gil ]; then
    prefix=$GIL_PREFIX binary=$GIL_BINARY gil=True flags=() lib=python$VERSION
  fi
  if interpreter_works "$binary" "$gil"; then return 0; fi
  local started=$SECONDS
  build_deps
  fetch_source
  local tarball work
  tarball=$(ls "$CACHE/src/$VERSION"/python"$VERSION"_*.orig.tar.xz | tail -n 1)
  work=$(mktemp -d "$CACHE/build.XXXXXX")
  # shellcheck disable=SC2064  # expand now: $work is local to this function
  trap "rm -rf '$work'" EXIT
  tar -xJf "$tarball" -C "$work" --strip-components=1
  say "building $(basename "$tarball") ${flags[*]:-with the GIL} into $prefix ($JOBS jobs)"
  rm -rf "$prefix"
  (cd "$work" && ./configure --quiet "${flags[@]}" --prefix="$prefix" \
      --with-ensurepip=install --disable-test-modules >"$work/configure.log" 2>&1 \
    && make -s -j"$JOBS" >"$work/make.log" 2>&1 \
    && make -s install >"$work/install.log" 2>&1) \
    || { say "build failed; logs in $work (kept)"; trap - EXIT; return 1; }
  # Tests and static libraries are most of the install's 470 MB and nothing here uses them.
  rm -rf "$prefix/lib/$lib/test" "$prefix/lib/$lib/idlelib/idle_test"
  find "$prefix/lib" -name '*.a' -delete
  rm -rf "$work"
  trap - EXIT
  interpreter_works "$binary" "$gil" || { say "built $binary but it fails its check"; return 1; }
  say "built $("$binary" -VV | head -n 1) in $((SECONDS - started)) s"
  echo "$((SECONDS - started))" >"$prefix/.build-seconds"
}

# The worker's dependencies under the free-threaded build: pins and fallbacks are in
# deploy/runtimes/constraints-ft.txt, and orjson (no free-threaded build) is left out, so
# shared/codec.py falls back to the standard json module.
build_venv() {
  interpreter_works "$BINARY" False || { say "no interpreter at $BINARY; run: make python-ft"; return 1; }
  local stamp=$VENV/.installed
  if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] \
    && [ "$stamp" -nt deploy/runtimes/constraints-ft.txt ] && "$VENV/bin/python" -V >/dev/null 2>&1
  then return 0; fi
  local started=$SECONDS
  say "creating $VENV under $BINARY"
  rm -rf "$VENV"
  "$BINARY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -c deploy/runtimes/constraints-ft.txt \
    -r deploy/runtimes/requirements-ft.txt
  "$VENV/bin/python" -m pip install --quiet --no-deps -e .
  "$VENV/bin/python" -m coordctl.runtimes.check
  say "venv ready in $((SECONDS - started)) s"
  touch "$stamp"
}

case "${1:-all}" in
  interpreter) build_interpreter ;;
  venv) build_venv ;;
  gil) build_interpreter gil ;;
  all) build_interpreter; build_venv ;;
  path) if [ "${2:-}" = gil ]; then echo "$GIL_BINARY"; else echo "$BINARY"; fi ;;
  *) echo "usage: $0 [all|interpreter|venv|gil|path [gil]]" >&2; exit 2 ;;
esac
