/**
 * Pure: what an attempt's result means, per the contract: 2xx delivered;
 * network errors (a refused TLS handshake among them), timeouts, 408, 429
 * and 5xx are worth retrying; anything else (other 4xx, 3xx since
 * redirects are not followed, 1xx, a bad URL, a blocked address, a missing
 * template) fails for good. A partner policy
 * may say other statuses are delivered (a pixel partner: 3xx) or retried.
 */
import type { ErrorCode } from '../errors.js';
import { hasStatus, type StatusSet } from '../partners/status-set.js';

export type Verdict = 'success' | 'retryable' | 'permanent';

const PERMANENT_ERRORS: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['PB_ERR_BAD_URL', 'PB_ERR_BLOCKED_ADDRESS', 'PB_ERR_REDIRECT', 'PB_ERR_TEMPLATE_MISSING', 'PB_ERR_CODEC', 'PB_ERR_ORIGIN_NOT_ALLOWED']);

/** Which statuses are delivered and which retried: the contract's by default, a partner policy's otherwise. */
export interface StatusRules {
  success: StatusSet;
  retryOn: StatusSet;
}

const CONTRACT: StatusRules = {
  success: { exact: new Set(), classes: new Set([2]), source: '2xx' },
  retryOn: { exact: new Set([408, 429]), classes: new Set([5]), source: '5xx,408,429' },
};

export function classify(status: number | null, errorCode: ErrorCode | null, rules: StatusRules = CONTRACT): Verdict {
  if (status === null) {
    return errorCode !== null && PERMANENT_ERRORS.has(errorCode) ? 'permanent' : 'retryable';
  }
  if (hasStatus(rules.success, status)) return 'success';
  if (hasStatus(rules.retryOn, status)) return 'retryable';
  return 'permanent';
}

/**
 * What an attempt says about the partner's health, for its circuit
 * breaker: `down` (no connection, a refused TLS handshake, a timeout, a
 * reset: counts toward the failures in a row), `fail` (an answer worth
 * retrying: 5xx, 429, 408, or garbage), `ok` (it answered as it meant to,
 * even a 404), or `none` (our side: a bad URL, a blocked address, a
 * missing template).
 */
export type Health = 'ok' | 'fail' | 'down' | 'none';

// A refused TLS handshake is a connection that could not be made: the
// partner's certificate (expired, another name) or our trust in it
// (DELIVERY_CA_FILE) has to change before anything gets through, so it
// counts toward the breaker like a refused connection and its postbacks wait.
const DOWN_ERRORS: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['PB_ERR_CONNECT', 'PB_ERR_DELIVERY_TIMEOUT', 'PB_ERR_SOCKET', 'PB_ERR_TLS']);

export function health(status: number | null, errorCode: ErrorCode | null, rules: StatusRules = CONTRACT): Health {
  if (status === null) {
    if (errorCode !== null && DOWN_ERRORS.has(errorCode)) return 'down';
    return errorCode === 'PB_ERR_PROTOCOL' ? 'fail' : 'none';
  }
  return classify(status, errorCode, rules) === 'retryable' ? 'fail' : 'ok';
}
