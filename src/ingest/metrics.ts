/**
 * Ingest's Prometheus metrics: requests by route and status, postbacks
 * accepted, request duration. Label children are cached so the hot path
 * does a Map lookup, not a label hash.
 */
import { Counter, Histogram, type Registry } from 'prom-client';

export class IngestMetrics {
  private readonly requests: Counter<'route' | 'status'>;
  private readonly duration: Histogram<'route'>;
  private readonly accepted: Counter;
  private readonly children = new Map<string, { inc(): void }>();
  private readonly timers = new Map<string, { observe(v: number): void }>();

  constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({
      name: 'pb_ingest_requests_total',
      help: 'Ingest HTTP requests by route and status',
      labelNames: ['route', 'status'],
      registers,
    });
    this.duration = new Histogram({
      name: 'pb_ingest_request_duration_seconds',
      help: 'Time from request start to response end',
      labelNames: ['route'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.accepted = new Counter({ name: 'pb_ingest_postbacks_accepted_total', help: 'Postbacks written to Redis', registers });
  }

  request(route: string, status: number, seconds: number): void {
    const key = `${route} ${status}`;
    let c = this.children.get(key);
    if (c === undefined) {
      c = this.requests.labels(route, String(status));
      this.children.set(key, c);
    }
    c.inc();
    let h = this.timers.get(route);
    if (h === undefined) {
      h = this.duration.labels(route);
      this.timers.set(route, h);
    }
    h.observe(seconds);
  }

  postbacks(n: number): void {
    this.accepted.inc(n);
  }
}
