/**
 * Pure: an ingest body (already decoded to a plain value) in, a validated
 * request or a coded error naming the bad field out. No I/O, no config
 * reads: limits come in as a plain object.
 */
import { PostbackError } from '../errors.js';
import type { DataObject, Method } from '../postback/data.js';
import { parseTemplate, render, renderedOrigin, type CompiledTemplate } from '../postback/template.js';
import type { OriginPattern } from '../postback/origin-pattern.js';

export interface IngestLimits {
  /** DELIVERY_ALLOWED_ORIGINS, parsed; null: any origin. */
  allowedOrigins?: readonly OriginPattern[] | null;
  maxItems: number;
  maxUrlBytes: number;
  /** Longest URL one data object may render to. */
  maxRenderedUrlBytes: number;
  /** UNMATCHED_DEFAULT, encoded (it counts toward the rendered length). */
  encodedDefault: string;
  maxDelayMs: number;
  defaultDelayMs: number;
}

export interface IngestRequest {
  template: CompiledTemplate;
  items: DataObject[];
  delayMs: number;
}

const invalid = (message: string): PostbackError => new PostbackError('PB_ERR_VALIDATION', message);

/** ES2024's String methods: Node 20 has them, the ES2023 lib does not declare them. */
type WellFormed = { isWellFormed(): boolean; toWellFormed(): string };

/**
 * A string with every lone UTF-16 surrogate (a `\ud800` escape without its
 * pair: valid JSON, not text) replaced by U+FFFD, as URL encoding replaces
 * it anyway. Done here, once, so that the postback stored, /preview and the
 * request delivered all carry the same text: MessagePack's UTF-8 cannot
 * hold a lone surrogate, and turned each into three U+FFFD on the way.
 */
function wellFormed(s: string): string {
  return (s as unknown as WellFormed).isWellFormed() ? s : (s as unknown as WellFormed).toWellFormed();
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/**
 * Compiled templates by method + URL. Traffic sources send the same few
 * templates millions of times: compile each once. Bounded: cleared when full.
 */
const templateCache = new Map<string, CompiledTemplate | string>();
const TEMPLATE_CACHE_MAX = 10_000;

function compile(method: Method, url: string): CompiledTemplate {
  const key = method === 'GET' ? url : `POST ${url}`;
  let hit = templateCache.get(key);
  if (hit === undefined) {
    const res = parseTemplate(method, url);
    hit = res.ok ? res.template : res.message;
    if (templateCache.size >= TEMPLATE_CACHE_MAX) templateCache.clear();
    templateCache.set(key, hit);
  }
  if (typeof hit === 'string') throw invalid(hit);
  return hit;
}

function parseMethod(v: unknown): Method {
  if (typeof v !== 'string') throw invalid(`endpoint.method must be "GET" or "POST", not ${describe(v)}`);
  // ASCII letters only: toUpperCase folds "poſt" (long s) into "POST".
  const up = /^[A-Za-z]{3,4}$/.test(v) ? v.toUpperCase() : '';
  if (up === 'GET' || up === 'POST') return up;
  throw invalid(`endpoint.method must be "GET" or "POST" (got ${JSON.stringify(v.slice(0, 20))})`);
}

function parseDelay(v: unknown, limits: IngestLimits): number {
  if (v === undefined || v === null) return limits.defaultDelayMs;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > limits.maxDelayMs) {
    throw invalid(`endpoint.delay_ms must be an integer from 0 to ${limits.maxDelayMs}`);
  }
  return v;
}

const PLAIN_KEY = /^[A-Za-z_$][\w$]{0,63}$/;

/** `data[3].foo`, or `data[3]["odd key"]` (cut at 64 characters). */
function field(i: number, key: string): string {
  return PLAIN_KEY.test(key) ? `data[${i}].${key}` : `data[${i}][${JSON.stringify(key.slice(0, 64))}]`;
}

function checkItem(item: unknown, i: number): DataObject {
  if (item === null || typeof item !== 'object' || Array.isArray(item)) {
    throw invalid(`data[${i}] must be an object, not ${describe(item)}`);
  }
  let oddKeys: string[] | undefined;
  for (const key in item) {
    const v = (item as Record<string, unknown>)[key];
    if (wellFormed(key) !== key) (oddKeys ??= []).push(key);
    switch (typeof v) {
      case 'string':
        if (wellFormed(v) !== v) (item as Record<string, unknown>)[key] = wellFormed(v);
        continue;
      case 'boolean':
        continue;
      case 'number':
        if (!Number.isFinite(v)) throw invalid(`${field(i, key)} must be a finite number`);
        if (Number.isInteger(v) && !Number.isSafeInteger(v)) {
          throw invalid(`${field(i, key)} is an integer beyond 2^53 and would lose digits: send it as a string`);
        }
        continue;
      case 'object':
        if (v === null) continue;
        throw invalid(`${field(i, key)} must be a string, number, boolean or null, not ${describe(v)}`);
      default:
        throw invalid(`${field(i, key)} must be a string, number, boolean or null, not ${describe(v)}`);
    }
  }
  if (Object.hasOwn(item, '__proto__')) throw invalid(`data[${i}] must not have a key named "__proto__"`);
  if (oddKeys !== undefined) {
    const rec = item as Record<string, unknown>;
    for (const key of oddKeys) {
      const fixed = wellFormed(key);
      if (Object.hasOwn(rec, fixed)) throw invalid(`${field(i, fixed)} is given twice (once with a lone UTF-16 surrogate in its name)`);
      rec[fixed] = rec[key];
      delete rec[key];
    }
  }
  return item as DataObject;
}

/**
 * Refuses a data object whose rendered URL would pass the limit. Cheap in
 * the common case: an upper bound (an encoded UTF-16 unit takes at most 9
 * bytes) settles it without rendering; only near the limit is it rendered.
 */
function checkRenderedLength(t: CompiledTemplate, item: DataObject, i: number, limits: IngestLimits): void {
  let bound = 0;
  for (const lit of t.literals) bound += lit.length;
  for (const name of t.names) {
    const v = Object.hasOwn(item, name) ? item[name] : null;
    bound += v === null || v === undefined ? limits.encodedDefault.length : 9 * String(v).length;
  }
  if (bound <= limits.maxRenderedUrlBytes) return;
  const length = render(t, item, limits.encodedDefault).length;
  if (length > limits.maxRenderedUrlBytes) {
    throw invalid(`data[${i}] makes a URL of ${length} bytes; the limit is ${limits.maxRenderedUrlBytes}`);
  }
}

const notAllowed = (what: string, origin: string): PostbackError =>
  new PostbackError('PB_ERR_ORIGIN_NOT_ALLOWED', `${what} goes to ${origin.slice(0, 200)}, which DELIVERY_ALLOWED_ORIGINS does not allow`);

/**
 * DELIVERY_ALLOWED_ORIGINS: a fixed origin is checked once; a template with
 * a placeholder in the host is rendered per data object and each checked.
 */
function checkOrigins(t: CompiledTemplate, items: readonly DataObject[], allowed: readonly OriginPattern[], encodedDefault: string): void {
  const ok = (origin: string) => allowed.some((p) => p.matches(origin));
  if (t.origin !== null) {
    if (!ok(t.origin)) throw notAllowed('endpoint.url', t.origin);
    return;
  }
  for (let i = 0; i < items.length; i++) {
    const origin = renderedOrigin(t, items[i] as DataObject, encodedDefault);
    if (origin === null) throw invalid(`data[${i}] makes endpoint.url an invalid URL (check the values used in its host)`);
    if (!ok(origin)) throw notAllowed(`data[${i}]`, origin);
  }
}

/** Validates a decoded ingest body (JSON or form) against the contract. */
export function validateIngest(body: unknown, limits: IngestLimits): IngestRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw invalid(`the body must be a JSON object with "endpoint" and "data", not ${describe(body)}`);
  }
  const { endpoint, data } = body as { endpoint?: unknown; data?: unknown };
  if (endpoint === null || typeof endpoint !== 'object' || Array.isArray(endpoint)) {
    throw invalid(endpoint === undefined ? 'endpoint is required' : `endpoint must be an object, not ${describe(endpoint)}`);
  }
  const ep = endpoint as { method?: unknown; url?: unknown; delay_ms?: unknown };
  const method = parseMethod(ep.method);
  if (typeof ep.url !== 'string') {
    throw invalid(ep.url === undefined ? 'endpoint.url is required' : `endpoint.url must be a string, not ${describe(ep.url)}`);
  }
  const url = wellFormed(ep.url);
  if (Buffer.byteLength(url) > limits.maxUrlBytes) {
    throw invalid(`endpoint.url is longer than ${limits.maxUrlBytes} bytes`);
  }
  const template = compile(method, url);
  const delayMs = parseDelay(ep.delay_ms, limits);

  if (!Array.isArray(data)) {
    throw invalid(data === undefined ? 'data is required' : `data must be an array, not ${describe(data)}`);
  }
  if (data.length === 0) throw invalid('data must hold at least one object');
  if (data.length > limits.maxItems) throw invalid(`data holds ${data.length} items; the limit is ${limits.maxItems}`);
  for (let i = 0; i < data.length; i++) checkRenderedLength(template, checkItem(data[i], i), i, limits);
  if (limits.allowedOrigins) checkOrigins(template, data as DataObject[], limits.allowedOrigins, limits.encodedDefault);
  return { template, items: data as DataObject[], delayMs };
}
