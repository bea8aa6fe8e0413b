/**
 * Pure: the control plane's records of a partner (what the partners hash
 * holds per origin, as JSON) and what they mean now. An operator's pause
 * (`partners pause`), an automatic one (a 429/503 with Retry-After; a
 * breaker open past PARTNER_DISABLE_AFTER_MS), and an operator's limit
 * (`partners limit`), each cluster-wide.
 */
import type { LimitOverride } from './policy.js';

export type PauseBy = 'operator' | 'retry-after' | 'breaker';

export interface Pause {
  /** ms epoch when it ends by itself; null: until resumed. */
  until: number | null;
  by: PauseBy;
  reason: string | null;
  /** ms epoch when it was set. */
  at: number;
}

export interface OriginControl {
  pause?: Pause;
  limit?: LimitOverride & { at: number };
}

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** The record of an origin, read tolerantly: what is malformed is left out. */
export function parseControl(json: string): OriginControl {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    return {};
  }
  const out: OriginControl = {};
  if (raw === null || typeof raw !== 'object') return out;
  const { pause, limit } = raw as { pause?: Record<string, unknown>; limit?: Record<string, unknown> };
  if (pause && typeof pause === 'object' && (pause.until === null || isNum(pause.until)) && ['operator', 'retry-after', 'breaker'].includes(pause.by as string)) {
    out.pause = { until: pause.until as number | null, by: pause.by as PauseBy, reason: typeof pause.reason === 'string' ? pause.reason : null, at: isNum(pause.at) ? pause.at : 0 };
  }
  if (limit && typeof limit === 'object') {
    const l: LimitOverride & { at: number } = { at: isNum(limit.at) ? limit.at : 0 };
    if (limit.rate === null || (isNum(limit.rate) && limit.rate > 0)) l.rate = limit.rate as number | null;
    if (limit.concurrency === null || (isNum(limit.concurrency) && limit.concurrency >= 1)) l.concurrency = limit.concurrency as number | null;
    if (l.rate !== undefined || l.concurrency !== undefined) out.limit = l;
  }
  return out;
}

/** The pause in force at `now`, or null. */
export function activePause(c: OriginControl | undefined, now: number): Pause | null {
  const p = c?.pause;
  if (p === undefined) return null;
  return p.until === null || p.until > now ? p : null;
}

/** A pause past its end, which the control plane may remove. */
export function expiredPause(c: OriginControl | undefined, now: number): boolean {
  const p = c?.pause;
  return p !== undefined && p.until !== null && p.until <= now;
}

/** A circuit breaker that is not closed, as the breakers hash holds it. */
export interface BreakerRecord {
  state: 'open' | 'half-open';
  /** ms epoch when it opened. */
  since: number;
  /** ms epoch of the next probe. */
  probeAt: number;
  /** Why it opened: "10 connection failures in a row", "12 of 20 attempts failed in 30 s". */
  reason: string;
}

export function parseBreaker(json: string): BreakerRecord | null {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    return null;
  }
  if (raw === null || typeof raw !== 'object') return null;
  const b = raw as Record<string, unknown>;
  if ((b.state !== 'open' && b.state !== 'half-open') || !isNum(b.since) || !isNum(b.probeAt)) return null;
  return { state: b.state, since: b.since, probeAt: b.probeAt, reason: typeof b.reason === 'string' ? b.reason : '' };
}

export type PartnerState = 'closed' | 'open' | 'half-open' | 'paused';

/** What an operator sees: a pause wins over the breaker's state. */
export function partnerState(pause: Pause | null, breaker: BreakerRecord | null): PartnerState {
  if (pause !== null) return 'paused';
  return breaker?.state ?? 'closed';
}

export type NormalizeOriginResult = { ok: true; origin: string } | { ok: false; message: string };

/**
 * An origin as an operator types it ("https://API.partner.com:443/",
 * "http://h:8080") in the form delivery keys it by: scheme://host[:port],
 * lower case, the default port left out.
 */
export function normalizeOrigin(raw: string): NormalizeOriginResult {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, message: `"${raw}" is not an origin (like https://api.partner.com or http://10.0.0.5:8080)` };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, message: `"${raw}": only http and https origins are delivered to` };
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    return { ok: false, message: `"${raw}" has more than scheme, host and port (an origin is like https://api.partner.com)` };
  }
  if (url.hostname.includes('*')) return { ok: false, message: `"${raw}": a pause or limit names one origin, not a pattern` };
  return { ok: true, origin: url.origin };
}
