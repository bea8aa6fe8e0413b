/**
 * Turns outcomes into records: for each attempt result (or a postback
 * expired before its attempt, or one whose template is gone, or an entry
 * parked) it decides with the retry policy, writes the attempt log line,
 * counts it in the per-second statistics and the Prometheus metrics, and
 * adds the retry or dead letter to the held entry's outcome. When an
 * entry has an outcome for every postback it is handed to `complete`
 * (which gives it to the finalizer). Synchronous and free of Redis: the
 * finalizer writes, the promoter is only told when a retry is due.
 */
import type { DataObject } from '../postback/data.js';
import { postbackId } from '../postback/ids.js';
import { render } from '../postback/template.js';
import type { AttemptLog } from '../observability/logger.js';
import type { StatsRecorder } from '../observability/stats.js';
import { noResponse, type AttemptResult } from './attempt.js';
import { attemptLine, attemptLineJson, expiryLine } from './attempt-log.js';
import type { HeldEntry, Job } from './held-entry.js';
import type { DeliveryMetrics } from './metrics.js';
import { deadLetter, handBackEntry, itemEntry, retryEntry } from './outcome-records.js';
import { classify } from './outcome.js';
import { decide } from './retry-policy.js';
import type { PartnerPolicy } from '../partners/policy.js';

export interface RecorderDeps {
  /** The partner policy in force for an origin (retries, which statuses succeed). */
  policyOf: (origin: string) => PartnerPolicy;
  ttlMs: number;
  /** UNMATCHED_DEFAULT, encoded (to render the URL of an expired postback). */
  encodedDefault: string;
  attemptLog: Pick<AttemptLog, 'write'>;
  stats: StatsRecorder;
  metrics: DeliveryMetrics;
  /** Every postback of the entry has an outcome: hand it to the finalizer. */
  complete: (held: HeldEntry) => void;
  random?: () => number;
}

export class OutcomeRecorder {
  private readonly random: () => number;

  constructor(private readonly deps: RecorderDeps) {
    this.random = deps.random ?? Math.random;
  }

  /** One attempt's result: delivered, retried later, or dead (spent, permanent, or past its deadline). */
  attempt(job: Job, r: AttemptResult, now: number): void {
    const { held, k, origin } = job;
    const e = held.entry;
    const id = job.id ?? postbackId(e.requestId, e.firstIndex + k);
    const attempt = e.attempts + 1;
    const policy = this.deps.policyOf(origin);
    const retry = { maxAttempts: policy.maxAttempts, backoffBaseMs: policy.backoff.baseMs, backoffMaxMs: policy.backoff.maxMs, delaysMs: policy.backoff.delaysMs };
    const decision = decide(classify(r.status, r.errorCode, policy), attempt, r.retryAfter, e.dueTime + this.deps.ttlMs, now, retry, this.random());
    if (decision.outcome === 'delivered' && r.errorCode === 'PB_ERR_REDIRECT') {
      // A partner whose policy counts 3xx as delivered (a pixel): not an error.
      r.errorCode = null;
      r.error = null;
    }
    this.deps.stats.attempt(decision.outcome, r.latencyMs, origin, now);
    this.deps.metrics.attempt(decision.outcome, r.status, r.latencyMs, origin);
    const method = held.template?.stored.method ?? null;
    this.deps.attemptLog.write(attemptLineJson(attemptLine(id, method, attempt, e.requestTime, r, decision.outcome, decision.outcome === 'retry' ? decision.dueAt : undefined)));
    switch (decision.outcome) {
      case 'delivered':
        held.finished++;
        break;
      case 'retry':
        held.retries.push([decision.dueAt, retryEntry(e, k, attempt, r)]);
        held.shard.promoter.kick(decision.dueAt);
        break;
      case 'dead':
      case 'expired':
        held.finished++;
        held.deadLetters.push(deadLetter(e, held.template, k, attempt, decision.outcome, r, now));
        break;
    }
    if (--held.remaining === 0) this.deps.complete(held);
  }

  /** The entry is past its deadline before any attempt: every postback expires, unattempted. */
  expireAll(held: HeldEntry, now: number): void {
    const e = held.entry;
    const t = held.template;
    const origin = t?.origin ?? 'unknown';
    for (let k = 0; k < e.items.length; k++) {
      const line = expiryLine(postbackId(e.requestId, e.firstIndex + k), t?.stored.method ?? null, e.attempts, e.requestTime);
      if (t?.compiled) line.url = render(t.compiled, e.items[k] as DataObject, this.deps.encodedDefault);
      this.deps.attemptLog.write(attemptLineJson(line));
      this.deps.stats.attempt('expired', null, origin, now);
      this.deps.metrics.attempt('expired', null, null, origin);
      // The dead letter keeps what the last real attempt said, if there was one.
      const last = e.last;
      const result = noResponse(line.url, last?.errorCode ?? 'PB_ERR_EXPIRED', last?.error ?? line.error ?? '', now, last?.status ?? null);
      held.deadLetters.push(deadLetter(e, t, k, e.attempts, 'expired', result, now));
      held.finished++;
    }
    held.remaining = 0;
    this.deps.complete(held);
  }

  /** The entry's template is not in Redis: each postback fails for good (an attempt is counted). */
  templateMissing(held: HeldEntry, now: number): void {
    const error = `template ${held.entry.templateId} is not in Redis`;
    for (let k = 0; k < held.entry.items.length; k++) this.attempt({ held, k, origin: 'unknown' }, noResponse('', 'PB_ERR_TEMPLATE_MISSING', error, now), now);
  }

  /**
   * Postbacks `ks` of an entry are held in Redis for their origin (its
   * partner is paused, or its breaker open), until released: no attempt
   * is made or counted. They are scored by when their TTL runs out (the
   * first to expire go first; expired ones are released to be logged as
   * expired). The rest of the entry (`ks` is ascending) is the caller's. A
   * run to the entry's end is held as one entry.
   */
  hold(held: HeldEntry, origin: string, ks: readonly number[]): void {
    const e = held.entry;
    const n = e.items.length;
    const first = ks[0] as number;
    const expiresAt = e.dueTime + this.deps.ttlMs;
    if (ks.length === n - first) {
      held.held.push([origin, ks.length, expiresAt, first === 0 ? held.blob : handBackEntry(e, first)]);
    } else {
      for (const k of ks) held.held.push([origin, 1, expiresAt, itemEntry(e, k)]);
    }
    this.deps.metrics.held.inc(ks.length);
    held.remaining -= ks.length;
    if (held.remaining === 0) this.deps.complete(held);
  }

  /**
   * A circuit breaker's probe failed: the attempt is logged (marked
   * `probe`) and counted in the metrics, but not spent: the postback waits
   * again with the others, so a long outage cannot wear out the postbacks
   * used to probe it.
   */
  probeFailed(job: Job, r: AttemptResult, now: number): void {
    const { held, k, origin } = job;
    const e = held.entry;
    const id = job.id ?? postbackId(e.requestId, e.firstIndex + k);
    const line = attemptLine(id, held.template?.stored.method ?? null, e.attempts + 1, e.requestTime, r, 'retry');
    line.probe = true;
    this.deps.attemptLog.write(attemptLineJson(line));
    this.deps.stats.attempt('retry', r.latencyMs, origin, now);
    this.deps.metrics.attempt('retry', r.status, r.latencyMs, origin);
    this.hold(held, origin, [k]);
  }

  /** The whole entry goes back to Redis, due at `dueAt`; no attempt is made or counted. */
  park(held: HeldEntry, dueAt: number, now: number): void {
    const n = held.entry.items.length;
    held.retries.push([dueAt, held.blob]);
    held.remaining = 0;
    this.deps.metrics.parked.inc(n);
    this.deps.stats.parked(n, now);
    this.deps.complete(held);
    held.shard.promoter.kick(dueAt);
  }
}
