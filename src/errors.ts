/**
 * One registry of stable error codes (fastify `FST_ERR_*`, undici
 * `UND_ERR_*`), and it is the type: every code the service writes anywhere
 * (an HTTP error body, an attempt's `errorCode`, a dead letter) is an
 * {@link ErrorCode}. Callers match on `code`, never on messages.
 *
 * Two kinds:
 * - ingest answers (`status` is the HTTP status, `error` the public string
 *   of the JSON error body);
 * - attempt and storage outcomes (`status` null): what an attempt failed
 *   with below HTTP, or what the delivery process found in Redis;
 *   and configuration problems (`status` null) that stop a process at start.
 *
 * The README's error table lists the same codes; test/errors.test.ts
 * checks that the two agree.
 */

export interface ErrorSpec {
  /** HTTP status when the error reaches an ingest client; null for an attempt or storage outcome. */
  readonly status: number | null;
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
  PB_ERR_EXPECTATION: { status: 417, error: 'expectation_failed' },
  PB_ERR_TOO_LARGE: { status: 413, error: 'payload_too_large' },
  PB_ERR_MEDIA_TYPE: { status: 415, error: 'unsupported_media_type' },
  PB_ERR_IDEMPOTENCY_KEY_REUSED: { status: 422, error: 'idempotency_key_reused' },
  PB_ERR_ORIGIN_NOT_ALLOWED: { status: 400, error: 'origin_not_allowed' },
  PB_ERR_CROSS_SITE: { status: 403, error: 'cross_site_request' },
  PB_ERR_MISDIRECTED: { status: 421, error: 'misdirected_request' },
  // monitor: the partners API
  PB_ERR_ADMIN_DISABLED: { status: 403, error: 'admin_disabled' },
  // ingest: service side (503: the client should retry later)
  PB_ERR_REDIS_UNAVAILABLE: { status: 503, error: 'unavailable' },
  PB_ERR_QUEUE_FULL: { status: 503, error: 'queue_full' },
  PB_ERR_REDIS_FULL: { status: 503, error: 'redis_full' },
  PB_ERR_SHUTTING_DOWN: { status: 503, error: 'shutting_down' },
  PB_ERR_OVERLOADED: { status: 503, error: 'overloaded' },
  PB_ERR_INTERNAL: { status: 500, error: 'internal' },
  // delivery: attempt outcomes that are not HTTP statuses
  PB_ERR_CONNECT: { status: null, error: 'connect_failed' },
  PB_ERR_DELIVERY_TIMEOUT: { status: null, error: 'delivery_timeout' },
  PB_ERR_SOCKET: { status: null, error: 'socket_error' },
  PB_ERR_PROTOCOL: { status: null, error: 'protocol_error' },
  PB_ERR_TLS: { status: null, error: 'tls_failed' },
  PB_ERR_BAD_URL: { status: null, error: 'bad_url' },
  PB_ERR_BLOCKED_ADDRESS: { status: null, error: 'blocked_address' },
  PB_ERR_REDIRECT: { status: null, error: 'redirect_not_followed' },
  PB_ERR_EXPIRED: { status: null, error: 'expired' },
  // delivery: what it found in Redis
  PB_ERR_TEMPLATE_MISSING: { status: null, error: 'template_missing' },
  PB_ERR_CODEC: { status: null, error: 'undecodable' },
  // delivery: partner control
  PB_ERR_PARTNER_DISABLED: { status: null, error: 'partner_disabled' },
  // configuration: why a process refused to start (on stderr, exit 1)
  PB_ERR_SECRET_CONFLICT: { status: null, error: 'secret_conflict' },
  PB_ERR_SECRET_FILE: { status: null, error: 'secret_file_unusable' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** The codes ingest answers with: those with an HTTP status. */
export type HttpErrorCode = { [K in ErrorCode]: (typeof ERRORS)[K]['status'] extends number ? K : never }[ErrorCode];

/** An error ingest answers with: a stable `code` from {@link ERRORS} and its HTTP status. */
export class PostbackError extends Error {
  readonly code: HttpErrorCode;
  readonly status: number;
  readonly error: string;

  constructor(code: HttpErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PostbackError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.error = ERRORS[code].error;
  }
}

/** True when `err` is a {@link PostbackError}. */
export function isPostbackError(err: unknown): err is PostbackError {
  return err instanceof PostbackError;
}

/** True when `code` is a registered code (a value read back from Redis or a log, say). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERRORS, code);
}
