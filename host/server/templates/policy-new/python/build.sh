#!/usr/bin/env sh
# Builds {{name}}.wasm with componentize-py (pinned in requirements.txt; needs Python 3.10 or
# later). Uses componentize-py from PATH when it is the pinned version, else installs it into .venv.
set -eu
cd "$(dirname "$0")"
pinned="componentize-py $(sed -n 's/^componentize-py==//p' requirements.txt)"
tool=componentize-py
if [ "$($tool --version 2>/dev/null)" != "$pinned" ]; then
  tool=.venv/bin/componentize-py
  if [ "$($tool --version 2>/dev/null)" != "$pinned" ]; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
  fi
fi
# --stub-wasi: the component imports no WASI at all (the host grants none); print() would trap.
"$tool" -d wit -w {{world}} componentize --stub-wasi app -o {{name}}.wasm >/dev/null
echo "built {{name}}.wasm"
