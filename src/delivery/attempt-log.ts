/**
 * Pure: the line written to `postback.log` for one attempt, every field of
 * the contract. An attempt that got no response has status, responseTime
 * and body null and error set; an expiry noticed before any attempt has
 * deliveryTime null too.
 */
import type { ErrorCode } from '../errors.js';
import type { AttemptResult } from './attempt.js';

export type LoggedOutcome = 'delivered' | 'retry' | 'dead' | 'expired';

export interface AttemptLine {
  id: string;
  method: 'GET' | 'POST' | null;
  url: string;
  attempt: number;
  requestTime: number;
  deliveryTime: number | null;
  responseTime: number | null;
  latencyMs: number | null;
  status: number | null;
  body: string | null;
  outcome: LoggedOutcome;
  error: string | null;
  errorCode: ErrorCode | null;
  /** For a retry: when the next attempt is due (ms epoch). */
  nextAttemptAt?: number;
  /** A circuit breaker's probe that failed: the postback waits again, the attempt not spent. */
  probe?: true;
}

export function attemptLine(
  id: string,
  method: 'GET' | 'POST' | null,
  attempt: number,
  requestTime: number,
  r: AttemptResult,
  outcome: LoggedOutcome,
  nextAttemptAt?: number,
): AttemptLine {
  const line: AttemptLine = {
    id,
    method,
    url: r.url,
    attempt,
    requestTime,
    deliveryTime: r.deliveryTime,
    responseTime: r.responseTime,
    latencyMs: r.latencyMs,
    status: r.status,
    body: r.body,
    outcome,
    error: r.error,
    errorCode: r.errorCode,
  };
  if (nextAttemptAt !== undefined) line.nextAttemptAt = nextAttemptAt;
  return line;
}

/** The line for a postback found past its deadline before an attempt. */
export function expiryLine(
  id: string,
  method: 'GET' | 'POST' | null,
  attemptsMade: number,
  requestTime: number,
): AttemptLine {
  return {
    id,
    method,
    url: '',
    attempt: attemptsMade,
    requestTime,
    deliveryTime: null,
    responseTime: null,
    latencyMs: null,
    status: null,
    body: null,
    outcome: 'expired',
    error: 'older than DELIVERY_TTL_MS: not tried again',
    errorCode: 'PB_ERR_EXPIRED',
  };
}
