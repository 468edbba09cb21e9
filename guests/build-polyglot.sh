#!/usr/bin/env bash
# Build the JavaScript and Python policy guests into target/polyglot/ (git-ignored: each component
# is 11–18 MiB, so they are built here and in CI, never committed):
#   target/polyglot/<name>.wasm + manifest.json   (same format as policies/manifest.json)
#
# Toolchains come from the package registries only, pinned, installed locally:
#   JavaScript  @bytecodealliance/componentize-js (guests/js/package.json + package-lock.json,
#               `npm ci` into guests/js/node_modules); needs Node >= 20
#   Python      componentize-py (pinned below, `pip install` into guests/python/.venv); needs
#               Python >= 3.10 with venv
# Both snapshot their interpreter after initialisation (Wizer), so the host never boots an
# interpreter per decision. JS is built with every WASI feature disabled and Python with
# --stub-wasi (WASI imports replaced by trapping stubs), so both import nothing but
# `pix:policy/types`, which the host's deny-by-default linker accepts.
#
# A component is rebuilt only when its sources, the WIT or the toolchain pin changed (a sha256
# stamp beside it). Usage: guests/build-polyglot.sh [--force]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
out="${PIX_POLYGLOT_DIR:-$root/target/polyglot}"
# The contract the guests implement (one place to change when the WIT moves or is versioned).
wit="${PIX_POLICY_WIT:-$root/wit}"
componentize_py_version="0.25.1"
force=false
[ "${1:-}" = "--force" ] && force=true

mkdir -p "$out"
started=$(date +%s)

# name  language  world  kind  entry (JS: file under guests/js; Python: dir under guests/python)
guests=(
  "js-fee                js fee-policy          fee          fee/fee.js"
  "js-fraud-triage       js fraud-triage-policy fraud-triage fraud-triage/fraud-triage.js"
  "js-hostile-loop       js fee-policy          fee          hostile-loop/hostile-loop.js"
  "python-fee            py fee-policy          fee          fee"
  "python-fraud-triage   py fraud-triage-policy fraud-triage fraud-triage"
)

js_ready=false
js_toolchain() {
  $js_ready && return
  command -v node >/dev/null || { echo "node (>= 20) is needed for the JavaScript guests" >&2; exit 1; }
  if [ ! -x "$here/js/node_modules/.bin/componentize-js" ] || ! cmp -s "$here/js/package-lock.json" \
      "$here/js/node_modules/.package-lock.json.copy" 2>/dev/null; then
    (cd "$here/js" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$here/js/package-lock.json" "$here/js/node_modules/.package-lock.json.copy"
  fi
  js_ready=true
}

py_ready=false
py_toolchain() {
  $py_ready && return
  local venv="$here/python/.venv"
  if [ "$("$venv/bin/componentize-py" --version 2>/dev/null)" != "componentize-py $componentize_py_version" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$componentize_py_version"
  fi
  py_ready=true
}

# Everything a component depends on (hashed into its stamp).
inputs_of() {
  local lang="$1" entry="$2" src
  if [ "$lang" = js ]; then src=("$here/js/$(dirname "$entry")" "$here/js/lib" "$here/js/package-lock.json")
  else src=("$here/python/$entry" "$here/python/lib"); echo "componentize-py $componentize_py_version"; fi
  find "${src[@]}" "$wit" -type f ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum
}

# The limits every interpreter component declares (its manifest entry's `limits`): the snapshot
# is 9–13 MiB of linear memory (above the Rust default of 16 MiB once a decision allocates) and a
# decision runs 0.2–1.3 M instructions, so 32 MiB and 20 M fuel leave room; the deadline stays the
# engine default.
limits='{"memoryMib": 32, "fuel": 20000000}'

entries=()
for line in "${guests[@]}"; do
  read -r name lang world kind entry <<<"$line"
  wasm="$out/$name.wasm"
  stamp="$(inputs_of "$lang" "$entry" | sha256sum | cut -d' ' -f1)"
  if $force || [ ! -f "$wasm" ] || [ "$(cat "$wasm.stamp" 2>/dev/null)" != "$stamp" ]; then
    t0=$(date +%s)
    if [ "$lang" = js ]; then
      js_toolchain
      (cd "$here/js" && node_modules/.bin/componentize-js "$entry" --wit "$wit" --world-name "$world" \
        --disable stdio random clocks http fetch-event -o "$wasm.tmp")
    else
      py_toolchain
      (cd "$here/python" && .venv/bin/componentize-py -d "$wit" -w "$world" componentize --stub-wasi \
        -p "$entry" -p lib app -o "$wasm.tmp" >/dev/null)
    fi
    mv "$wasm.tmp" "$wasm"
    echo "$stamp" >"$wasm.stamp"
    echo "built $name in $(( $(date +%s) - t0 ))s"
  fi
  sha="$(sha256sum "$wasm" | cut -d' ' -f1)"
  entries+=("    {\"name\": \"$name\", \"kind\": \"$kind\", \"world\": \"$world\", \"file\": \"$name.wasm\", \"sha256\": \"$sha\", \"limits\": $limits}")
done

{
  echo '{'
  echo '  "policies": ['
  (IFS=$'\n'; echo "${entries[*]}" | sed '$!s/$/,/')
  echo '  ]'
  echo '}'
} >"$out/manifest.json"

ls -l "$out"/*.wasm
echo "wrote $out/manifest.json in $(( $(date +%s) - started ))s"
