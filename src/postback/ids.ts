/**
 * Request ids: a random per-process prefix plus a counter, in base36.
 * Unique across processes and machines without coordination, short (they
 * travel in every entry and every log line), and ordered within a process.
 * A postback id is `<request id>:<index>`.
 */
import { randomBytes } from 'node:crypto';

export function createRequestIdGenerator(): () => string {
  // 48 random bits: collisions between processes are out of reach in practice.
  // Never a leading "-": an id is typed on command lines (`dlq replay <id>`).
  const prefix = randomBytes(6).toString('base64url').replace(/^-/, 'A');
  let counter = 0;
  return () => prefix + (counter++).toString(36);
}

export function postbackId(requestId: string, index: number): string {
  return `${requestId}:${index}`;
}
