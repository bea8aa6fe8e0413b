/**
 * One attempt as undici sees it: the dispatch handler that turns whatever
 * the partner does (answers, stalls, resets, sends something that is not
 * HTTP, an enormous body, a certificate we do not trust) into an
 * {@link AttemptResult}, and the mapping of undici's (and Node's TLS)
 * errors to PB_ERR_* codes.
 */
import type { ErrorCode } from '../errors.js';
import type { AttemptResult } from './attempt.js';
import type { DeadlineTicket, Deadlines, Expirable } from './deadlines.js';

/** Bytes read past the logged excerpt so the connection stays reusable. */
const DRAIN_MAX = 64 * 1024;

/**
 * OpenSSL's certificate verification results as Node reports them (err.code),
 * by what the operator should read into them.
 */
const CERT_UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
]);
const CERT_DATES = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ERROR_IN_CERT_NOT_BEFORE_FIELD', 'ERROR_IN_CERT_NOT_AFTER_FIELD']);
const CERT_NAME = new Set(['ERR_TLS_CERT_ALTNAME_INVALID', 'HOSTNAME_MISMATCH', 'IP_ADDRESS_MISMATCH']);
const CERT_OTHER = new Set([
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
]);

/**
 * A failed TLS handshake (the certificate refused, or no TLS at all on the
 * port), worded for the attempt log: what went wrong, then Node's code and
 * text. Null for anything else.
 */
function tlsFailure(code: string, message: string, reason: string | undefined): string | null {
  if (CERT_UNTRUSTED.has(code)) {
    return `TLS: the partner's certificate is not trusted (${code}: ${message}); if the partner uses a private CA, add it to DELIVERY_CA_FILE`;
  }
  if (CERT_NAME.has(code)) return `TLS: the partner's certificate is for another host name (${code}: ${message})`;
  if (CERT_DATES.has(code)) return `TLS: the partner's certificate is expired or not yet valid (${code}: ${message})`;
  if (CERT_OTHER.has(code)) return `TLS: the partner's certificate was refused (${code}: ${message})`;
  // OpenSSL's own errors (ERR_SSL_WRONG_VERSION_NUMBER: the port does not
  // speak TLS; an alert from the partner) carry a long raw message: its reason reads better.
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) return `TLS handshake failed (${code}: ${reason ?? message})`;
  return null;
}

/** Maps an error thrown by undici (or the deadline) to a PB_ERR_* code. */
export function errorCodeOf(err: unknown, aborted: boolean): { code: ErrorCode; message: string } {
  const e = err as { code?: string; name?: string; message?: string; reason?: string };
  const message = e?.message ?? String(err);
  if (aborted || e?.name === 'AbortError') return { code: 'PB_ERR_DELIVERY_TIMEOUT', message: 'attempt timed out' };
  const tls = typeof e?.code === 'string' ? tlsFailure(e.code, message, e.reason) : null;
  if (tls !== null) return { code: 'PB_ERR_TLS', message: tls };
  switch (e?.code) {
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return { code: 'PB_ERR_DELIVERY_TIMEOUT', message };
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EHOSTUNREACH':
    case 'EHOSTDOWN':
    case 'ENETUNREACH':
    case 'ENETDOWN':
    case 'ETIMEDOUT':
    case 'EADDRNOTAVAIL':
      return { code: 'PB_ERR_CONNECT', message: `${e.code}: ${message}` };
    case 'UND_ERR_SOCKET':
      // undici's words for a partner speaking out of turn: a response with
      // no request pending, or a 100 Continue nobody asked for (undici
      // refuses those, though HTTP says a client should skip them).
      if (message === 'bad response' || message === 'bad upgrade') {
        return { code: 'PB_ERR_PROTOCOL', message: `${message}: the partner answered out of turn (data with no request pending, an unsolicited 100 Continue, or an upgrade)` };
      }
      return { code: 'PB_ERR_SOCKET', message };
    case 'ECONNRESET':
    case 'ECONNABORTED':
    case 'EPIPE':
    case 'UND_ERR_CLOSED':
      return { code: 'PB_ERR_SOCKET', message };
    case 'EMFILE':
    case 'ENFILE':
    case 'ENOBUFS':
    case 'ENOMEM':
      // This process, not the partner: it must not count against the partner's breaker.
      return { code: 'PB_ERR_INTERNAL', message: `${e.code}: this delivery process is out of ${e.code === 'EMFILE' || e.code === 'ENFILE' ? 'file descriptors' : 'memory or socket buffers'} (${message}); see README, Failure modes` };
    case 'PB_ERR_BLOCKED_ADDRESS':
      return { code: 'PB_ERR_BLOCKED_ADDRESS', message };
    default:
      if (typeof e?.code === 'string' && e.code.startsWith('HPE_')) return { code: 'PB_ERR_PROTOCOL', message };
      if (e?.code === 'UND_ERR_INVALID_ARG' || e?.code === 'ERR_INVALID_URL') return { code: 'PB_ERR_BAD_URL', message };
      return { code: 'PB_ERR_PROTOCOL', message };
  }
}

const RETRY_AFTER = 'retry-after';
const LOCATION = 'location';

class CutOff extends Error {}

/**
 * undici dispatch handler (the parser's own callback interface) for one
 * attempt: keeps the status, Retry-After and Location, the first
 * RESPONSE_BODY_MAX bytes of the body, and cuts off bodies past DRAIN_MAX.
 * It is made when the attempt is dispatched on a free connection, and its
 * deadline starts then: the timeout measures the attempt (connect to last
 * body byte), never a wait for a connection.
 */
export class AttemptHandler implements Expirable {
  private abort: ((err: Error) => void) | null = null;
  private finished = false;
  private timedOut = false;
  private cutOff = false;
  private readonly kept: Buffer[] = [];
  private keptBytes = 0;
  private seen = 0;
  private readonly start = performance.now();
  private readonly ticket: DeadlineTicket;

  constructor(
    private readonly result: AttemptResult,
    private readonly max: number,
    private readonly decoder: { decode(input: Uint8Array): string },
    private readonly deadlines: Deadlines,
    private readonly resolve: (r: AttemptResult) => void,
  ) {
    this.ticket = deadlines.add(this);
  }

  onConnect(abort: (err: Error) => void): void {
    if (this.finished) {
      abort(new Error('attempt timed out'));
      return;
    }
    this.abort = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[] | string[] | null): boolean {
    if (statusCode < 200) return true; // 1xx: informational, the real answer follows
    const r = this.result;
    r.status = statusCode;
    let location: string | null = null;
    if (rawHeaders) {
      for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
        const name = rawHeaders[i] as Buffer | string;
        if (name.length === RETRY_AFTER.length || name.length === LOCATION.length) {
          const n = name.toString().toLowerCase();
          if (n === RETRY_AFTER) r.retryAfter = (rawHeaders[i + 1] as Buffer | string).toString();
          else if (n === LOCATION) location = (rawHeaders[i + 1] as Buffer | string).toString();
        }
      }
    }
    if (statusCode > 599) {
      // Not an HTTP status (LinkedIn's 999, say): logged as sent, with a word on it.
      r.error = `status ${statusCode} is outside HTTP's 100 to 599: treated as a failure that retrying will not fix`;
    } else if (statusCode >= 300 && statusCode < 400) {
      r.errorCode = 'PB_ERR_REDIRECT';
      r.error = `redirect not followed${location !== null ? `: Location ${location.slice(0, 512)}` : ''}`;
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.seen += chunk.length;
    if (this.keptBytes < this.max) {
      const take = chunk.length <= this.max - this.keptBytes ? chunk : chunk.subarray(0, this.max - this.keptBytes);
      this.kept.push(take);
      this.keptBytes += take.length;
    }
    if (this.seen > DRAIN_MAX && !this.cutOff) {
      // A huge answer: keep the excerpt, drop the connection, stay flat in memory.
      this.cutOff = true;
      this.abort?.(new CutOff('response body cut off'));
      return false;
    }
    return true;
  }

  onComplete(): void {
    this.finish(null);
  }

  onError(err: Error): void {
    if (this.cutOff && err instanceof CutOff) {
      if (this.result.error === null) this.result.error = `response body longer than ${DRAIN_MAX / 1024} KiB: not read past that (connection closed)`;
      this.finish(null);
    } else this.finish(err);
  }

  /** The attempt's deadline passed. */
  timeout(): void {
    if (this.finished) return;
    this.timedOut = true;
    if (this.abort) this.abort(new Error('attempt timed out'));
    else this.finish(new Error('attempt timed out'));
  }

  private finish(err: Error | null): void {
    if (this.finished) return;
    this.finished = true;
    this.deadlines.done(this.ticket, this);
    const r = this.result;
    r.latencyMs = Math.round((performance.now() - this.start) * 100) / 100;
    if (err === null || r.status !== null) {
      // A status arrived: a body cut short (reset, deadline) does not change the outcome.
      r.responseTime = r.deliveryTime + Math.round(r.latencyMs);
      r.body = this.keptBytes === 0 ? '' : this.decoder.decode(this.kept.length === 1 ? (this.kept[0] as Buffer) : Buffer.concat(this.kept, this.keptBytes));
      if (err !== null && r.error === null) r.error = `response body: ${errorCodeOf(err, this.timedOut).message}`;
      if (err !== null && r.status === null) r.body = null;
    } else {
      const { code, message } = errorCodeOf(err, this.timedOut);
      r.errorCode = code;
      r.error = message;
    }
    this.resolve(r);
  }
}
