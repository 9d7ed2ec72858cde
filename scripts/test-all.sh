#!/usr/bin/env bash
# The README's test command: set up a fresh machine, then typecheck, lint and run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
# The full suite never skips a real component: tests that need one fail, not skip, when it is missing.
export CI=true
bash scripts/install-deps.sh
for setup in test/support/setup.d/*.sh; do
  [ -e "$setup" ] || continue
  echo "setup: $setup"
  bash "$setup"
done
npm run build
npm run typecheck
npm run lint
npm test -- --ci "$@"
