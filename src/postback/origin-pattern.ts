/**
 * Pure: origin patterns, as partner policies, DELIVERY_ALLOWED_ORIGINS and
 * `dlq --origin` write them. An origin is scheme + host + port, as a URL's
 * `origin` gives it (`https://api.partner.com`, `http://10.0.0.5:8080`).
 * A pattern is an origin, or one whose host starts with `*.`, which matches
 * every subdomain of the rest (`https://*.pixel.example` matches
 * `https://a.pixel.example` and `https://a.b.pixel.example`, not
 * `https://pixel.example`). A port left out means the scheme's default.
 * Hosts are compared as the URL parser normalises them (lower case,
 * punycode), so `HTTPS://API.Partner.com:443` is `https://api.partner.com`.
 */

export interface OriginPattern {
  /** The pattern, normalised (`https://*.pixel.example`). */
  readonly source: string;
  /** True for a `*.` pattern. */
  readonly wildcard: boolean;
  /** How specific it is, for choosing among several matches: longer wins, exact beats wildcard. */
  readonly specificity: number;
  matches(origin: string): boolean;
}

export type ParseOriginPatternResult = { ok: true; pattern: OriginPattern } | { ok: false; message: string };

const WILDCARD_LABEL = 'xwildcardx';

export function parseOriginPattern(raw: string): ParseOriginPatternResult {
  const text = raw.trim();
  const scheme = /^(https?):\/\//i.exec(text);
  if (!scheme) return { ok: false, message: `"${raw}" must start with http:// or https://` };
  const rest = text.slice(scheme[0].length);
  const wildcard = rest.startsWith('*.');
  if (rest.slice(wildcard ? 2 : 0).includes('*')) return { ok: false, message: `"${raw}": a * may only open the host, as in https://*.example.com` };
  let url: URL;
  try {
    url = new URL(`${scheme[1]}://${wildcard ? `${WILDCARD_LABEL}.${rest.slice(2)}` : rest}`);
  } catch {
    return { ok: false, message: `"${raw}" is not an origin (scheme://host[:port])` };
  }
  if (url.username !== '' || url.password !== '') return { ok: false, message: `"${raw}" must not carry credentials` };
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '' || /^[^/]*\/\/[^/]+\/./.test(text)) {
    return { ok: false, message: `"${raw}" must be an origin only, without a path or query (scheme://host[:port])` };
  }
  const origin = url.origin;
  if (!wildcard) {
    return { ok: true, pattern: { source: origin, wildcard: false, specificity: 1_000 + origin.length, matches: (o) => o === origin } };
  }
  const prefix = `${url.protocol}//`;
  const suffix = origin.slice(prefix.length + WILDCARD_LABEL.length);
  const source = `${prefix}*${suffix}`;
  return {
    ok: true,
    pattern: {
      source,
      wildcard: true,
      specificity: source.length,
      matches: (o) => o.length > prefix.length + suffix.length && o.startsWith(prefix) && o.endsWith(suffix),
    },
  };
}

/**
 * The most specific of `patterns` matching `origin` (an exact pattern
 * first, then the longest wildcard), or undefined.
 */
export function bestMatch<P extends { pattern: OriginPattern }>(patterns: readonly P[], origin: string): P | undefined {
  let best: P | undefined;
  for (const p of patterns) {
    if (p.pattern.matches(origin) && (best === undefined || p.pattern.specificity > best.pattern.specificity)) best = p;
  }
  return best;
}

/**
 * A list of patterns already validated by the config module (a bad one
 * throws); null for an empty list, which means "any origin".
 */
export function parseOriginPatterns(list: readonly string[]): OriginPattern[] | null {
  if (list.length === 0) return null;
  return list.map((raw) => {
    const p = parseOriginPattern(raw);
    if (!p.ok) throw new Error(p.message);
    return p.pattern;
  });
}
