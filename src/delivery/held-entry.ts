/**
 * What the delivery main thread holds for an entry it read: the decoded
 * entry, its template, the outcomes gathered so far (what the finalizer
 * will write atomically with the acknowledgement) and how many of its
 * postbacks still lack one. A {@link Job} is one postback of it on its way
 * through the scheduler.
 */
import type { DataObject } from '../postback/data.js';
import { postbackId } from '../postback/ids.js';
import type { Entry } from '../queue/codec.js';
import type { ShardKeys } from '../queue/keys.js';
import type { BatchItem, BatchTask, BatchTemplate, WorkerPolicy } from './attempt.js';
import type { EntryOutcome, Finalizer } from './finalizer.js';
import type { Promoter } from './promoter.js';
import type { StreamReader } from './reader.js';
import type { KnownTemplate } from './templates.js';

/** One queue shard's readers and writers. */
export interface Shard {
  keys: ShardKeys;
  reader: StreamReader;
  finalizer: Finalizer;
  promoter: Promoter;
}

export interface HeldEntry extends EntryOutcome {
  shard: Shard;
  entry: Entry;
  /** The entry as read (parked whole, or dead-lettered when undecodable). */
  blob: Buffer;
  template: KnownTemplate | undefined;
  /** Postbacks without an outcome yet. */
  remaining: number;
  /** Last time Redis was told we hold it (read, reclaim or heartbeat). */
  touchedAt: number;
}

export interface Job {
  held: HeldEntry;
  /** Item index within the entry. */
  k: number;
  /** The origin it goes to (its scheduling key): the template's, or its own rendering's. */
  origin: string;
  /** The postback id, set when the job is sent (built once per postback). */
  id?: string;
  /** Sent as a circuit breaker's probe while the breaker is open. */
  probe?: boolean;
}

/** Key of a held entry: its stream and id. */
export function heldKey(stream: string, id: string): string {
  return `${stream} ${id}`;
}

/** A freshly read entry, held with no outcome yet. */
export function holdEntry(shard: Shard, stream: string, id: string, blob: Buffer, entry: Entry, now: number): HeldEntry {
  return {
    shard,
    stream,
    id,
    finished: 0,
    retries: [],
    deadLetters: [],
    handBack: [],
    held: [],
    entry,
    blob,
    template: undefined,
    remaining: entry.items.length,
    touchedAt: now,
  };
}

/**
 * The plain task a batch of jobs becomes for a worker thread: each
 * template once, each postback as [template index, id, data]. Sets each
 * job's id (built once per postback, here).
 */
export function toBatchTask(jobs: readonly Job[], policy: WorkerPolicy): BatchTask {
  const templates: BatchTemplate[] = [];
  const index = new Map<string, number>();
  const items: BatchItem[] = jobs.map((job) => {
    const e = job.held.entry;
    let ti = index.get(e.templateId);
    if (ti === undefined) {
      const t = job.held.template as KnownTemplate;
      ti = templates.push([e.templateId, t.stored.method, t.stored.url]) - 1;
      index.set(e.templateId, ti);
    }
    job.id = postbackId(e.requestId, e.firstIndex + job.k);
    return [ti, job.id, e.items[job.k] as DataObject];
  });
  return { templates, items, policy };
}
