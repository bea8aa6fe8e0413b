/**
 * Pure: what happens after an attempt. Success is delivered; a permanent
 * failure is dead; a retryable failure is tried again after an exponential
 * backoff with jitter (base x 2^(attempt-1), at least half of it, capped),
 * stretched to honour a Retry-After within the cap, unless the attempts
 * are spent (dead) or the next try would fall past the postback's deadline
 * (expired). `now` and `random` come in: no clock, no Math.random here.
 */
import type { Verdict } from './outcome.js';

export interface RetrySettings {
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** A partner's explicit delays before attempt 2, 3, ... (the last repeats), used as they are. */
  delaysMs?: readonly number[] | null;
}

export type Decision =
  | { outcome: 'delivered' }
  | { outcome: 'retry'; dueAt: number }
  | { outcome: 'dead' }
  | { outcome: 'expired' };

/** Delay before attempt `attempts + 1`, given `attempts` made so far (>= 1). */
export function backoff(attempts: number, s: RetrySettings, random: number): number {
  if (s.delaysMs) return s.delaysMs[Math.min(attempts, s.delaysMs.length) - 1] as number;
  const exp = Math.min(s.backoffMaxMs, s.backoffBaseMs * 2 ** Math.min(attempts - 1, 52));
  return Math.min(s.backoffMaxMs, Math.round(exp / 2 + (exp / 2) * random));
}

/** A Retry-After in seconds is read up to this (about 317 years): past it, the same. */
const RETRY_AFTER_MAX_S = 9_999_999_999;

/**
 * Milliseconds a Retry-After header asks for: delta-seconds or an HTTP date.
 * Null when absent or unreadable.
 */
export function parseRetryAfter(header: string | null, now: number): number | null {
  if (header === null) return null;
  const v = header.trim();
  // Any number of digits: a partner asking for longer than we would ever
  // wait still asks for the longest wait (callers cap it), not for none.
  if (/^\d+$/.test(v)) return Math.min(Number(v), RETRY_AFTER_MAX_S) * 1000;
  // An HTTP date names its month: "Wed, 21 Oct 2015 07:28:00 GMT".
  if (!/[A-Za-z]{3}/.test(v)) return null;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return null;
  return Math.max(0, at - now);
}

export function decide(
  verdict: Verdict,
  attempts: number,
  retryAfter: string | null,
  deadline: number,
  now: number,
  s: RetrySettings,
  random: number,
): Decision {
  if (verdict === 'success') return { outcome: 'delivered' };
  if (verdict === 'permanent' || attempts >= s.maxAttempts) return { outcome: 'dead' };
  let delay = backoff(attempts, s, random);
  const asked = parseRetryAfter(retryAfter, now);
  if (asked !== null) delay = Math.min(Math.max(s.backoffMaxMs, delay), Math.max(delay, asked));
  const dueAt = now + delay;
  if (dueAt > deadline) return { outcome: 'expired' };
  return { outcome: 'retry', dueAt };
}
