/**
 * Bearer-token check for ingest (INGEST_TOKENS). Tokens are compared as
 * SHA-256 digests with `timingSafeEqual`, against every configured token,
 * so neither the length nor the content of a token leaks through timing.
 * Tokens never reach a log.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Null when no tokens are configured (open ingest). */
export function createTokenCheck(tokens: readonly string[]): ((authorization: string | undefined) => boolean) | null {
  if (tokens.length === 0) return null;
  const digests = tokens.map(digest);
  return (authorization) => {
    if (authorization === undefined || authorization.length < 8) return false;
    if (authorization.slice(0, 7).toLowerCase() !== 'bearer ') return false;
    const given = digest(authorization.slice(7).trim());
    let ok = false;
    for (const d of digests) ok = timingSafeEqual(d, given) || ok;
    return ok;
  };
}
