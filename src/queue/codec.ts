/**
 * The wire format between ingest, Redis and delivery: MessagePack through
 * one Packr per process (`useRecords: false`, so every blob stands alone and
 * any process, of any version that knows the tag, can read it).
 *
 * An entry is a chunk of one request: the template id, request id and
 * ingest time once, then up to MAX_ITEMS_PER_ENTRY data objects. Sharing the
 * header across the chunk is what keeps Redis bandwidth per postback small.
 * A retry is an entry holding one item whose `attempts` is above zero.
 *
 * Entry layout v2 (written since f047e36; v1 is still read, so entries
 * queued by an older process are delivered after an upgrade; a delivery
 * process older than f047e36 cannot read v2 and dead-letters it whole,
 * which `dlq` replays: README, Upgrading and rolling back):
 *   [2, requestId, templateId, requestTime, dueTime - requestTime,
 *    firstIndex, attempts, keys, rows, (status, errorCode, error)?]
 * When every item has the same keys in the same order (what a traffic
 * source sends), `keys` holds them once and each row is the item's values
 * in that order; otherwise `keys` is null and rows are the items as maps.
 * The v1 sample's items take 22 bytes each instead of 31.
 */
import { Packr } from 'msgpackr';
import type { ErrorCode } from '../errors.js';
import type { DataObject, DataValue, Method } from '../postback/data.js';

const packr = new Packr({ useRecords: false, moreTypes: false, int64AsType: 'number' });

/** Largest number of postbacks written as one stream entry. */
export const MAX_ITEMS_PER_ENTRY = 64;

const ENTRY_V1 = 1;
const ENTRY_V2 = 2;
const TEMPLATE_V1 = 1;

/** What the last failed attempt returned, carried by retries for the dead letter. */
export interface LastAttempt {
  status: number | null;
  errorCode: ErrorCode | null;
  error: string | null;
}

export interface Entry {
  requestId: string;
  templateId: string;
  /** ms epoch when ingest accepted the request. */
  requestTime: number;
  /** ms epoch when the first attempt was due (ingest time + delay); the TTL counts from here. */
  dueTime: number;
  /** Index (within the request) of items[0]; item k has index firstIndex + k. */
  firstIndex: number;
  /** Attempts already made (0 for a fresh postback). */
  attempts: number;
  items: DataObject[];
  last: LastAttempt | null;
}

type EntryTuple = [number, string, string, number, number, number, number, ...unknown[]];

/** The keys every item shares, in order, or null when they differ. */
function sharedKeys(items: readonly DataObject[]): string[] | null {
  if (items.length < 2) return items.length === 1 ? Object.keys(items[0] as DataObject) : null;
  const keys = Object.keys(items[0] as DataObject);
  for (let i = 1; i < items.length; i++) {
    const other = Object.keys(items[i] as DataObject);
    if (other.length !== keys.length) return null;
    for (let k = 0; k < keys.length; k++) if (other[k] !== keys[k]) return null;
  }
  return keys;
}

export function encodeEntry(e: Entry): Buffer {
  const keys = sharedKeys(e.items);
  const rows = keys === null ? e.items : e.items.map((item) => keys.map((k) => item[k] as DataValue));
  const t: unknown[] = [ENTRY_V2, e.requestId, e.templateId, e.requestTime, e.dueTime - e.requestTime, e.firstIndex, e.attempts, keys, rows];
  if (e.last) t.push(e.last.status, e.last.errorCode, e.last.error);
  return packr.pack(t);
}

/** A blob in Redis that is not ours to decode: corrupt, or written by an unknown version. */
export class CodecError extends Error {
  readonly code: ErrorCode = 'PB_ERR_CODEC';
}

/** An item from its values in key order (a key named __proto__ stays a plain property). */
function itemOf(keys: readonly string[], row: unknown): DataObject {
  if (!Array.isArray(row) || row.length !== keys.length) throw new CodecError('not a postback entry (a row does not match its keys)');
  const item: DataObject = {};
  for (let k = 0; k < keys.length; k++) {
    const key = keys[k] as string;
    if (key === '__proto__') Object.defineProperty(item, key, { value: row[k], enumerable: true, writable: true, configurable: true });
    else item[key] = row[k] as DataValue;
  }
  return item;
}

function lastOf(t: unknown[], at: number): LastAttempt | null {
  return t.length > at ? { status: t[at] as number | null, errorCode: t[at + 1] as ErrorCode | null, error: t[at + 2] as string | null } : null;
}

export function decodeEntry(buf: Buffer | Uint8Array): Entry {
  const t = packr.unpack(buf) as EntryTuple;
  if (!Array.isArray(t)) throw new CodecError('not a postback entry (unknown version or shape)');
  if (t[0] === ENTRY_V2 && Array.isArray(t[8]) && (t[7] === null || Array.isArray(t[7]))) {
    const keys = t[7] as string[] | null;
    const rows = t[8] as unknown[];
    return {
      requestId: t[1],
      templateId: t[2],
      requestTime: t[3],
      dueTime: t[3] + t[4],
      firstIndex: t[5],
      attempts: t[6],
      items: keys === null ? (rows as DataObject[]) : rows.map((row) => itemOf(keys, row)),
      last: lastOf(t, 9),
    };
  }
  if (t[0] === ENTRY_V1 && Array.isArray(t[7])) {
    return {
      requestId: t[1],
      templateId: t[2],
      requestTime: t[3],
      dueTime: t[4],
      firstIndex: t[5],
      attempts: t[6],
      items: t[7] as DataObject[],
      last: lastOf(t, 8),
    };
  }
  throw new CodecError('not a postback entry (unknown version or shape)');
}

export interface StoredTemplate {
  method: Method;
  url: string;
}

export function encodeTemplate(t: StoredTemplate): Buffer {
  return packr.pack([TEMPLATE_V1, t.method, t.url]);
}

export function decodeTemplate(buf: Buffer | Uint8Array): StoredTemplate {
  const t = packr.unpack(buf) as [number, Method, string];
  if (!Array.isArray(t) || t[0] !== TEMPLATE_V1) throw new CodecError('not a postback template');
  return { method: t[1], url: t[2] };
}

/** A postback that will not be tried again, kept whole so it can be replayed. */
export interface DeadLetter {
  id: string;
  method: Method;
  /** The URL template, as ingested. */
  template: string;
  /** The URL of the last attempt, rendered (empty when never rendered). */
  url: string;
  data: DataObject;
  requestTime: number;
  attempts: number;
  outcome: 'dead' | 'expired';
  status: number | null;
  errorCode: ErrorCode | null;
  error: string | null;
  body: string | null;
  deadTime: number;
}

export function encodeDeadLetter(d: DeadLetter): Buffer {
  return packr.pack(d);
}

export function decodeDeadLetter(buf: Buffer | Uint8Array): DeadLetter {
  const d = packr.unpack(buf) as DeadLetter;
  if (d === null || typeof d !== 'object' || typeof d.id !== 'string') throw new CodecError('not a dead letter');
  return d;
}
