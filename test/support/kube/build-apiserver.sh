#!/usr/bin/env bash
# Builds kube-apiserver 1.20.2 from Debian bookworm's `kubernetes` source package, once, into a cache
# directory outside the repo. Idempotent: when the binary is already there it exits at once.
#
# Recipe (issue 8), with what this machine needed:
#   1. a deb-src entry for bookworm main (deb822 format, like /etc/apt/sources.list.d/debian.sources);
#   2. `apt-get source kubernetes` (needs dpkg-dev for dpkg-source; no build-deps are installed);
#   3. replace vendor/github.com/modern-go/reflect2 (1.0.1 panics under Go >= 1.18 on any map in a
#      response, i.e. every server-side apply response) with Debian's golang-github-modern-go-reflect2-dev
#      1.0.2 from /usr/share/gocode/src;
#   4. `make WHAT=cmd/kube-apiserver` with Debian's golang-go (1.19), rsync and jq.
#
# Output: $CACHE/bin/kube-apiserver (CACHE = ${SLIPWAY_KUBE_CACHE:-$HOME/.cache/slipway/kube}).
set -euo pipefail

CACHE="${SLIPWAY_KUBE_CACHE:-$HOME/.cache/slipway/kube}"
BIN="$CACHE/bin/kube-apiserver"
VERSION="1.20.2"

if [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; then
  echo "kube-apiserver: cached at $BIN ($("$BIN" --version))"
  exit 0
fi

log() { echo "kube-apiserver build: $*" >&2; }
die() { log "$*"; exit 1; }

for tool in go rsync jq make; do
  command -v "$tool" >/dev/null 2>&1 || die "missing '$tool' (apt-get install golang-go rsync jq make)"
done

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else
    command -v sudo >/dev/null 2>&1 || die "need root for: $* (run this script as root once)"
    sudo "$@"
  fi
}

export DEBIAN_FRONTEND=noninteractive
SRC_LIST=/etc/apt/sources.list.d/slipway-debian-src.sources
need_update=0
if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src ' /etc/apt/sources.list; then
  log "adding deb-src entry $SRC_LIST"
  as_root tee "$SRC_LIST" >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  need_update=1
fi
if ! ls /var/lib/apt/lists/*_debian_dists_bookworm_main_source_Sources* >/dev/null 2>&1; then
  need_update=1
fi

pkgs=()
command -v dpkg-source >/dev/null 2>&1 || pkgs+=(dpkg-dev)
[ -d /usr/share/gocode/src/github.com/modern-go/reflect2 ] || pkgs+=(golang-github-modern-go-reflect2-dev)
if [ "$need_update" = 1 ] || [ ${#pkgs[@]} -gt 0 ]; then
  log "apt-get update"
  as_root apt-get update -qq
fi
if [ ${#pkgs[@]} -gt 0 ]; then
  log "apt-get install ${pkgs[*]}"
  as_root apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi

mkdir -p "$CACHE/src" "$CACHE/bin"
cd "$CACHE/src"
SRC_DIR="$CACHE/src/kubernetes-$VERSION"
if [ ! -f "$SRC_DIR/.slipway-source-ok" ]; then
  rm -rf "$SRC_DIR"
  log "apt-get source kubernetes (into $CACHE/src)"
  apt-get source -qq --download-only "kubernetes" >/dev/null
  # bookworm's version string is 1.20.5+really1.20.2-1.1+deb12u1: the 1.20.2 tree under a bumped version.
  dsc=$(ls kubernetes_*.dsc 2>/dev/null | head -1)
  [ -n "$dsc" ] || die "no kubernetes_*.dsc downloaded (is bookworm main in the deb-src entry?)"
  dpkg-source --no-check -x "$dsc" "$SRC_DIR" >/dev/null
  touch "$SRC_DIR/.slipway-source-ok"
fi

cd "$SRC_DIR"
REFLECT2=/usr/share/gocode/src/github.com/modern-go/reflect2
if ! grep -qs 'slipway: reflect2 from' vendor/github.com/modern-go/reflect2/SLIPWAY; then
  log "replacing vendor/github.com/modern-go/reflect2 with Debian's $(dpkg-query -W -f='${Version}' golang-github-modern-go-reflect2-dev)"
  rm -rf vendor/github.com/modern-go/reflect2
  cp -r "$REFLECT2" vendor/github.com/modern-go/reflect2
  echo "slipway: reflect2 from $REFLECT2" > vendor/github.com/modern-go/reflect2/SLIPWAY
fi

log "make WHAT=cmd/kube-apiserver (a few minutes on 2 cores)"
start=$(date +%s)
# No network for Go: everything is vendored.
GOFLAGS=-mod=vendor GOPROXY=off GO111MODULE=on KUBE_GIT_VERSION="v$VERSION" \
  make WHAT=cmd/kube-apiserver >"$CACHE/build.log" 2>&1 || { tail -40 "$CACHE/build.log" >&2; die "make failed (log: $CACHE/build.log)"; }
end=$(date +%s)
built=$(ls _output/local/bin/linux/*/kube-apiserver 2>/dev/null | head -1)
[ -n "$built" ] || built=_output/bin/kube-apiserver
[ -x "$built" ] || die "make succeeded but no kube-apiserver binary found under _output"
install -m 0755 "$built" "$BIN.tmp"
mv "$BIN.tmp" "$BIN"
echo "$((end - start))" > "$CACHE/build-seconds"
log "built in $((end - start)) s: $BIN ($("$BIN" --version))"
