/**
 * Reads a request body as a stream with a byte limit: a declared
 * Content-Length over the limit is refused before reading, a stream that
 * grows past it is cut off at the limit. Callback-based (no promise per
 * request on the hot path).
 */
import type { IncomingMessage } from 'node:http';
import { PostbackError } from '../errors.js';

export type BodyCallback = (err: PostbackError | null, body: Buffer | null) => void;

export function tooLarge(max: number): PostbackError {
  return new PostbackError('PB_ERR_TOO_LARGE', `the body is larger than ${max} bytes`);
}

export function overloaded(maxInflight: number): PostbackError {
  return new PostbackError('PB_ERR_OVERLOADED', `this ingest process is reading and answering ${maxInflight} bytes of requests already (INGEST_MAX_INFLIGHT_BYTES); nothing was queued, retry`);
}

/**
 * `reserve(n)`: takes n more bytes from the process's in-flight budget,
 * false when it has no room (the request is then refused, overloaded).
 */
export function readBody(req: IncomingMessage, max: number, done: BodyCallback, reserve: (n: number) => PostbackError | null = () => null): void {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > max) {
    done(tooLarge(max), null);
    return;
  }
  let chunks: Buffer[] = [];
  let size = 0;
  let settled = false;
  const onData = (chunk: Buffer): void => {
    size += chunk.length;
    const refused = size > max ? tooLarge(max) : reserve(chunk.length);
    if (refused !== null) {
      settled = true;
      chunks = [];
      req.removeListener('data', onData);
      req.pause();
      done(refused, null);
      return;
    }
    chunks.push(chunk);
  };
  req.on('data', onData);
  req.once('end', () => {
    if (settled) return;
    settled = true;
    done(null, chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
  });
  req.once('error', () => {
    // The client went away mid-body: there is nobody to answer.
    if (settled) return;
    settled = true;
    done(null, null);
  });
}
