#!/usr/bin/env bash
# Build every policy component and copy the results where the host loads them:
#   policies/<name>.wasm + policies/manifest.json   default and example policies (the SDK's
#                                                    pix:policy@0.1.0; shipped: each kind's fallback)
#   policies/examples/<name>.wasm                    example rules to upload, not shipped as fallbacks
#                                                    (segment-fraud-triage: pix:policy@0.2.0)
#   policies/hostile/<name>.wasm                     hostile and test guests (host/policy and e2e tests)
# Needs the wasm32-wasip2 target (`rustup target add wasm32-wasip2`); the host itself does not.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/../policies"
cd "$here"

cargo build --release --workspace --target wasm32-wasip2
bin="${CARGO_TARGET_DIR:-$here/target}/wasm32-wasip2/release"

# name  kind  world
shipped=(
  "default-fee               fee                fee-policy"
  "default-refund-split      refund-split       refund-split-policy"
  "default-cashin-acceptance cashin-acceptance  cashin-acceptance-policy"
  "default-fraud-triage      fraud-triage       fraud-triage-policy"
  "example-institution       institution        institution"
)
examples=(segment-fraud-triage)
hostile=(hostile-loop hostile-memory hostile-fs hostile-net hostile-panic hostile-oversized
         hostile-counter hostile-invalid refund-split-reject)

mkdir -p "$out/hostile" "$out/examples"
entries=()
for line in "${shipped[@]}"; do
  read -r name kind world <<<"$line"
  cp "$bin/${name//-/_}.wasm" "$out/$name.wasm"
  sha="$(sha256sum "$out/$name.wasm" | cut -d' ' -f1)"
  entries+=("    {\"name\": \"$name\", \"kind\": \"$kind\", \"world\": \"$world\", \"file\": \"$name.wasm\", \"sha256\": \"$sha\"}")
done
for name in "${examples[@]}"; do
  cp "$bin/${name//-/_}.wasm" "$out/examples/$name.wasm"
done
for name in "${hostile[@]}"; do
  cp "$bin/${name//-/_}.wasm" "$out/hostile/$name.wasm"
done

{
  echo '{'
  echo '  "policies": ['
  (IFS=$'\n'; echo "${entries[*]}" | sed '$!s/$/,/')
  echo '  ]'
  echo '}'
} >"$out/manifest.json"

ls -l "$out"/*.wasm "$out"/examples/*.wasm "$out"/hostile/*.wasm
echo "wrote $out/manifest.json"
