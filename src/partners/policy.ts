/**
 * Pure: partner policies. A policy file (PARTNERS_FILE) maps origin
 * patterns to what a partner asks of us; anything a policy leaves unset
 * falls back to the environment's defaults. This module validates a file's
 * content (already parsed from JSON or YAML) with messages that name the
 * origin and the field, resolves the policy of an origin (an exact pattern
 * before the longest `*.` one), and merges runtime overrides.
 *
 *   {"partners": {
 *     "https://api.capped.example": {"rate": 200, "burst": 20, "concurrency": 50},
 *     "https://*.pixel.example":    {"success": ["2xx", "3xx"]},
 *     "https://api.keyed.example":  {"headers": {"X-Api-Key": "..."}, "timeoutMs": 3000,
 *                                    "maxAttempts": 8, "retryOn": ["5xx", "429", "408"]}
 *   }}
 */
import { bestMatch, parseOriginPattern, type OriginPattern } from '../postback/origin-pattern.js';
import { hasStatus, parseStatusSet, type StatusSet } from './status-set.js';

export interface BreakerSettings {
  /** Opens when at least this share of the attempts in the window failed... */
  failureRatio: number;
  windowMs: number;
  /** ...and the window holds at least this many attempts. */
  minAttempts: number;
  /** Or on this many connection failures or timeouts in a row. */
  consecutiveFailures: number;
  /** While open, one probe for the whole cluster this often. */
  probeIntervalMs: number;
}

export interface Backoff {
  baseMs: number;
  maxMs: number;
  /** Explicit delays before attempt 2, 3, ... (the last repeats); replaces base/max. */
  delaysMs: number[] | null;
}

/** Everything delivery does per partner, defaults and policy merged. */
export interface PartnerPolicy {
  /** The pattern that matched, or null for the defaults. */
  pattern: string | null;
  /** Requests per second for the whole cluster, and the burst on top; null: no limit. */
  rate: number | null;
  burst: number;
  /** In flight for the whole cluster; null: no limit beyond the process's own. */
  concurrency: number | null;
  timeoutMs: number;
  maxAttempts: number;
  backoff: Backoff;
  success: StatusSet;
  retryOn: StatusSet;
  /** Added to every request. */
  headers: Readonly<Record<string, string>>;
  signing: boolean;
  breaker: BreakerSettings;
}

/** The environment's defaults (config), the base of every policy. */
export interface PolicyDefaults {
  timeoutMs: number;
  /** The longest timeout a policy may set (DELIVERY_VISIBILITY_MS and SHUTDOWN_TIMEOUT_MS bound it). */
  maxTimeoutMs: number;
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  signing: boolean;
  breaker: BreakerSettings;
}

export interface PolicyTable {
  /** Patterns and their policies, as written. */
  readonly entries: readonly { pattern: OriginPattern; policy: PartnerPolicy }[];
  readonly defaults: PartnerPolicy;
  /** The policy of an origin: the most specific pattern's, or the defaults. */
  resolve(origin: string): PartnerPolicy;
}

export type ParsePoliciesResult = { ok: true; table: PolicyTable } | { ok: false; problems: string[] };

const DEFAULT_SUCCESS = parseStatusSet(['2xx']);
const DEFAULT_RETRY_ON = parseStatusSet(['5xx', '429', '408']);
const FIELDS = new Set(['rate', 'burst', 'concurrency', 'timeoutMs', 'maxAttempts', 'backoff', 'success', 'retryOn', 'headers', 'signing', 'breaker']);
const BREAKER_FIELDS = new Set(['failureRatio', 'windowMs', 'minAttempts', 'consecutiveFailures', 'probeIntervalMs']);
/** Headers the service sets itself, or that HTTP reserves. */
const RESERVED_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer', 'proxy-connection', 'expect', 'user-agent', 'content-type']);
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const DAY_MS = 86_400_000;

function ok<T>(r: { ok: true; set: T } | { ok: false }): T {
  if (!r.ok) throw new Error('bad built-in status set');
  return r.set;
}

export function defaultPolicy(d: PolicyDefaults): PartnerPolicy {
  return {
    pattern: null,
    rate: null,
    burst: 1,
    concurrency: null,
    timeoutMs: d.timeoutMs,
    maxAttempts: d.maxAttempts,
    backoff: { baseMs: d.backoffBaseMs, maxMs: d.backoffMaxMs, delaysMs: null },
    success: ok(DEFAULT_SUCCESS),
    retryOn: ok(DEFAULT_RETRY_ON),
    headers: {},
    signing: d.signing,
    breaker: d.breaker,
  };
}

/** Reads one policy's fields over the defaults; each problem names the origin and the field. */
function readPolicy(where: string, raw: unknown, base: PartnerPolicy, maxTimeoutMs: number, problems: string[]): PartnerPolicy {
  const p: PartnerPolicy = { ...base, backoff: { ...base.backoff }, breaker: { ...base.breaker } };
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    problems.push(`${where}: must be an object of settings`);
    return p;
  }
  const bad = (field: string, what: string) => problems.push(`${where}: ${field} ${what}`);
  const num = (field: string, v: unknown, min: number, max: number, integer: boolean): number | undefined => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
      bad(field, `must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max} (got ${JSON.stringify(v)})`);
      return undefined;
    }
    return v;
  };
  const o = raw as Record<string, unknown>;
  for (const key of Object.keys(o)) if (!FIELDS.has(key)) bad(key, `is not a setting (one of ${[...FIELDS].join(', ')})`);
  if (o.rate !== undefined) p.rate = num('rate', o.rate, 0.001, 1_000_000, false) ?? null;
  if (o.burst !== undefined) p.burst = num('burst', o.burst, 1, 1_000_000, true) ?? p.burst;
  else if (p.rate !== null) p.burst = Math.max(1, Math.ceil(p.rate / 10));
  if (o.burst !== undefined && o.rate === undefined) bad('burst', 'needs a rate');
  if (o.concurrency !== undefined) p.concurrency = num('concurrency', o.concurrency, 1, 100_000, true) ?? null;
  if (o.timeoutMs !== undefined) {
    // Longer would let live attempts be reclaimed (DELIVERY_VISIBILITY_MS) or cut at shutdown.
    p.timeoutMs = num('timeoutMs', o.timeoutMs, 10, maxTimeoutMs, true) ?? p.timeoutMs;
  }
  if (o.maxAttempts !== undefined) p.maxAttempts = num('maxAttempts', o.maxAttempts, 1, 100, true) ?? p.maxAttempts;
  if (o.backoff !== undefined) {
    if (Array.isArray(o.backoff)) {
      const delays = o.backoff.map((v, i) => num(`backoff[${i}]`, v, 1, 7 * DAY_MS, true));
      if (o.backoff.length === 0) bad('backoff', 'must list at least one delay');
      else if (delays.every((v) => v !== undefined)) p.backoff.delaysMs = delays as number[];
    } else if (o.backoff !== null && typeof o.backoff === 'object') {
      const b = o.backoff as Record<string, unknown>;
      for (const key of Object.keys(b)) if (key !== 'baseMs' && key !== 'maxMs') bad(`backoff.${key}`, 'is not a setting (baseMs, maxMs)');
      if (b.baseMs !== undefined) p.backoff.baseMs = num('backoff.baseMs', b.baseMs, 1, DAY_MS, true) ?? p.backoff.baseMs;
      if (b.maxMs !== undefined) p.backoff.maxMs = num('backoff.maxMs', b.maxMs, 1, 7 * DAY_MS, true) ?? p.backoff.maxMs;
      if (p.backoff.baseMs > p.backoff.maxMs) bad('backoff', `baseMs (${p.backoff.baseMs}) must not exceed maxMs (${p.backoff.maxMs})`);
    } else {
      bad('backoff', 'must be {"baseMs": ..., "maxMs": ...} or a list of delays in ms');
    }
  }
  for (const field of ['success', 'retryOn'] as const) {
    const v = o[field];
    if (v === undefined) continue;
    if (!Array.isArray(v) || !v.every((s) => typeof s === 'string' || typeof s === 'number')) {
      bad(field, 'must be a list of statuses or classes, like ["2xx", "3xx"] or ["5xx", 429]');
      continue;
    }
    const set = parseStatusSet(v.map(String));
    if (set.ok) p[field] = set.set;
    else bad(field, set.message);
  }
  if (o.headers !== undefined) {
    if (o.headers === null || typeof o.headers !== 'object' || Array.isArray(o.headers)) {
      bad('headers', 'must be an object of header names and string values');
    } else {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(o.headers as Record<string, unknown>)) {
        const lower = name.toLowerCase();
        if (!TOKEN.test(name) || lower === '__proto__') bad(`headers.${name}`, 'is not a valid header name');
        else if (RESERVED_HEADERS.has(lower) || lower.startsWith('x-postback-')) bad(`headers.${name}`, 'is set by the service itself and cannot be replaced');
        // What an HTTP/1.1 field value may hold and undici sends: tabs, visible
        // ASCII and space, and bytes 0x80 to 0xFF (sent as such). Anything else
        // (control characters, a character such as "€") undici refuses per
        // request, which would fail every postback to the partner.
        else if (typeof value !== 'string' || /[^\t\x20-\x7e\x80-\xff]/.test(value) || value.length > 8_192) {
          bad(`headers.${name}`, 'must be a string of at most 8,192 characters: printable ASCII, spaces and tabs (no line breaks or other control characters, nothing past U+00FF)');
        }
        else headers[lower] = value;
      }
      p.headers = headers;
    }
  }
  if (o.signing !== undefined) {
    if (typeof o.signing === 'boolean') p.signing = o.signing;
    else bad('signing', 'must be true or false');
  }
  if (o.breaker !== undefined) {
    if (o.breaker === null || typeof o.breaker !== 'object' || Array.isArray(o.breaker)) {
      bad('breaker', 'must be an object');
    } else {
      const b = o.breaker as Record<string, unknown>;
      for (const key of Object.keys(b)) if (!BREAKER_FIELDS.has(key)) bad(`breaker.${key}`, `is not a setting (one of ${[...BREAKER_FIELDS].join(', ')})`);
      if (b.failureRatio !== undefined) p.breaker.failureRatio = num('breaker.failureRatio', b.failureRatio, 0.01, 1, false) ?? p.breaker.failureRatio;
      if (b.windowMs !== undefined) p.breaker.windowMs = num('breaker.windowMs', b.windowMs, 1_000, 3_600_000, true) ?? p.breaker.windowMs;
      if (b.minAttempts !== undefined) p.breaker.minAttempts = num('breaker.minAttempts', b.minAttempts, 1, 1_000_000, true) ?? p.breaker.minAttempts;
      if (b.consecutiveFailures !== undefined) p.breaker.consecutiveFailures = num('breaker.consecutiveFailures', b.consecutiveFailures, 1, 1_000_000, true) ?? p.breaker.consecutiveFailures;
      if (b.probeIntervalMs !== undefined) p.breaker.probeIntervalMs = num('breaker.probeIntervalMs', b.probeIntervalMs, 100, 3_600_000, true) ?? p.breaker.probeIntervalMs;
    }
  }
  return p;
}

function table(entries: { pattern: OriginPattern; policy: PartnerPolicy }[], defaults: PartnerPolicy): PolicyTable {
  return {
    entries,
    defaults,
    resolve: (origin) => bestMatch(entries, origin)?.policy ?? defaults,
  };
}

/** A table with no policies: every origin gets the defaults. */
export function emptyTable(d: PolicyDefaults): PolicyTable {
  return table([], defaultPolicy(d));
}

/** Validates a policy file's content (parsed JSON or YAML). */
export function parsePolicies(doc: unknown, d: PolicyDefaults): ParsePoliciesResult {
  const problems: string[] = [];
  const defaults = defaultPolicy(d);
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return { ok: false, problems: ['the file must hold an object with "partners"'] };
  for (const key of Object.keys(doc)) if (key !== 'partners') problems.push(`"${key}" is not a top-level key (only "partners")`);
  const partners = (doc as { partners?: unknown }).partners;
  if (partners === undefined || partners === null || typeof partners !== 'object' || Array.isArray(partners)) {
    return { ok: false, problems: [...problems, '"partners" must be an object of origin patterns to policies'] };
  }
  const entries: { pattern: OriginPattern; policy: PartnerPolicy }[] = [];
  const seen = new Set<string>();
  for (const [key, raw] of Object.entries(partners as Record<string, unknown>)) {
    const parsed = parseOriginPattern(key);
    if (!parsed.ok) {
      problems.push(`${key}: ${parsed.message}`);
      continue;
    }
    if (seen.has(parsed.pattern.source)) problems.push(`${key}: the same origin as another entry (${parsed.pattern.source})`);
    seen.add(parsed.pattern.source);
    const policy = readPolicy(key, raw, defaults, d.maxTimeoutMs, problems);
    entries.push({ pattern: parsed.pattern, policy: { ...policy, pattern: parsed.pattern.source } });
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, table: table(entries, defaults) };
}

/** Runtime overrides an operator set (partners limit), over a policy. */
export interface LimitOverride {
  rate?: number | null;
  concurrency?: number | null;
}

export function withOverride(p: PartnerPolicy, o: LimitOverride | undefined): PartnerPolicy {
  if (o === undefined) return p;
  const rate = o.rate !== undefined ? o.rate : p.rate;
  return {
    ...p,
    rate,
    burst: o.rate !== undefined && o.rate !== null && o.rate !== p.rate ? Math.max(1, Math.ceil(o.rate / 10)) : p.burst,
    concurrency: o.concurrency !== undefined ? o.concurrency : p.concurrency,
  };
}

/** Whether a status counts as delivered, retried, or failed for good, under a policy. */
export function statusVerdict(p: PartnerPolicy, status: number): 'success' | 'retryable' | 'permanent' {
  if (hasStatus(p.success, status)) return 'success';
  if (hasStatus(p.retryOn, status)) return 'retryable';
  return 'permanent';
}
