/**
 * Pure: the records an entry's outcomes leave in Redis besides its
 * acknowledgement: a retry (the one postback, its attempts and last result
 * carried along), a dead letter (the postback whole, with its template, so
 * `dlq replay` can send it again), or at shutdown the part of the entry not
 * yet started, handed back.
 */
import type { DataObject } from '../postback/data.js';
import { encodeDeadLetter, encodeEntry, type Entry } from '../queue/codec.js';
import { postbackId } from '../postback/ids.js';
import type { AttemptResult } from './attempt.js';
import type { KnownTemplate } from './templates.js';

/** Item `k` of an entry as an entry of its own, `attempts` made, due later. */
export function retryEntry(e: Entry, k: number, attempts: number, r: AttemptResult): Buffer {
  return encodeEntry({
    ...e,
    firstIndex: e.firstIndex + k,
    attempts,
    items: [e.items[k] as DataObject],
    last: { status: r.status, errorCode: r.errorCode, error: r.error },
  });
}

export function deadLetter(
  e: Entry,
  template: KnownTemplate | undefined,
  k: number,
  attempts: number,
  outcome: 'dead' | 'expired',
  r: AttemptResult,
  now: number,
): Buffer {
  return encodeDeadLetter({
    id: postbackId(e.requestId, e.firstIndex + k),
    method: template?.stored.method ?? 'GET',
    template: template?.stored.url ?? '',
    url: r.url,
    data: e.items[k] as DataObject,
    requestTime: e.requestTime,
    attempts,
    outcome,
    status: r.status,
    errorCode: r.errorCode,
    error: r.error,
    body: r.body,
    deadTime: now,
  });
}

/** Items `k` to `end` (exclusive; the entry's end by default) of an entry, handed back to the stream unattempted. */
export function handBackEntry(e: Entry, k: number, end = e.items.length): Buffer {
  return encodeEntry({ ...e, firstIndex: e.firstIndex + k, items: e.items.slice(k, end) });
}

/** Item `k` alone, unattempted (its attempts so far and last result kept). */
export function itemEntry(e: Entry, k: number): Buffer {
  return encodeEntry({ ...e, firstIndex: e.firstIndex + k, items: [e.items[k] as DataObject] });
}
