/**
 * Plain data that crosses the thread boundary: the batch the main thread
 * hands a worker, the record the worker returns per attempt, and the
 * settings a worker starts with. Workers never throw across threads (class
 * and `code` would be lost over postMessage): every attempt ends as an
 * {@link AttemptResult}.
 */
import type { ErrorCode } from '../errors.js';
import type { DataObject, Method } from '../postback/data.js';
import type { SigningScheme } from '../postback/signature.js';

/** `[template id, method, URL template]` */
export type BatchTemplate = [string, Method, string];
/** `[index into templates, postback id, data]` */
export type BatchItem = [number, string, DataObject];

/** What a worker needs of the batch's partner policy (a batch is one origin). */
export interface WorkerPolicy {
  timeoutMs: number;
  headers: Record<string, string>;
  /** Sign with SIGNING_SECRET (when set). */
  sign: boolean;
}

export interface BatchTask {
  templates: BatchTemplate[];
  items: BatchItem[];
  policy: WorkerPolicy;
}

export interface AttemptResult {
  /** Rendered URL ('' when it could not be rendered). */
  url: string;
  /** ms epoch at attempt start. */
  deliveryTime: number;
  /** ms epoch when the response was complete; null without a response. */
  responseTime: number | null;
  /** Monotonic duration of the attempt. */
  latencyMs: number;
  status: number | null;
  /** Response body, cut at RESPONSE_BODY_MAX bytes; null without a response. */
  body: string | null;
  /** A PB_ERR_* code when the attempt failed below HTTP (or redirected). */
  errorCode: ErrorCode | null;
  error: string | null;
  /** Raw Retry-After header of a response, for the retry policy. */
  retryAfter: string | null;
}

export interface WorkerSettings {
  timeoutMs: number;
  responseBodyMax: number;
  connectionsPerOrigin: number;
  encodedDefault: string;
  userAgent: string;
  allowPrivate: boolean;
  allowedCidrs: string[];
  allowedOrigins: string[];
  /** DELIVERY_DNS_SERVERS; empty: the system's resolver. */
  dnsServers: string[];
  signingSecrets: string[];
  signingScheme: SigningScheme;
  /**
   * PEM CA certificates trusted for https partners on top of Node's roots
   * (DELIVERY_CA_FILE's, and NODE_EXTRA_CA_CERTS's with them); empty: Node's trust as it is.
   */
  caCerts: string[];
}

/** The result of an attempt that got no response (or was never made). */
export function noResponse(url: string, errorCode: ErrorCode, error: string, now: number, status: number | null = null): AttemptResult {
  return { url, deliveryTime: now, responseTime: null, latencyMs: 0, status, body: null, errorCode, error, retryAfter: null };
}
