#!/usr/bin/env bash
# The full test suite: installs what it needs (Debian packages when missing, npm ci), builds, runs vitest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then npm ci --no-audit --no-fund; fi
npx tsc -p tsconfig.json
npx vitest run "$@"
