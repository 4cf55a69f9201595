#!/usr/bin/env bash
# The full test suite: installs what it needs (Debian packages when missing, npm ci), builds, typechecks the
# tests, runs vitest; then re-runs the compression-sensitive suites on the pure-JS fallback (CANVOS_NO_NATIVE=1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then npm ci --no-audit --no-fund; fi
# The addon: a committed prebuild, else built from source (install-deps.sh installed the headers), whatever state
# node_modules was in (npm ci is skipped when it is current, e.g. after `npm ci && npm run demo` or --ignore-scripts).
node scripts/install-native.mjs
npx tsc -p tsconfig.json
node scripts/bundle.mjs
# The stable API (src/index.ts) must match its reviewed report api/canvos-lite.api.md (`npm run api` updates it).
npm run --silent api:check
npx tsc -p tsconfig.test.json
# Lint (typescript-eslint strict + max function length), prettier's check and the import-cycle check (#14).
npm run --silent lint
# The addon must be loaded (a prebuild, or the build above): assert it.
CANVOS_EXPECT_NATIVE=1 npx vitest run "$@"
if [ $# -eq 0 ]; then
  echo "== fallback backend (CANVOS_NO_NATIVE=1) =="
  CANVOS_NO_NATIVE=1 npx vitest run test/native.test.ts test/layers test/iso/squashfs
fi
