/**
 * The monitor's partners API: `GET /partners` (the cluster's partners
 * table as JSON), `GET /partners/<origin>` (one partner), and, only when
 * ADMIN_TOKENS is set, `POST /partners/<origin>/pause` (JSON body, all
 * optional: {"until": ISO time, "reason": text}) and `POST
 * /partners/<origin>/resume`, with `Authorization: Bearer <admin token>`
 * (compared in constant time; never an ingest token). Without ADMIN_TOKENS
 * the mutating endpoints answer 403, so an open monitor port can never
 * pause a partner. <origin> is URL-encoded (https%3A%2F%2Fapi.partner.com).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ERRORS, type HttpErrorCode } from '../errors.js';
import { createTokenCheck } from '../ingest/auth.js';
import type { Logger } from '../observability/logger.js';
import type { ControlKeys, ShardKeys } from '../queue/keys.js';
import type { RedisClient } from '../queue/redis.js';
import { parseTime } from '../dlq/args.js';
import { clearPause, setPause } from '../partners/control.js';
import { normalizeOrigin } from '../partners/control-state.js';
import type { PolicyTable } from '../partners/policy.js';
import { readPartnerTable } from '../partners/partner-table.js';
import { readPartnerStatus } from '../partners/status.js';

const BODY_MAX = 4_096;

export interface PartnersApiDeps {
  redis: RedisClient;
  keys: ControlKeys;
  shards: readonly ShardKeys[];
  /** PARTNERS_FILE's current table, or null. */
  table: () => PolicyTable | null;
  adminTokens: readonly string[];
  logger: Logger;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

/** A coded error answer of the monitor: `error` and status from src/errors.ts, and the code itself. */
export function fail(res: ServerResponse, code: HttpErrorCode, message: string, headers: Record<string, string> = {}): void {
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  send(res, ERRORS[code].status, { error: ERRORS[code].error, code, message });
}

function readBody(req: IncomingMessage): Promise<string | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const collect = (c: Buffer) => {
      size += c.length;
      if (size > BODY_MAX) {
        // Stop keeping it, and answer 413 (the caller closes the connection after).
        req.off('data', collect);
        req.resume();
        resolve(null);
        return;
      }
      chunks.push(c);
    };
    req.on('data', collect);
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', () => resolve(null));
  });
}

/** Handles /partners and /partners/...; false when the path is not ours. */
export function createPartnersApi(deps: PartnersApiDeps): (req: IncomingMessage, res: ServerResponse, path: string) => boolean {
  const admin = createTokenCheck(deps.adminTokens);
  const unavailable = (res: ServerResponse) => () => fail(res, 'PB_ERR_REDIS_UNAVAILABLE', 'Redis is unavailable', { 'retry-after': '1' });

  return (req, res, path) => {
    if (path !== '/partners' && !path.startsWith('/partners/')) return false;
    const now = Date.now();
    if (path === '/partners') {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        fail(res, 'PB_ERR_METHOD', 'GET /partners; POST /partners/<origin>/pause|resume', { allow: 'GET, HEAD' });
        return true;
      }
      readPartnerTable(deps.redis, deps.keys, deps.shards, deps.table(), now).then((partners) => send(res, 200, { at: now, partners }), unavailable(res));
      return true;
    }
    const rest = path.slice('/partners/'.length);
    const action = rest.endsWith('/pause') ? 'pause' : rest.endsWith('/resume') ? 'resume' : null;
    let raw: string;
    try {
      raw = decodeURIComponent(action === null ? rest : rest.slice(0, rest.lastIndexOf('/')));
    } catch {
      fail(res, 'PB_ERR_VALIDATION', 'the origin in the path must be URL-encoded');
      return true;
    }
    const o = normalizeOrigin(raw);
    if (!o.ok) {
      fail(res, 'PB_ERR_VALIDATION', o.message);
      return true;
    }
    const origin = o.origin;
    if (action === null) {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        fail(res, 'PB_ERR_METHOD', 'GET /partners/<origin>', { allow: 'GET, HEAD' });
        return true;
      }
      readPartnerStatus(deps.redis, deps.keys, deps.shards, deps.table(), origin, now).then((s) => send(res, 200, s), unavailable(res));
      return true;
    }
    if (req.method !== 'POST') {
      fail(res, 'PB_ERR_METHOD', `POST /partners/<origin>/${action}`, { allow: 'POST' });
      return true;
    }
    if (admin === null) {
      req.resume();
      fail(res, 'PB_ERR_ADMIN_DISABLED', 'pausing and resuming through the monitor is off: set ADMIN_TOKENS to allow it, or use the CLI (partners pause|resume)');
      return true;
    }
    if (!admin(req.headers.authorization)) {
      req.resume();
      fail(res, 'PB_ERR_UNAUTHORIZED', 'a valid admin token is required: Authorization: Bearer <one of ADMIN_TOKENS>', { 'www-authenticate': 'Bearer' });
      return true;
    }
    void (async () => {
      const text = await readBody(req);
      if (text === null) return fail(res, 'PB_ERR_TOO_LARGE', `the body must be JSON of at most ${BODY_MAX} bytes`, { connection: 'close' });
      let body: { until?: unknown; reason?: unknown } = {};
      if (text.trim() !== '') {
        try {
          body = JSON.parse(text) as typeof body;
        } catch {
          return fail(res, 'PB_ERR_BAD_JSON', 'the body is not valid JSON');
        }
        if (body === null || typeof body !== 'object' || Array.isArray(body)) return fail(res, 'PB_ERR_VALIDATION', 'the body must be a JSON object');
      }
      try {
        if (action === 'resume') {
          const changed = await clearPause(deps.redis, deps.keys, origin);
          deps.logger.info({ origin, via: 'monitor' }, 'partner resumed by an operator');
          return send(res, 200, { origin, resumed: changed });
        }
        let until: number | null = null;
        if (body.until !== undefined && body.until !== null) {
          until = typeof body.until === 'string' ? parseTime(body.until) : null;
          if (until === null) return fail(res, 'PB_ERR_VALIDATION', '"until" must be an ISO 8601 time, like 2026-11-28T14:00:00Z');
          if (until <= now) return fail(res, 'PB_ERR_VALIDATION', '"until" is already past');
        }
        if (body.reason !== undefined && typeof body.reason !== 'string') return fail(res, 'PB_ERR_VALIDATION', '"reason" must be a string');
        const reason = typeof body.reason === 'string' ? body.reason.slice(0, 200) : null;
        await setPause(deps.redis, deps.keys, origin, { until, by: 'operator', reason, at: now });
        deps.logger.info({ origin, until: until === null ? null : new Date(until).toISOString(), via: 'monitor' }, 'partner paused by an operator');
        return send(res, 200, { origin, paused: true, until: until === null ? null : new Date(until).toISOString() });
      } catch {
        return unavailable(res)();
      }
    })();
    return true;
  };
}
