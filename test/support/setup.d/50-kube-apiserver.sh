#!/usr/bin/env bash
# Builds kube-apiserver 1.20.2 from Debian's source package into ${SLIPWAY_KUBE_CACHE:-~/.cache/slipway/kube}
# once (about four minutes on 2 cores); instant when cached. The Kubernetes proof tests start it with etcd.
set -euo pipefail
exec bash "$(dirname "$0")/../kube/build-apiserver.sh"
