/**
 * Signed deliveries (SIGNING_SECRET): every request carries
 *   X-Postback-Timestamp: <unix seconds>
 *   X-Postback-Signature: v1=<hex HMAC-SHA256>[,v1=<hex>]
 * where the HMAC is over `${id}\n${timestamp}\n${method}\n${url}\n${body}`
 * (body empty for GET). During a rotation both secrets sign, so a receiver
 * holding either one verifies. Pure apart from the HMAC itself.
 */
import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';

export interface Signer {
  /** The headers that sign one request, sent at `timestamp` (unix seconds). */
  headers(id: string, timestamp: number, method: string, url: string, body: string | null): Record<string, string>;
}

export function signedPayload(id: string, timestamp: number, method: string, url: string, body: string | null): string {
  return `${id}\n${timestamp}\n${method}\n${url}\n${body ?? ''}`;
}

/** Null without secrets (deliveries unsigned). */
export function createSigner(secrets: readonly string[]): Signer | null {
  if (secrets.length === 0) return null;
  const keys: KeyObject[] = secrets.map((s) => createSecretKey(Buffer.from(s, 'utf8')));
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
