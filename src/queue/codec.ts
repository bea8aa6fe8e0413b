/**
 * The wire format between ingest, Redis and delivery: MessagePack through
 * one Packr per process (`useRecords: false`, so every blob stands alone and
 * any process, of any version that knows the tag, can read it).
 *
 * An entry is a chunk of one request: the template id, request id and
 * ingest time once, then up to MAX_ITEMS_PER_ENTRY data objects. Sharing the
 * header across the chunk is what keeps Redis bandwidth per postback small.
 * A retry is an entry holding one item whose `attempts` is above zero.
 */
import { Packr } from 'msgpackr';
import type { ErrorCode } from '../errors.js';
import type { DataObject, Method } from '../postback/data.js';

const packr = new Packr({ useRecords: false, moreTypes: false, int64AsType: 'number' });

/** Largest number of postbacks written as one stream entry. */
export const MAX_ITEMS_PER_ENTRY = 64;

const ENTRY_V1 = 1;
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

type EntryTuple = [number, string, string, number, number, number, number, DataObject[], ...unknown[]];

export function encodeEntry(e: Entry): Buffer {
  const t: unknown[] = [
    ENTRY_V1,
    e.requestId,
    e.templateId,
    e.requestTime,
    e.dueTime,
    e.firstIndex,
    e.attempts,
    e.items,
  ];
  if (e.last) t.push(e.last.status, e.last.errorCode, e.last.error);
  return packr.pack(t);
}

/** A blob in Redis that is not ours to decode: corrupt, or written by an unknown version. */
export class CodecError extends Error {
  readonly code: ErrorCode = 'PB_ERR_CODEC';
}

export function decodeEntry(buf: Buffer | Uint8Array): Entry {
  const t = packr.unpack(buf) as EntryTuple;
  if (!Array.isArray(t) || t[0] !== ENTRY_V1 || !Array.isArray(t[7])) {
    throw new CodecError('not a postback entry (unknown version or shape)');
  }
  return {
    requestId: t[1],
    templateId: t[2],
    requestTime: t[3],
    dueTime: t[4],
    firstIndex: t[5],
    attempts: t[6],
    items: t[7],
    last: t.length > 8 ? { status: t[8] as number | null, errorCode: t[9] as ErrorCode | null, error: t[10] as string | null } : null,
  };
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
