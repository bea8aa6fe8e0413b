/**
 * URL templates: parsing once, rendering per postback. Pure.
 *
 * A template is split once into literal parts and `{name}` placeholders by
 * a plain scan (no regex is ever built from user keys). The literal parts
 * are normalised by the WHATWG URL parser up front: each placeholder is
 * swapped for a marker, the URL is parsed and serialised, and the
 * serialisation is cut at the markers. Rendering is then string
 * concatenation of normalised literals and `encodeURIComponent` values,
 * whose result is already a valid href: the delivery hot path never parses
 * a URL when the origin holds no placeholder.
 */
import { createHash } from 'node:crypto';
import type { DataObject, Method } from './data.js';

export interface CompiledTemplate {
  /** Content address, see {@link templateId}. */
  readonly id: string;
  readonly method: Method;
  /** The template as ingested. */
  readonly source: string;
  /** Normalised literal parts; literals.length === names.length + 1. */
  readonly literals: readonly string[];
  readonly names: readonly string[];
  /** `scheme://host[:port]` when no placeholder touches it, else null. */
  readonly origin: string | null;
}

export type ParseTemplateResult = { ok: true; template: CompiledTemplate } | { ok: false; message: string };

interface Split {
  literals: string[];
  names: string[];
}

/** Splits `a{x}b{y}` into literals ['a','b',''] and names ['x','y']. */
export function splitPlaceholders(source: string): Split {
  const literals: string[] = [];
  const names: string[] = [];
  let lit = '';
  let i = 0;
  const n = source.length;
  while (i < n) {
    const open = source.indexOf('{', i);
    if (open === -1) {
      lit += source.slice(i);
      break;
    }
    const close = source.indexOf('}', open + 1);
    if (close === -1) {
      lit += source.slice(i);
      break;
    }
    const reopen = source.indexOf('{', open + 1);
    if (reopen !== -1 && reopen < close) {
      // "{a{b}": the first brace is literal text; rescan from the second.
      lit += source.slice(i, reopen);
      i = reopen;
      continue;
    }
    if (close === open + 1) {
      // "{}" is literal text, not a placeholder.
      lit += source.slice(i, close + 1);
      i = close + 1;
      continue;
    }
    lit += source.slice(i, open);
    literals.push(lit);
    names.push(source.slice(open + 1, close));
    lit = '';
    i = close + 1;
  }
  literals.push(lit);
  return { literals, names };
}

/** Marker bases tried before a template is refused (each must appear nowhere but at its placeholders). */
const MARKER_TRIES = 32;

function countOf(haystack: string, needle: string): number {
  let n = 0;
  for (let at = haystack.indexOf(needle); at !== -1; at = haystack.indexOf(needle, at + needle.length)) n++;
  return n;
}

/**
 * The template parsed with each placeholder swapped for a marker
 * (`<base><k>x`). The base must not occur in the URL but at the
 * placeholders, before and after the parser normalises it: it decodes
 * and case-folds the host (`%78PBMK`, fullwidth `ｘｐｂｍｋ` become
 * `xpbmk`), and a marker it made there would pass a value into the host.
 */
function parseWithMarkers(raw: readonly string[], names: readonly string[]): { url: URL; base: string } | 'invalid' | 'ambiguous' {
  const lower = raw.join('').toLowerCase();
  for (let k = -1; k < MARKER_TRIES; k++) {
    const base = k < 0 ? 'xpbmk' : `xpbmk${k}q`;
    if (lower.includes(base)) continue;
    let probe = raw[0] ?? '';
    for (let i = 0; i < names.length; i++) probe += `${base}${i}x` + (raw[i + 1] ?? '');
    let url: URL;
    try {
      url = new URL(probe);
    } catch {
      return 'invalid';
    }
    // More occurrences than placeholders: the parser made one; fewer: it
    // dropped one (checked below, with its name).
    if (countOf(url.href, base) <= names.length) return { url, base };
  }
  return 'ambiguous';
}

/**
 * Compiles a URL template. Fails (with a message naming `endpoint.url`) when
 * it is not an absolute http(s) URL, carries credentials, or places a
 * placeholder where a URL cannot hold one (the port, say).
 */
export function parseTemplate(method: Method, source: string): ParseTemplateResult {
  const { literals: raw, names } = splitPlaceholders(source);
  const parsed = parseWithMarkers(raw, names);
  if (parsed === 'invalid') return { ok: false, message: 'endpoint.url must be an absolute http:// or https:// URL' };
  if (parsed === 'ambiguous') return { ok: false, message: 'endpoint.url holds text that cannot be told apart from its placeholders' };
  const { url, base } = parsed;
  const marker = (k: number): string => `${base}${k}x`;
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { ok: false, message: 'endpoint.url must use http:// or https://' };
  }
  if (url.hostname === '') return { ok: false, message: 'endpoint.url must name a host' };
  if (url.username !== '' || url.password !== '') {
    return { ok: false, message: 'endpoint.url must not carry credentials (user:password@)' };
  }
  if (url.port.includes(base)) {
    return { ok: false, message: 'endpoint.url cannot take a placeholder in the port' };
  }

  const href = url.href;
  const literals: string[] = [];
  let pos = 0;
  for (let k = 0; k < names.length; k++) {
    const m = marker(k);
    const at = href.indexOf(m, pos);
    if (at === -1) {
      return { ok: false, message: `endpoint.url placeholder {${names[k]}} sits where a URL cannot keep it` };
    }
    literals.push(href.slice(pos, at));
    pos = at + m.length;
  }
  literals.push(href.slice(pos));

  const origin = url.origin;
  const fixed = !origin.includes(base) && href.startsWith(origin) && (names.length === 0 || href.indexOf(marker(0)) >= origin.length);
  return {
    ok: true,
    template: { id: templateId(method, source), method, source, literals, names, origin: fixed ? origin : null },
  };
}

function encodeValue(v: string | number | boolean): string {
  const s = typeof v === 'string' ? v : String(v);
  try {
    return encodeURIComponent(s);
  } catch {
    // Lone UTF-16 surrogates: encode the well-formed equivalent (U+FFFD).
    return encodeURIComponent((s as unknown as { toWellFormed(): string }).toWellFormed());
  }
}

/** Encodes the configured default once, for {@link render}. */
export function encodeDefault(unmatchedDefault: string): string {
  return encodeValue(unmatchedDefault);
}

/**
 * Renders a compiled template for one data object: each `{name}` becomes
 * `encodeURIComponent(String(value))`; a name the object lacks (or holds as
 * null) becomes `encodedDefault`. Single pass, no regex.
 */
export function render(t: CompiledTemplate, data: DataObject, encodedDefault: string): string {
  const { literals, names } = t;
  let out = literals[0] as string;
  for (let k = 0; k < names.length; k++) {
    const name = names[k] as string;
    const v = Object.hasOwn(data, name) ? data[name] : null;
    out += v === null || v === undefined ? encodedDefault : encodeValue(v);
    out += literals[k + 1] as string;
  }
  return out;
}

/**
 * The path (and query) to send for a rendered href whose template has a fixed
 * origin: what follows the origin, without any fragment.
 */
export function requestPath(t: CompiledTemplate, href: string): string {
  const start = (t.origin as string).length;
  const hash = href.indexOf('#', start);
  const path = hash === -1 ? href.slice(start) : href.slice(start, hash);
  return path === '' ? '/' : path;
}

/** Content address of a template: the same method and URL give the same id anywhere. */
export function templateId(method: Method, source: string): string {
  return createHash('sha1').update(method).update('\n').update(source).digest('base64url').slice(0, 16);
}

/**
 * The origin a data object's request goes to: the template's fixed origin,
 * or, with a placeholder in the host, its rendering's (null when that is
 * not a valid http(s) URL without credentials).
 */
export function renderedOrigin(t: CompiledTemplate, data: DataObject, encodedDefault: string): string | null {
  if (t.origin !== null) return t.origin;
  try {
    const u = new URL(render(t, data, encodedDefault));
    if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.username !== '' || u.password !== '') return null;
    return u.origin;
  } catch {
    return null;
  }
}
