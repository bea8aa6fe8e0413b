/**
 * Pure: idempotency keys at ingest. A request with `Idempotency-Key` that
 * repeats a key seen within INGEST_IDEMPOTENCY_TTL_MS gets the original
 * answer and queues nothing (enqueue-n.lua checks and records the key in
 * the same script run as the write). Keys are scoped per ingest token when
 * tokens are configured (two clients cannot collide), and stored as a
 * SHA-256 of scope and key (no client data in key names, fixed length).
 * The request's fingerprint (content type and body) tells a true retry
 * from the same key reused for another request (422).
 */
import { createHash } from 'node:crypto';

export const IDEMPOTENCY_HEADER = 'idempotency-key';

/** 1 to 200 printable ASCII characters, no space at either end. */
const KEY = /^[\x21-\x7e](?:[\x20-\x7e]{0,198}[\x21-\x7e])?$/;

export type ParseKeyResult = { ok: true; key: string | null } | { ok: false; message: string };

export function parseIdempotencyKey(raw: string | string[] | undefined): ParseKeyResult {
  if (raw === undefined) return { ok: true, key: null };
  if (Array.isArray(raw)) return { ok: false, message: 'Idempotency-Key must be sent once' };
  if (!KEY.test(raw)) return { ok: false, message: 'Idempotency-Key must be 1 to 200 printable ASCII characters, without spaces at either end' };
  return { ok: true, key: raw };
}

const sha256 = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');

/** The scope of a key: the client's token (hashed) when ingest has tokens, else one scope for all. */
export function scopeOf(authorization: string | undefined, tokensConfigured: boolean): string {
  if (!tokensConfigured || authorization === undefined) return '-';
  return sha256(authorization.slice(7).trim()).slice(0, 32);
}

export interface Idempotency {
  /** SHA-256 of scope and key: the key's name in Redis. */
  id: string;
  /** SHA-256 of the content type and body: the same request, or another under the same key. */
  fingerprint: string;
}

export function idempotencyOf(key: string, scope: string, contentType: string | undefined, body: Buffer): Idempotency {
  const h = createHash('sha256').update(contentType ?? '').update('\n').update(body);
  return { id: sha256(`${scope}\n${key}`), fingerprint: h.digest('hex').slice(0, 32) };
}

/** The shard a key's requests go to: always the same one, so the check and the write share a slot. */
export function shardFor(id: string, shards: number): number {
  return Number.parseInt(id.slice(0, 8), 16) % shards;
}

/** What enqueue-n.lua keeps per key: `<fingerprint>|<request id>|<postbacks accepted>`. */
export function recordOf(fingerprint: string, requestId: string, accepted: number): string {
  return `${fingerprint}|${requestId}|${accepted}`;
}

export function parseRecord(v: string): { fingerprint: string; requestId: string; accepted: number } | null {
  const [fingerprint, requestId, accepted] = v.split('|');
  if (fingerprint === undefined || requestId === undefined || accepted === undefined || !/^\d+$/.test(accepted)) return null;
  return { fingerprint, requestId, accepted: Number(accepted) };
}
