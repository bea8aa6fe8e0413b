/**
 * Pure: what an attempt's result means, per the contract. 2xx delivered;
 * network errors, timeouts, 408, 429 and 5xx are worth retrying; anything
 * else (other 4xx, 3xx since redirects are not followed, 1xx, a bad URL, a
 * blocked address, a missing template) fails for good.
 */
import type { ErrorCode } from '../errors.js';

export type Verdict = 'success' | 'retryable' | 'permanent';

const PERMANENT_ERRORS: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['PB_ERR_BAD_URL', 'PB_ERR_BLOCKED_ADDRESS', 'PB_ERR_REDIRECT', 'PB_ERR_TEMPLATE_MISSING', 'PB_ERR_CODEC', 'PB_ERR_ORIGIN_NOT_ALLOWED']);

export function classify(status: number | null, errorCode: ErrorCode | null): Verdict {
  if (status === null) {
    return errorCode !== null && PERMANENT_ERRORS.has(errorCode) ? 'permanent' : 'retryable';
  }
  if (status >= 200 && status < 300) return 'success';
  if (status >= 500 || status === 408 || status === 429) return 'retryable';
  return 'permanent';
}
