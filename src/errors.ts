/**
 * One registry of stable error codes (fastify `FST_ERR_*`, undici
 * `UND_ERR_*`). Callers match on `code`, never on messages. Each code
 * carries the HTTP status and public `error` string ingest answers with,
 * so the same failure reads the same everywhere (HTTP body, logs, CLI).
 * The README's error table is generated from the same list by hand: keep
 * them together when adding a code.
 */

export interface ErrorSpec {
  /** HTTP status when the error reaches an ingest client. */
  readonly status: number;
  /** Short public identifier used in JSON error bodies. */
  readonly error: string;
}

export const ERRORS = {
  // ingest: client errors (4xx)
  PB_ERR_BAD_JSON: { status: 400, error: 'bad_json' },
  PB_ERR_BAD_FORM: { status: 400, error: 'bad_form' },
  PB_ERR_BAD_ENCODING: { status: 400, error: 'bad_encoding' },
  PB_ERR_VALIDATION: { status: 400, error: 'invalid_request' },
  PB_ERR_UNAUTHORIZED: { status: 401, error: 'unauthorized' },
  PB_ERR_NOT_FOUND: { status: 404, error: 'not_found' },
  PB_ERR_METHOD: { status: 405, error: 'method_not_allowed' },
  PB_ERR_TIMEOUT: { status: 408, error: 'request_timeout' },
  PB_ERR_TOO_LARGE: { status: 413, error: 'payload_too_large' },
  PB_ERR_MEDIA_TYPE: { status: 415, error: 'unsupported_media_type' },
  // ingest: service side (503: the client should retry later)
  PB_ERR_REDIS_UNAVAILABLE: { status: 503, error: 'unavailable' },
  PB_ERR_QUEUE_FULL: { status: 503, error: 'queue_full' },
  PB_ERR_SHUTTING_DOWN: { status: 503, error: 'shutting_down' },
  // delivery: attempt outcomes that are not HTTP statuses
  PB_ERR_CONNECT: { status: 502, error: 'connect_failed' },
  PB_ERR_DELIVERY_TIMEOUT: { status: 504, error: 'delivery_timeout' },
  PB_ERR_SOCKET: { status: 502, error: 'socket_error' },
  PB_ERR_PROTOCOL: { status: 502, error: 'protocol_error' },
  PB_ERR_BAD_URL: { status: 400, error: 'bad_url' },
  PB_ERR_BLOCKED_ADDRESS: { status: 403, error: 'blocked_address' },
  PB_ERR_REDIRECT: { status: 502, error: 'redirect_not_followed' },
  PB_ERR_HTTP_STATUS: { status: 502, error: 'http_status' },
  PB_ERR_TEMPLATE_MISSING: { status: 500, error: 'template_missing' },
  PB_ERR_EXPIRED: { status: 410, error: 'expired' },
  PB_ERR_INTERNAL: { status: 500, error: 'internal' },
  // configuration
  PB_ERR_CONFIG: { status: 500, error: 'bad_config' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** An error with a stable `code` from {@link ERRORS}. */
export class PostbackError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly error: string;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PostbackError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.error = ERRORS[code].error;
  }
}

/** True when `err` is a {@link PostbackError} (works across module copies). */
export function isPostbackError(err: unknown): err is PostbackError {
  return err instanceof PostbackError;
}
