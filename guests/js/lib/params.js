// Helpers shared by the JavaScript policy guests: tenant parameters and local time.
// componentize-js maps WIT `s64` to BigInt, `u16`/`u32` to Number, enums to kebab-case strings,
// variants to `{ tag, val }` and `option<T>` to `T | undefined`.

/** The integer parameter `name` (a BigInt), else `fallback`. */
export function paramInt(params, name, fallback) {
  const p = params.find((p) => p.name === name && p.value.tag === 'int');
  return p ? p.value.val : fallback;
}

/** The text parameter `name`, else `fallback`. */
export function paramText(params, name, fallback) {
  const p = params.find((p) => p.name === name && p.value.tag === 'text');
  return p ? p.value.val : fallback;
}

/** True when `t` falls in [start, end) minutes of the day; the range may wrap midnight. */
export function within(t, start, end) {
  const m = t.minuteOfDay;
  return start <= end ? m >= start && m < end : m >= start || m < end;
}

export const min = (a, b) => (a < b ? a : b);
export const max = (a, b) => (a > b ? a : b);
