/**
 * Delivery's Prometheus metrics. Per-origin series are bounded: the first
 * MAX_ORIGIN_LABELS origins seen get their own label, later ones share
 * `other`, so a traffic source with a million partners cannot blow up the
 * scrape. Attempt counters are plain integers on the hot path, handed to
 * prom-client when it collects (at scrape time).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { StatsOutcome } from '../observability/stats.js';

const MAX_ORIGIN_LABELS = 100;

const OUTCOMES: readonly StatsOutcome[] = ['delivered', 'retry', 'dead', 'expired'];
const CLASSES = ['none', '1xx', '2xx', '3xx', '4xx', '5xx'] as const;

function classIndex(status: number | null): number {
  if (status === null) return 0;
  const c = Math.floor(status / 100);
  return c >= 1 && c <= 5 ? c : 0;
}

export class DeliveryMetrics {
  private readonly latency: Histogram;
  private readonly origins = new Set<string>();
  /** Attempts not yet handed to prom-client, by outcome x status class. */
  private readonly pending = new Float64Array(OUTCOMES.length * CLASSES.length);
  /** Per-origin attempts not yet handed over, by origin label x outcome. */
  private readonly pendingOrigins = new Map<string, Float64Array>();
  readonly parked: Counter;
  readonly held: Counter;
  readonly breakerTransitions: Counter<'to'>;
  readonly deadTrimmed: Counter<'reason'>;
  readonly reclaimed: Counter;
  readonly handedBack: Counter;
  /** 1 while postback.log takes writes; 0 while it refuses them and no attempt starts. */
  readonly attemptLogWritable: Gauge;

  constructor(registry: Registry, load: () => { waiting: number; inFlight: number }) {
    const registers = [registry];
    const pending = this.pending;
    new Counter({
      name: 'pb_delivery_attempts_total',
      help: 'Delivery attempts by outcome (delivered, retry, dead, expired) and HTTP status class',
      labelNames: ['outcome', 'status_class'],
      registers,
      collect() {
        OUTCOMES.forEach((o, oi) =>
          CLASSES.forEach((c, ci) => {
            const n = pending[oi * CLASSES.length + ci] as number;
            this.inc({ outcome: o, status_class: c }, n);
            pending[oi * CLASSES.length + ci] = 0;
          }),
        );
      },
    });
    this.latency = new Histogram({
      name: 'pb_delivery_latency_seconds',
      help: 'Time from attempt start to complete response (or failure)',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    const pendingOrigins = this.pendingOrigins;
    new Counter({
      name: 'pb_delivery_origin_attempts_total',
      help: `Attempts per partner origin (the first ${MAX_ORIGIN_LABELS} origins; the rest count as "other")`,
      labelNames: ['origin', 'outcome'],
      registers,
      collect() {
        for (const [origin, counts] of pendingOrigins) {
          OUTCOMES.forEach((o, oi) => {
            if ((counts[oi] as number) > 0) this.inc({ origin, outcome: o }, counts[oi]);
            counts[oi] = 0;
          });
        }
      },
    });
    this.parked = new Counter({ name: 'pb_delivery_parked_total', help: 'Postbacks parked back in Redis because their origin was saturated', registers });
    this.held = new Counter({ name: 'pb_delivery_held_total', help: 'Postbacks held in Redis because their partner was paused or its breaker open (no attempt counted)', registers });
    this.breakerTransitions = new Counter({
      name: 'pb_partner_breaker_transitions_total',
      help: 'Circuit breaker transitions this process made or saw first: to open, half-open (a probe), closed',
      labelNames: ['to'],
      registers,
    });
    this.deadTrimmed = new Counter({
      name: 'pb_dead_letters_trimmed_total',
      help: 'Dead letters removed by this process: reason age (older than DLQ_RETENTION_MS) or count (beyond DLQ_MAX)',
      labelNames: ['reason'],
      registers,
    });
    this.reclaimed = new Counter({ name: 'pb_delivery_reclaimed_entries_total', help: 'Entries reclaimed from stopped consumers', registers });
    this.handedBack = new Counter({ name: 'pb_delivery_handed_back_total', help: 'Postbacks handed back at shutdown', registers });
    this.attemptLogWritable = new Gauge({
      name: 'pb_delivery_attempt_log_writable',
      help: '1 while postback.log takes writes; 0 while it refuses them (disk full, file size limit) and no attempt starts',
      registers,
    });
    this.attemptLogWritable.set(1);
    new Gauge({
      name: 'pb_delivery_in_flight',
      help: 'Postbacks being attempted now',
      registers,
      collect() {
        this.set(load().inFlight);
      },
    });
    new Gauge({
      name: 'pb_delivery_waiting',
      help: 'Postbacks read and waiting for a free slot',
      registers,
      collect() {
        this.set(load().waiting);
      },
    });
  }

  attempt(outcome: StatsOutcome, status: number | null, latencyMs: number | null, origin: string): void {
    const oi = OUTCOMES.indexOf(outcome);
    (this.pending[oi * CLASSES.length + classIndex(status)] as number)++;
    if (latencyMs !== null) this.latency.observe(latencyMs / 1000);
    let counts = this.pendingOrigins.get(origin);
    if (counts === undefined) {
      const label = this.origins.has(origin) || this.origins.size < MAX_ORIGIN_LABELS ? origin : 'other';
      this.origins.add(label);
      counts = this.pendingOrigins.get(label);
      if (counts === undefined) {
        counts = new Float64Array(OUTCOMES.length);
        this.pendingOrigins.set(label, counts);
      }
    }
    (counts[oi] as number)++;
  }
}
