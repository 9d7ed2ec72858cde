#!/usr/bin/env bash
# The README's test command: set up a fresh machine, then typecheck, lint and run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
npm run build
npm run typecheck
npm run lint
npm test -- --ci "$@"
