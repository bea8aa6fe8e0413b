/**
 * Pure: a coarse log-scale latency histogram that many processes can add to
 * with HINCRBY and any monitor can merge, so cluster-wide p50/p99 per second
 * need no coordination. Bucket i holds latencies up to BOUNDS_MS[i]; the
 * bounds grow by about 25% per step from 0.25 ms to 120 s, so a percentile
 * read from them is within ~12% of the truth.
 */

const FIRST_MS = 0.25;
const FACTOR = 1.25;
export const BOUNDS_MS: readonly number[] = (() => {
  const b: number[] = [];
  for (let v = FIRST_MS; v < 120_000; v *= FACTOR) b.push(Math.round(v * 1000) / 1000);
  b.push(Infinity);
  return b;
})();

const LOG_FACTOR = Math.log(FACTOR);

/** Index of the bucket holding `ms`. */
export function bucketOf(ms: number): number {
  if (!(ms > FIRST_MS)) return 0;
  const i = Math.ceil(Math.log(ms / FIRST_MS) / LOG_FACTOR - 1e-9);
  return Math.min(BOUNDS_MS.length - 1, i);
}

/**
 * The latency at quantile `q` (0..1) of merged bucket counts, as the upper
 * bound of the bucket it falls in; null when there are no counts.
 */
export function quantile(counts: ReadonlyMap<number, number>, q: number): number | null {
  let total = 0;
  for (const c of counts.values()) total += c;
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil(q * total));
  const indexes = [...counts.keys()].sort((a, b) => a - b);
  let seen = 0;
  for (const i of indexes) {
    seen += counts.get(i) as number;
    if (seen >= rank) {
      const bound = BOUNDS_MS[i] as number;
      return Number.isFinite(bound) ? bound : (BOUNDS_MS[BOUNDS_MS.length - 2] as number);
    }
  }
  return null;
}
