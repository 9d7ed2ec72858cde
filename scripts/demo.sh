#!/usr/bin/env bash
# The README's main command: set up, then run the loop end to end on the embedded local target.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
npm run build --silent
exec node bin/slipway.js demo "$@"
