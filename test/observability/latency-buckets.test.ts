import t from 'tap';
import { BOUNDS_MS, bucketOf, quantile } from '../../src/observability/latency-buckets.js';

t.test('bucket bounds grow by a quarter and hold their values', async (t) => {
  t.equal(BOUNDS_MS[0], 0.25);
  t.equal(BOUNDS_MS.at(-1), Infinity);
  t.ok(BOUNDS_MS.length < 80, `${BOUNDS_MS.length} buckets`);
  for (const ms of [0, 0.1, 0.25, 0.26, 1, 3.3, 10, 99.9, 1000, 59_999, 120_000, 1e9]) {
    const i = bucketOf(ms);
    t.ok(ms <= (BOUNDS_MS[i] as number), `${ms} <= bound ${BOUNDS_MS[i]}`);
    if (i > 0) t.ok(ms > (BOUNDS_MS[i - 1] as number), `${ms} > previous bound ${BOUNDS_MS[i - 1]}`);
  }
});

t.test('quantiles of merged counts', async (t) => {
  const counts = new Map<number, number>();
  for (let ms = 1; ms <= 100; ms++) counts.set(bucketOf(ms), (counts.get(bucketOf(ms)) ?? 0) + 1);
  const p50 = quantile(counts, 0.5) as number;
  const p99 = quantile(counts, 0.99) as number;
  t.ok(p50 >= 50 && p50 <= 50 * 1.25, `p50 ${p50}`);
  t.ok(p99 >= 99 && p99 <= 99 * 1.25, `p99 ${p99}`);
  t.equal(quantile(new Map(), 0.5), null);
  t.equal(quantile(new Map([[bucketOf(1e9), 3]]), 0.5), BOUNDS_MS.at(-2), 'overflow reports the last finite bound');
});
