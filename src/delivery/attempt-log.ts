/**
 * Pure: the line written to `postback.log` for one attempt, every field of
 * the contract. An attempt that got no response has status, responseTime
 * and body null and error set; an expiry noticed before any attempt has
 * deliveryTime null too.
 *
 * `attemptLineJson` serializes a line as the logger writes it: the same
 * text as JSON.stringify (its members, without the braces), built field
 * by field for this one shape. A line is written for every attempt, and
 * JSON.stringify's generic walk was 1.3 µs of it against 0.5 µs
 * (measured per line on the development machine), about 4% of the
 * delivery main thread under load. Strings go through JSON.stringify
 * unless they hold nothing it would escape or re-encode (printable ASCII
 * without a quote or a backslash), so the text is always JSON.stringify's.
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

/** Printable ASCII without a quote or a backslash: a string JSON.stringify writes as it is, between quotes. */
const NEEDS_STRINGIFY = /[^\x20-\x21\x23-\x5b\x5d-\x7e]/;

function jsonString(v: string | null): string {
  if (v === null) return 'null';
  return NEEDS_STRINGIFY.test(v) ? JSON.stringify(v) : `"${v}"`;
}

function jsonNumber(v: number | null): string {
  // JSON.stringify writes NaN and the infinities as null; String() agrees with it on every finite number.
  return v === null || !Number.isFinite(v) ? 'null' : String(v);
}

/** The line's members as JSON.stringify writes them, without the braces (for the attempt log). */
export function attemptLineJson(line: AttemptLine): string {
  let out =
    `"id":${jsonString(line.id)},"method":${jsonString(line.method)},"url":${jsonString(line.url)},"attempt":${jsonNumber(line.attempt)}` +
    `,"requestTime":${jsonNumber(line.requestTime)},"deliveryTime":${jsonNumber(line.deliveryTime)},"responseTime":${jsonNumber(line.responseTime)}` +
    `,"latencyMs":${jsonNumber(line.latencyMs)},"status":${jsonNumber(line.status)},"body":${jsonString(line.body)},"outcome":${jsonString(line.outcome)}` +
    `,"error":${jsonString(line.error)},"errorCode":${jsonString(line.errorCode)}`;
  if (line.nextAttemptAt !== undefined) out += `,"nextAttemptAt":${jsonNumber(line.nextAttemptAt)}`;
  if (line.probe !== undefined) out += ',"probe":true';
  return out;
}
