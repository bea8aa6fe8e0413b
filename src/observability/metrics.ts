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
  // process wakes twice a second for it instead of 50 times.
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

/**
 * Queue gauges and pb_redis_up, refreshed from Redis on every scrape. All
 * gauges of one scrape share a single read (prom-client collects them
 * concurrently).
 */
export function registerQueueGauges(registry: Registry, redis: RedisClient, shards: readonly ShardKeys[]): void {
  let current: { at: number; read: Promise<QueueState | null> } | null = null;
  const read = (): Promise<QueueState | null> => {
    const now = Date.now();
    if (current === null || now - current.at > 250) {
      current = { at: now, read: readQueueState(redis, shards, now).catch(() => null) };
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
