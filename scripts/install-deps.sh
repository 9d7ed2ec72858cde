#!/usr/bin/env bash
# Installs what Slipway and its tests need on a fresh machine, skipping what is already there.
# Node packages from package-lock.json; system packages (real registry, Prometheus, skopeo, etcd,
# Go for the kube-apiserver build) from Debian via apt-get as root.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # npm ci refuses this lock file on npm 11 (it lists only the linux builds of optional native
  # bindings, as the registry here serves them); install exactly what the lock pins instead.
  npm install --no-audit --no-fund --no-save
fi

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have git || need+=(git)
have openssl || need+=(openssl)
have skopeo || need+=(skopeo)
have docker-registry || need+=(docker-registry)
have prometheus || need+=(prometheus)
have etcd || need+=(etcd-server)
have go || need+=(golang-go)
have rsync || need+=(rsync)
have jq || need+=(jq)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing ${need[*]}; run as root (apt-get) or install them" >&2
    exit 1
  fi
  echo "install-deps: apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
