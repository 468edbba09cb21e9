#!/usr/bin/env sh
# Builds {{name}}.wasm with componentize-js (pinned in package.json; needs Node.js 20 or later).
# The first run installs it into node_modules (about 390 MB).
set -eu
cd "$(dirname "$0")"
[ -x node_modules/.bin/componentize-js ] || npm install --no-audit --no-fund --loglevel=error
npm run --silent build
echo "built {{name}}.wasm"
