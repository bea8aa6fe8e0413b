/**
 * Pure: sets of HTTP statuses as operators write them: exact statuses and
 * classes, `["2xx", "3xx"]`, `"404,5xx"`. Used by partner policies (which
 * statuses are delivered, which retried) and `dlq --status`.
 */

export interface StatusSet {
  readonly exact: ReadonlySet<number>;
  /** Classes by their first digit: 5 for 5xx. */
  readonly classes: ReadonlySet<number>;
  /** The set as written, normalised ("2xx,3xx"). */
  readonly source: string;
}

export type ParseStatusSetResult = { ok: true; set: StatusSet } | { ok: false; message: string };

/** `items`: "404", "5xx" (any case). */
export function parseStatusSet(items: readonly string[]): ParseStatusSetResult {
  const exact = new Set<number>();
  const classes = new Set<number>();
  for (const raw of items) {
    const part = raw.trim().toLowerCase();
    if (/^[1-5]xx$/.test(part)) classes.add(Number(part[0]));
    else if (/^[1-5]\d\d$/.test(part)) exact.add(Number(part));
    else return { ok: false, message: `"${raw}" is not an HTTP status (404) or a class (5xx)` };
  }
  if (exact.size + classes.size === 0) return { ok: false, message: 'an empty list' };
  const source = [...[...classes].sort().map((c) => `${c}xx`), ...[...exact].sort()].join(',');
  return { ok: true, set: { exact, classes, source } };
}

export function hasStatus(set: StatusSet, status: number): boolean {
  return set.exact.has(status) || set.classes.has(Math.floor(status / 100));
}
