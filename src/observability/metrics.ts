/**
 * Prometheus metrics (prom-client): one registry per process with the
 * default process metrics (CPU, heap, event-loop lag, GC), the role's own
 * counters, and, where asked, the queue gauges read from Redis at scrape
 * time (so they describe the whole cluster, whichever process answers).
 */
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { RedisClient } from '../queue/redis.js';
import type { ShardKeys } from '../queue/keys.js';
import { readQueueState, type QueueState } from '../queue/state.js';

export function createRegistry(role: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ role });
  // Event-loop lag sampled every 500 ms: enough to see a stall, and an idle
  // process wakes twice a second for it instead of 100 times. Node's
  // histogram records the interval between samples, so the
  // nodejs_eventloop_lag_p* gauges read 0.5 s plus the delay
  // (docs/OPERATIONS.md says so).
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 500 });
  return registry;
}

const GAUGES: [keyof QueueState, string, string][] = [
  ['postbacks', 'pb_queue_postbacks', 'Postbacks not finished: waiting, delayed, retrying or in flight'],
  ['freshEntries', 'pb_queue_entries_fresh', 'Entries in the first-attempt stream (each holds up to 64 postbacks)'],
  ['retryEntries', 'pb_queue_entries_retry', 'Entries in the retry stream'],
  ['delayed', 'pb_queue_delayed', 'Delayed first attempts waiting for their time'],
  ['retries', 'pb_queue_retries', 'Retries waiting for their time'],
  ['deadLetters', 'pb_dead_letters', 'Dead letters kept (dlq list)'],
  ['lagSeconds', 'pb_queue_lag_seconds', 'Age of the oldest entry still in a stream'],
  ['pending', 'pb_queue_pending_entries', 'Entries read by a consumer and not yet acknowledged'],
  ['consumers', 'pb_queue_consumers', 'Consumers in the delivery group'],
];

/** The longest a scrape waits for the queue's state before it says Redis is down. */
const QUEUE_READ_MAX_MS = 2_000;

/** Scrapes this close together (ms) share one read from Redis: of the queue's state, and of the partner rows. */
export const SCRAPE_READ_SHARED_MS = 250;

/**
 * Queue gauges and pb_redis_up, refreshed from Redis on every scrape. All
 * gauges of one scrape share a single read (prom-client collects them
 * concurrently).
 */
export function registerQueueGauges(
  registry: Registry,
  redis: RedisClient,
  shards: readonly ShardKeys[],
  /** Given every state read for a scrape (the monitor keeps them for its dashboard's queue charts). */
  onRead: (state: QueueState, at: number) => void = () => undefined,
): void {
  let current: { at: number; read: Promise<QueueState | null> } | null = null;
  const read = (): Promise<QueueState | null> => {
    const now = Date.now();
    if (current === null || now - current.at > SCRAPE_READ_SHARED_MS) {
      // Bounded: delivery's connection queues commands while Redis is away,
      // and a scrape must still answer (pb_redis_up 0) well inside
      // Prometheus's 10 s scrape timeout, with the attempt counters.
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), QUEUE_READ_MAX_MS);
      });
      current = {
        at: now,
        read: Promise.race([
          readQueueState(redis, shards, now).then(
            (state) => {
              onRead(state, now);
              return state;
            },
            () => null,
          ),
          late,
        ]).finally(() => clearTimeout(timer)),
      };
    }
    return current.read;
  };
  for (const [key, name, help] of GAUGES) {
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        const state = await read();
        if (state) this.set(Number(state[key]));
      },
    });
  }
  new Gauge({
    name: 'pb_redis_up',
    help: '1 when Redis answered the last scrape',
    registers: [registry],
    async collect() {
      this.set((await read()) === null ? 0 : 1);
    },
  });
}

/** Partners given their own series at most (trouble first, then the busiest); the rest are summed in the totals. */
export const MAX_PARTNER_LABELS = 100;

/** What the partner gauges need of a partners-table row. */
export interface PartnerGaugeRow {
  origin: string;
  state: 'closed' | 'open' | 'half-open' | 'paused';
  waiting: number;
  inFlight: number;
}

/**
 * Per-partner gauges read from Redis at scrape time (the whole cluster):
 * state (1 for the partner's current state) and waiting, for at most
 * MAX_PARTNER_LABELS partners, plus counts by state over all of them.
 */
export function registerPartnerGauges(registry: Registry, read: () => Promise<PartnerGaugeRow[]>, liveDelivery: () => Promise<number>): void {
  new Gauge({
    name: 'pb_delivery_processes',
    help: 'Delivery processes that sent a heartbeat in the last 15 s (the whole cluster)',
    registers: [registry],
    async collect() {
      const n = await liveDelivery().catch(() => null);
      if (n !== null) this.set(n);
    },
  });
  let current: { at: number; read: Promise<PartnerGaugeRow[] | null> } | null = null;
  const rows = (): Promise<PartnerGaugeRow[] | null> => {
    const now = Date.now();
    if (current === null || now - current.at > SCRAPE_READ_SHARED_MS) current = { at: now, read: read().catch(() => null) };
    return current.read;
  };
  const registers = [registry];
  new Gauge({
    name: 'pb_partner_state',
    help: `1 for each partner's circuit state (closed, open, half-open, paused); the first ${MAX_PARTNER_LABELS} partners, trouble first`,
    labelNames: ['origin', 'state'],
    registers,
    async collect() {
      const r = await rows();
      this.reset();
      if (r) for (const row of r.slice(0, MAX_PARTNER_LABELS)) this.set({ origin: row.origin, state: row.state }, 1);
    },
  });
  new Gauge({
    name: 'pb_partner_waiting',
    help: `Postbacks waiting per partner (in delivery processes and held in Redis); the first ${MAX_PARTNER_LABELS} partners`,
    labelNames: ['origin'],
    registers,
    async collect() {
      const r = await rows();
      this.reset();
      if (r) for (const row of r.slice(0, MAX_PARTNER_LABELS)) this.set({ origin: row.origin }, row.waiting);
    },
  });
  new Gauge({
    name: 'pb_partners',
    help: 'Partners by circuit state, over all of them (closed counts only the active ones)',
    labelNames: ['state'],
    registers,
    async collect() {
      const r = await rows();
      if (r === null) return;
      const counts: Record<PartnerGaugeRow['state'], number> = { closed: 0, open: 0, 'half-open': 0, paused: 0 };
      for (const row of r) counts[row.state]++;
      for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
    },
  });
}
