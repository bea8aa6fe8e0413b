/**
 * Pure: Redis stream entry ids (`<ms>-<seq>`), compared as Redis orders
 * them: by milliseconds, then by sequence, both as numbers (a plain string
 * comparison puts "10-0" before "9-0").
 */

/** Negative when `a` comes before `b`, 0 when equal, positive after. */
export function compareStreamIds(a: string, b: string): number {
  const da = a.indexOf('-');
  const db = b.indexOf('-');
  const ms = Number(da < 0 ? a : a.slice(0, da)) - Number(db < 0 ? b : b.slice(0, db));
  if (ms !== 0) return ms;
  return Number(da < 0 ? 0 : a.slice(da + 1)) - Number(db < 0 ? 0 : b.slice(db + 1));
}
