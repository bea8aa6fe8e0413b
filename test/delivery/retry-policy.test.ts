import t from 'tap';
import { backoff, decide, parseRetryAfter, type RetrySettings } from '../../src/delivery/retry-policy.js';

const s: RetrySettings = { maxAttempts: 5, backoffBaseMs: 1000, backoffMaxMs: 600_000 };
const NOW = 1_800_000_000_000;
const FAR = NOW + 86_400_000;

t.test('backoff doubles per attempt, jitter keeps at least half, the cap holds', async (t) => {
  t.equal(backoff(1, s, 1), 1000);
  t.equal(backoff(1, s, 0), 500);
  t.equal(backoff(2, s, 1), 2000);
  t.equal(backoff(3, s, 1), 4000);
  t.equal(backoff(3, s, 0.5), 3000);
  t.equal(backoff(20, s, 1), 600_000, 'capped');
  t.equal(backoff(20, s, 0), 300_000);
  t.equal(backoff(2000, s, 1), 600_000, 'no overflow for huge attempt counts');
  for (let a = 1; a < 12; a++) {
    for (const r of [0, 0.3, 0.999]) {
      const d = backoff(a, s, r);
      t.ok(d >= Math.min(600_000, 1000 * 2 ** (a - 1)) / 2 && d <= 600_000, `attempt ${a} r ${r}: ${d}`);
    }
  }
});

t.test('Retry-After: seconds or HTTP date', async (t) => {
  t.equal(parseRetryAfter('120', NOW), 120_000);
  t.equal(parseRetryAfter(' 0 ', NOW), 0);
  t.equal(parseRetryAfter(new Date(NOW + 30_000).toUTCString(), NOW), 30_000);
  t.equal(parseRetryAfter(new Date(NOW - 30_000).toUTCString(), NOW), 0, 'a date in the past means now');
  t.equal(parseRetryAfter('99999999999999999999', NOW), 9_999_999_999_000, 'more digits than we would ever wait: the longest wait, not none');
  t.same(decide('retryable', 1, '99999999999999999999', FAR, NOW, s, 1), { outcome: 'retry', dueAt: NOW + 600_000 }, 'and a retry at the cap');
  t.equal(parseRetryAfter('soon', NOW), null);
  t.equal(parseRetryAfter('-5', NOW), null);
  t.equal(parseRetryAfter(null, NOW), null);
});

t.test('decisions', async (t) => {
  t.same(decide('success', 1, null, FAR, NOW, s, 0.5), { outcome: 'delivered' });
  t.same(decide('permanent', 1, null, FAR, NOW, s, 0.5), { outcome: 'dead' });
  t.same(decide('retryable', 1, null, FAR, NOW, s, 1), { outcome: 'retry', dueAt: NOW + 1000 });
  t.same(decide('retryable', 4, null, FAR, NOW, s, 1), { outcome: 'retry', dueAt: NOW + 8000 });
  t.same(decide('retryable', 5, null, FAR, NOW, s, 1), { outcome: 'dead' }, 'max attempts counts the first');
  t.same(decide('retryable', 1, '60', FAR, NOW, s, 1), { outcome: 'retry', dueAt: NOW + 60_000 }, 'Retry-After stretches');
  t.same(decide('retryable', 3, '1', FAR, NOW, s, 1), { outcome: 'retry', dueAt: NOW + 4000 }, 'never shorter than backoff');
  t.same(decide('retryable', 1, '86400', FAR, NOW, s, 1), { outcome: 'retry', dueAt: NOW + 600_000 }, 'capped by the max');
  t.same(decide('retryable', 1, null, NOW + 500, NOW, s, 1), { outcome: 'expired' }, 'next try past the deadline');
  t.same(decide('retryable', 1, null, NOW + 1000, NOW, s, 1), { outcome: 'retry', dueAt: NOW + 1000 }, 'exactly at the deadline still goes');
  t.same(decide('retryable', 1, null, FAR, NOW, { ...s, maxAttempts: 1 }, 1), { outcome: 'dead' }, 'one attempt in all');
});

t.test('explicit delays of a partner policy, used as they are; the last repeats', async (t) => {
  const s = { maxAttempts: 10, backoffBaseMs: 1000, backoffMaxMs: 600_000, delaysMs: [500, 5_000, 60_000] };
  const cases: [number, number][] = [[1, 500], [2, 5_000], [3, 60_000], [4, 60_000], [9, 60_000]];
  for (const [attempts, want] of cases) t.equal(backoff(attempts, s, 0.123), want, `after attempt ${attempts}`);
  const now = 1_000_000;
  t.same(decide('retryable', 1, null, now + 86_400_000, now, s, 0.5), { outcome: 'retry', dueAt: now + 500 });
  t.same(decide('retryable', 1, '30', now + 86_400_000, now, s, 0.5), { outcome: 'retry', dueAt: now + 30_000 }, 'Retry-After still stretches it');
});
