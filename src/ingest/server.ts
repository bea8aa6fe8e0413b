/**
 * The ingest HTTP shell on raw node:http. Routing is a map lookup, replies
 * that never change are built once, and the only per-request work is what
 * the request itself demands: read, decode, validate, one Redis round trip,
 * answer. Every failure is a coded JSON error; nothing a client sends can
 * produce a 5xx other than 503 (Redis unavailable, shutting down).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import net, { type Socket } from 'node:net';
import type { RedisClient } from '../queue/redis.js';
import type { Registry } from 'prom-client';
import type { Config } from '../config/index.js';
import { PostbackError, isPostbackError } from '../errors.js';
import { originAllowed } from './exposure.js';
import type { Logger } from '../observability/logger.js';
import { createSigner } from '../postback/signature.js';
import { encodeDefault } from '../postback/template.js';
import { parseOriginPatterns } from '../postback/origin-pattern.js';
import type { PolicySource } from '../partners/policy-file.js';
import { USER_AGENT } from '../version.js';
import { bodyKind, decodeJson, decodeText, looksLikeJson, unsupportedEncoding, unsupportedType } from './body.js';
import { decodeForm } from './form.js';
import { overloaded, readBody } from './body-reader.js';
import { createTokenCheck } from './auth.js';
import { IngestMetrics } from './metrics.js';
import type { Enqueuer } from './enqueue.js';
import { RedisProbe } from '../queue/redis-probe.js';
import { validateIngest, type IngestLimits } from './parse-request.js';
import { buildPreview } from './preview.js';
import { IDEMPOTENCY_HEADER, idempotencyOf, parseIdempotencyKey, scopeOf, type Idempotency } from './idempotency.js';

export interface IngestDeps {
  config: Config;
  redis: RedisClient;
  enqueuer: Enqueuer;
  logger: Logger;
  nextId: () => string;
  /** Served at GET /metrics when given. */
  registry?: Registry;
  /** Partner policies, for /preview (their headers, signing). */
  policies?: PolicySource;
}

type Route = 'ingest' | 'preview' | 'healthz' | 'readyz' | 'metrics' | 'unknown';

const ROUTES = new Map<string, Route>([
  ['/i', 'ingest'],
  ['/ingest.php', 'ingest'],
  ['/preview', 'preview'],
  ['/healthz', 'healthz'],
  ['/readyz', 'readyz'],
  ['/metrics', 'metrics'],
]);

const JSON_TYPE = 'application/json; charset=utf-8';
/** On the answer to a repeated Idempotency-Key: the first request's answer, nothing queued now. */
const REPLAYED = { 'idempotent-replayed': 'true' };
const WARN_EVERY_MS = 10_000;
/** At shutdown, how long idle keep-alive connections still get answers before they are closed. */
const CLOSE_GRACE_MS = 1_000;

/** When a request started and which route it took, kept on its response for the metrics. */
const kStart = Symbol('start');
const kRoute = Symbol('route');
/** Body bytes the request holds of the process's in-flight budget (INGEST_MAX_INFLIGHT_BYTES). */
const kBytes = Symbol('bytes');
type Timed = ServerResponse & { [kStart]?: number; [kRoute]?: Route; [kBytes]?: number };
/**
 * The last response a connection started, so that a clientError reply
 * never jumps ahead of one still being produced. A property of the socket
 * (one per connection, gone with it), checked against the response's own
 * state: no per-request map entry or 'finish' listener.
 */
const kLatest = Symbol('latest');
type Tracked = Socket & { [kLatest]?: ServerResponse };

/**
 * A whole answer written straight to a socket that node:http no longer
 * answers on (a malformed request, CONNECT): JSON, then the connection closes.
 */
function rawAnswer(status: number, reason: string, body: string, extra = ''): string {
  return `HTTP/1.1 ${status} ${reason}\r\ncontent-type: ${JSON_TYPE}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n${body}`;
}

function errorBody(err: PostbackError): string {
  return JSON.stringify({ error: err.error, message: err.message });
}

const fixed = (code: ConstructorParameters<typeof PostbackError>[0], message: string): string =>
  errorBody(new PostbackError(code, message));

/** Replies that never change, serialised once. */
const REPLY = {
  notFound: fixed('PB_ERR_NOT_FOUND', 'no such path: POST /i or /ingest.php to ingest, /preview to preview'),
  methodPost: fixed('PB_ERR_METHOD', 'this path takes POST'),
  methodGet: fixed('PB_ERR_METHOD', 'this path takes GET'),
  redisDown: fixed('PB_ERR_REDIS_UNAVAILABLE', 'Redis is not connected; nothing was queued, retry later'),
  unauthorized: fixed('PB_ERR_UNAUTHORIZED', 'send Authorization: Bearer <token> with a configured ingest token'),
  closing: fixed('PB_ERR_SHUTTING_DOWN', 'this ingest process is shutting down; retry (another will answer)'),
  expectation: fixed('PB_ERR_EXPECTATION', 'the only Expect taken is 100-continue'),
  crossSite: fixed('PB_ERR_CROSS_SITE', 'a request from a web page (Origin header) is refused by an ingest without INGEST_TOKENS; nothing was queued'),
  alive: '{"status":"ok"}',
  ready: '{"status":"ready"}',
  notReady: '{"status":"not ready","redis":"down"}',
};

/**
 * The path and query of a request target: as sent (origin form, `/i`),
 * or out of an absolute URL (`POST http://host/i`, which HTTP/1.1 servers
 * must accept too).
 */
function target(url: string): string {
  if (url.charCodeAt(0) === 47 /* / */) return url;
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.pathname + u.search : url;
  } catch {
    return url;
  }
}

export interface IngestServer {
  server: Server;
  /** Stops taking requests, answers in-flight ones, closes idle sockets. Idempotent. */
  close(): Promise<void>;
}

export function createIngestServer(deps: IngestDeps): IngestServer {
  const { config, redis, enqueuer, logger, nextId, registry } = deps;
  const metrics = registry ? new IngestMetrics(registry) : null;
  // /readyz: Redis answering, not only connected (a hung Redis, a Cluster primary down).
  const probe = new RedisProbe(redis, config.ingest.writeTimeoutMs);
  const max = config.ingest.maxBodyBytes;
  const encodedDefault = encodeDefault(config.delivery.unmatchedDefault);
  const limits: IngestLimits = {
    maxItems: config.ingest.maxItems,
    maxUrlBytes: config.ingest.maxUrlBytes,
    maxRenderedUrlBytes: config.ingest.maxRenderedUrlBytes,
    encodedDefault,
    maxDelayMs: config.delivery.maxDelayMs,
    defaultDelayMs: config.delivery.delayMs,
    allowedOrigins: parseOriginPatterns(config.delivery.allowedOrigins),
  };
  const authorized = createTokenCheck(config.ingest.tokens);
  const signer = createSigner(config.delivery.signingSecrets, config.delivery.signingScheme);
  let closing = false;
  /**
   * Body bytes of the requests being read, parsed, written or answered:
   * at most INGEST_MAX_INFLIGHT_BYTES, so that memory is bounded by
   * configuration however many clients send at once (a request holds its
   * bytes until it is answered, or its client is gone).
   */
  const maxInflight = config.ingest.maxInflightBytes;
  let inflight = 0;
  const release = (res: Timed): void => {
    const n = res[kBytes];
    if (n === undefined || n === 0) return;
    inflight -= n;
    res[kBytes] = 0;
  };
  const reserver = (res: Timed) => (n: number): PostbackError | null => {
    if (inflight + n > maxInflight) return overloaded(maxInflight);
    inflight += n;
    res[kBytes] = (res[kBytes] ?? 0) + n;
    return null;
  };

  function send(res: Timed, status: number, body: string, extra?: Record<string, string>): void {
    release(res);
    if (res.headersSent || res.destroyed) return;
    if (metrics !== null) metrics.request(res[kRoute] ?? 'unknown', status, (performance.now() - (res[kStart] as number)) / 1000);
    const headers: Record<string, string | number> = {
      'content-type': JSON_TYPE,
      'content-length': Buffer.byteLength(body),
    };
    if (extra) Object.assign(headers, extra);
    if (closing) headers.connection = 'close';
    res.writeHead(status, headers);
    res.end(body);
  }

  /**
   * A service-side failure (Redis down or full) is logged once, then at
   * most every WARN_EVERY_MS per code with how many were not logged: a
   * full Redis refuses every request, and the log must not drown in it.
   */
  const warned = new Map<string, { at: number; quiet: number }>();
  function warnOnce(err: PostbackError, route: Route): void {
    const now = Date.now();
    const w = warned.get(err.code);
    if (w !== undefined && now - w.at < WARN_EVERY_MS) {
      w.quiet++;
      return;
    }
    logger.warn({ route, code: err.code, err: err.cause ?? err.message, ...(w ? { notLoggedSince: w.quiet } : {}) }, err.message);
    warned.set(err.code, { at: now, quiet: 0 });
  }

  function fail(res: ServerResponse, err: unknown, route: Route): void {
    if (isPostbackError(err)) {
      const extra: Record<string, string> = {};
      if (err.status === 503) extra['retry-after'] = err.code === 'PB_ERR_QUEUE_FULL' || err.code === 'PB_ERR_REDIS_FULL' ? '5' : '1';
      // The rest of the body is not read: the connection cannot carry another request.
      if (err.status === 413 || err.code === 'PB_ERR_OVERLOADED') extra.connection = 'close';
      send(res, err.status, errorBody(err), extra);
      if (err.status >= 500) warnOnce(err, route);
      return;
    }
    logger.error({ err, route }, 'ingest: unexpected error');
    send(res, 500, fixed('PB_ERR_INTERNAL', 'internal error; nothing was queued'));
  }

  function onBody(req: IncomingMessage, res: ServerResponse, route: Route, body: Buffer): void {
    let parsed;
    let idempotency: Idempotency | null = null;
    try {
      const encoding = req.headers['content-encoding'];
      if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') throw unsupportedEncoding(encoding);
      // node:http joins a repeated header with ", ": ask for them apart (rare, so only then).
      const rawKey = req.headers[IDEMPOTENCY_HEADER];
      const key = parseIdempotencyKey(rawKey !== undefined && (req.headersDistinct[IDEMPOTENCY_HEADER]?.length ?? 0) > 1 ? req.headersDistinct[IDEMPOTENCY_HEADER] : rawKey);
      if (!key.ok) throw new PostbackError('PB_ERR_VALIDATION', key.message);
      if (key.key !== null && route !== 'preview') {
        idempotency = idempotencyOf(key.key, scopeOf(req.headers.authorization, authorized !== null), req.headers['content-type'], body);
      }
      const kind = bodyKind(req.headers['content-type']);
      if (kind === null) throw unsupportedType(req.headers['content-type'] ?? '');
      const value = kind === 'json' || looksLikeJson(body) ? decodeJson(body) : decodeForm(decodeText(body), limits.maxItems);
      parsed = validateIngest(value, limits);
    } catch (err) {
      fail(res, err, route);
      return;
    }
    const requestId = nextId();
    const now = Date.now();
    if (route === 'preview') {
      const policyOf = deps.policies ? (origin: string) => (deps.policies as PolicySource).table.resolve(origin) : null;
      send(res, 200, JSON.stringify(buildPreview(parsed, requestId, encodedDefault, USER_AGENT, now, signer, policyOf, max)));
      return;
    }
    if (redis.status !== 'ready') {
      send(res, 503, REPLY.redisDown, { 'retry-after': '1' });
      return;
    }
    enqueuer.enqueue(parsed, requestId, now, idempotency).then(
      (r) => {
        if (r.replayed) {
          send(res, 202, `{"id":"${r.id}","accepted":${r.accepted}}`, REPLAYED);
          return;
        }
        metrics?.postbacks(r.accepted);
        send(res, 202, `{"id":"${r.id}","accepted":${r.accepted}}`);
      },
      (err: unknown) => fail(res, err, route),
    );
  }

  /**
   * What every answer starts with, whichever event brings the request: the
   * connection's latest response, the route, and (with metrics) the start
   * send() times it from.
   */
  function begin(req: IncomingMessage, res: ServerResponse): Route | undefined {
    (req.socket as Tracked)[kLatest] = res;
    const url = target(req.url ?? '/');
    const q = url.indexOf('?');
    const route = ROUTES.get(q === -1 ? url : url.slice(0, q));
    if (metrics !== null) {
      (res as Timed)[kStart] = performance.now();
      (res as Timed)[kRoute] = route ?? 'unknown';
    }
    return route;
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const route = begin(req, res);
    if (route === undefined) {
      send(res, 404, REPLY.notFound);
      return;
    }
    if (route === 'metrics') {
      if (registry === undefined) send(res, 404, REPLY.notFound);
      else
        registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
          (err: unknown) => fail(res, err, route),
        );
      return;
    }
    if (route === 'healthz' || route === 'readyz') {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        send(res, 405, REPLY.methodGet, { allow: 'GET, HEAD' });
      } else if (route === 'healthz') {
        send(res, 200, REPLY.alive);
      } else {
        if (redis.status !== 'ready' || closing) {
          send(res, 503, REPLY.notReady);
        } else {
          probe.answers().then(
            (ok) => send(res, ok && !closing ? 200 : 503, ok && !closing ? REPLY.ready : REPLY.notReady),
            (err: unknown) => fail(res, err, route),
          );
        }
      }
      return;
    }
    if (req.method !== 'POST') {
      send(res, 405, REPLY.methodPost, { allow: 'POST' });
      return;
    }
    if (authorized !== null && !authorized(req.headers.authorization)) {
      send(res, 401, REPLY.unauthorized, { 'www-authenticate': 'Bearer', connection: 'close' });
      return;
    }
    if (authorized === null && !originAllowed(req.headers.origin)) {
      send(res, 403, REPLY.crossSite, { connection: 'close' });
      return;
    }
    if (closing) {
      send(res, 503, REPLY.closing, { 'retry-after': '1' });
      return;
    }
    readBody(
      req,
      max,
      (err, body) => {
        if (err) fail(res, err, route);
        else if (body) onBody(req, res, route, body);
        else release(res); // the client went away mid-body
      },
      reserver(res),
    );
  }

  const server = createServer(
    {
      headersTimeout: config.ingest.headersTimeoutMs,
      maxHeaderSize: config.ingest.maxHeaderBytes,
      requestTimeout: config.ingest.requestTimeoutMs,
      keepAliveTimeout: config.ingest.keepAliveTimeoutMs,
      connectionsCheckingInterval: 1_000,
    },
    (req, res) => {
      try {
        handle(req, res);
      } catch (err) {
        fail(res, err, 'ingest');
      }
    },
  );
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    // Malformed or timed-out HTTP: answer if the socket still can, never crash.
    if (!socket.writable || err.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const [status, reason, code, message] =
      err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? ([408, 'Request Timeout', 'PB_ERR_TIMEOUT', 'the request took too long to arrive'] as const)
        : err.code === 'HPE_HEADER_OVERFLOW'
          ? ([431, 'Request Header Fields Too Large', 'PB_ERR_VALIDATION', 'request headers too large'] as const)
          : ([400, 'Bad Request', 'PB_ERR_VALIDATION', 'malformed HTTP request'] as const);
    const body = fixed(code, message);
    const reply = () => {
      if (!socket.writable) return void socket.destroy();
      socket.end(rawAnswer(status, reason, body));
    };
    // HTTP/1.1 answers in order: a complete request pipelined before the
    // bad one gets its answer first. (An error in the request still being
    // read, a timeout or a bad chunk, is that request's answer.)
    const pending = (socket as Tracked)[kLatest];
    if (pending !== undefined && !pending.req.complete && pending.headersSent) {
      // The request being read already has its answer (a 404, 405, 401 or
      // 413 sent before its body ended): one request, one answer; the
      // error (its body timing out, say) only closes the connection.
      if (pending.writableFinished) socket.destroy();
      else pending.once('close', () => socket.destroy());
      return;
    }
    if (pending !== undefined && pending.req.complete && !pending.writableFinished) {
      pending.once('finish', reply);
      pending.once('close', () => socket.destroy());
    } else {
      reply();
    }
  });

  // An Expect other than 100-continue: 417 as every other answer, a JSON error.
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    // Begun as handle() begins: without a start, the duration is NaN,
    // prom-client throws, and one header would stop the process.
    begin(req, res);
    send(res, 417, REPLY.expectation);
  });
  // CONNECT (a proxy's method): node:http would drop the socket unanswered.
  server.on('connect', (_req: IncomingMessage, socket: Socket) => {
    socket.end(rawAnswer(405, 'Method Not Allowed', REPLY.methodPost, 'allow: POST\r\n'));
  });

  let closed: Promise<void> | undefined;
  return {
    server,
    close() {
      closed ??= new Promise<void>((resolve) => {
        closing = true;
        // Stop accepting, but do not drop idle keep-alive connections at
        // once (http.Server.close would): a client may have a request on
        // its way on one, and would see a reset. For CLOSE_GRACE_MS every
        // request that arrives gets an answer (503 shutting_down, with
        // Connection: close, like every answer from now on); then the
        // connections still idle are closed, and the server ends once the
        // requests in progress are answered.
        net.Server.prototype.close.call(server, () => resolve());
        const grace = setTimeout(() => server.closeIdleConnections(), Math.min(CLOSE_GRACE_MS, config.ingest.keepAliveTimeoutMs));
        grace.unref();
      });
      return closed;
    },
  };
}
