/**
 * Signed deliveries (SIGNING_SECRET), in one of two schemes
 * (SIGNING_SCHEME):
 *
 * - `postback` (the default, this project's own):
 *     X-Postback-Timestamp: <unix seconds>
 *     X-Postback-Signature: v1=<hex HMAC-SHA256>[,v1=<hex>]
 *   over `${id}\n${timestamp}\n${method}\n${url}\n${body}` (body empty for
 *   GET): the URL is signed too, so a GET postback's query is covered.
 * - `standard` (Standard Webhooks, verifiable with its libraries):
 *     webhook-id: <postback id, the same on every attempt>
 *     webhook-timestamp: <unix seconds, per attempt>
 *     webhook-signature: v1,<base64 HMAC-SHA256>[ v1,<base64>]
 *   over `${id}.${timestamp}.${body}`; a GET postback has no body, so its
 *   signed payload is empty (the URL is not covered: the spec signs bodies).
 *
 * Secrets are `whsec_<base64>` (the key is the decoded bytes, as Standard
 * Webhooks libraries read it) or raw text (its UTF-8 bytes). During a
 * rotation both secrets sign, so a receiver holding either one verifies.
 * Pure apart from the HMAC itself.
 */
import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';

export type SigningScheme = 'postback' | 'standard';

export const SIGNING_SCHEMES: readonly SigningScheme[] = ['postback', 'standard'];

const WHSEC = 'whsec_';

export interface Signer {
  /** The headers that sign one request, sent at `timestamp` (unix seconds). */
  headers(id: string, timestamp: number, method: string, url: string, body: string | null): Record<string, string>;
}

export function signedPayload(id: string, timestamp: number, method: string, url: string, body: string | null): string {
  return `${id}\n${timestamp}\n${method}\n${url}\n${body ?? ''}`;
}

/** What Standard Webhooks signs: `id.timestamp.body`. */
export function standardPayload(id: string, timestamp: number, body: string | null): string {
  return `${id}.${timestamp}.${body ?? ''}`;
}

/** The key bytes of a secret: `whsec_<base64>` decoded, else the text's UTF-8 bytes. */
export function secretBytes(secret: string): Buffer {
  return secret.startsWith(WHSEC) ? Buffer.from(secret.slice(WHSEC.length), 'base64') : Buffer.from(secret, 'utf8');
}

/** Why a secret is unusable, or null: whsec_ secrets must be base64 of 24 to 64 bytes; raw ones at least 16 characters. */
export function secretProblem(secret: string): string | null {
  if (secret.startsWith(WHSEC)) {
    const b64 = secret.slice(WHSEC.length);
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) return 'a whsec_ secret must be whsec_ followed by base64';
    const n = Buffer.from(b64, 'base64').length;
    return n >= 24 && n <= 64 ? null : `a whsec_ secret must decode to 24 to 64 bytes (this one: ${n})`;
  }
  return secret.length >= 16 ? null : 'a raw secret must be at least 16 characters';
}

/** Null without secrets (deliveries unsigned). */
export function createSigner(secrets: readonly string[], scheme: SigningScheme = 'postback'): Signer | null {
  if (secrets.length === 0) return null;
  const keys: KeyObject[] = secrets.map((s) => createSecretKey(secretBytes(s)));
  if (scheme === 'standard') {
    return {
      headers(id, timestamp, _method, _url, body) {
        const payload = standardPayload(id, timestamp, body);
        const signature = keys.map((key) => `v1,${createHmac('sha256', key).update(payload).digest('base64')}`).join(' ');
        return { 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': signature };
      },
    };
  }
  return {
    headers(id, timestamp, method, url, body) {
      const payload = signedPayload(id, timestamp, method, url, body);
      let header = '';
      for (const key of keys) {
        if (header !== '') header += ',';
        header += `v1=${createHmac('sha256', key).update(payload).digest('hex')}`;
      }
      return { 'x-postback-timestamp': String(timestamp), 'x-postback-signature': header };
    },
  };
}
