// {{name}}: a pix-host {{kind}} policy, built against pix:policy@0.2.0 (wit/policy.wit, where
// every field is documented) with componentize-js.
//
// How the WIT looks in JavaScript: records are objects with camelCase fields; enums are
// kebab-case strings ('cash-out'); variants are { tag, val }; option<T> is T or undefined.
// Money (s64 centavos) is a BigInt: write 90n, not 90. Counts and minutes (u16, u32) are numbers.
// Throwing { code, message } means "I cannot decide this": the host applies the kind's
// fail-safe. Every call runs in a fresh instance with no filesystem, network, clock, randomness
// or console: everything a rule needs is in its input.

/** The integer parameter `name` (a BigInt), else `fallback`. */
function paramInt(params, name, fallback) {
  const p = params.find((p) => p.name === name && p.value.tag === 'int');
  return p ? p.value.val : fallback;
}

/** The text parameter `name`, else `fallback`. */
function paramText(params, name, fallback) {
  const p = params.find((p) => p.name === name && p.value.tag === 'text');
  return p ? p.value.val : fallback;
}
{{rules}}
