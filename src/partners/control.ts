/**
 * The partner control plane in Redis, shared by every process on every
 * machine: pauses and limits set by operators (CLI, monitor API) or
 * automatically (Retry-After), written through control-set-2.lua, which
 * bumps a version. Each delivery process polls the version every second
 * (one GET when nothing changed) and reads the records when it moved, so
 * every process obeys a change within about a second. Delivery processes
 * also keep a heartbeat here, so cluster-wide limits can be divided among
 * the live ones.
 */
import type { Logger } from '../observability/logger.js';
import type { ControlKeys } from '../queue/keys.js';
import type { RedisClient } from '../queue/redis.js';
import { activePause, expiredPause, parseBreaker, parseControl, type BreakerRecord, type OriginControl, type Pause, type PauseBy } from './control-state.js';
import type { LimitOverride } from './policy.js';

const POLL_MS = 1_000;
const HEARTBEAT_EVERY = 5;
/** Members silent four times MEMBER_TTL_MS are removed this often (ticks). */
const PRUNE_EVERY = 60;
/** A delivery process silent this long no longer counts as live. */
const MEMBER_TTL_MS = 15_000;

/** Every origin's record, read once (the CLI, the monitor). */
export async function readControls(redis: RedisClient, keys: ControlKeys): Promise<Map<string, OriginControl>> {
  const all = await redis.hgetall(keys.partners);
  const out = new Map<string, OriginControl>();
  for (const [origin, json] of Object.entries(all)) out.set(origin, parseControl(json));
  return out;
}

/** Every breaker that is not closed. */
export async function readBreakers(redis: RedisClient, keys: ControlKeys): Promise<Map<string, BreakerRecord>> {
  const all = await redis.hgetall(keys.breakers);
  const out = new Map<string, BreakerRecord>();
  for (const [origin, json] of Object.entries(all)) {
    const b = parseBreaker(json);
    if (b !== null) out.set(origin, b);
  }
  return out;
}

/** Delivery processes that sent a heartbeat lately (on Redis's clock: members-1.lua). */
export async function liveMembers(redis: RedisClient, keys: ControlKeys): Promise<string[]> {
  return redis.pbMembers(keys.members, '', MEMBER_TTL_MS, 0);
}

/** Pauses an origin for every process; `until` null: until resumed. Returns whether it changed. */
export async function setPause(redis: RedisClient, keys: ControlKeys, origin: string, pause: Pause, mode: 'replace' | 'extend' = 'replace'): Promise<boolean> {
  return (await redis.pbControlSet(keys.partners, keys.version, origin, 'pause', JSON.stringify(pause), mode, Date.now())) === 1;
}

/**
 * Resumes an origin (an operator's word, CLI or monitor). If its breaker is
 * open (a partner the breaker disabled, or one paused while down), the
 * breaker's clock starts again now, with a probe at once: otherwise a
 * partner disabled after PARTNER_DISABLE_AFTER_MS would be disabled again
 * the moment it was resumed, its breaker having been open that long
 * already, and never probed. (A probe that closes the breaker between the
 * read and the write here leaves an open record whose next probe closes it
 * again: one postback, no loss.)
 */
export async function clearPause(redis: RedisClient, keys: ControlKeys, origin: string): Promise<boolean> {
  const changed = (await redis.pbControlSet(keys.partners, keys.version, origin, 'pause', '', 'replace', Date.now())) === 1;
  const raw = await redis.hget(keys.breakers, origin);
  const b = raw === null ? null : parseBreaker(raw);
  if (b !== null) {
    const now = Date.now();
    await redis.hset(keys.breakers, origin, JSON.stringify({ ...b, state: 'open', since: now, probeAt: now }));
    await redis.incr(keys.version);
  }
  return changed;
}

export async function setLimit(redis: RedisClient, keys: ControlKeys, origin: string, limit: LimitOverride | null): Promise<boolean> {
  const value = limit === null ? '' : JSON.stringify({ ...limit, at: Date.now() });
  return (await redis.pbControlSet(keys.partners, keys.version, origin, 'limit', value, 'replace', Date.now())) === 1;
}

/** A delivery process's live view of the control plane. */
export class PartnerControl {
  private controls = new Map<string, OriginControl>();
  private breakers = new Map<string, BreakerRecord>();
  private version: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private ticks = 0;
  private busy = false;
  /** Live delivery processes (itself included), for dividing cluster-wide limits. */
  live = 1;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: ControlKeys,
    private readonly consumer: string,
    private readonly logger: Logger,
    /** Called after a change was read, with the origins whose record changed. */
    private readonly onChange: (origins: Set<string>) => void = () => undefined,
  ) {}

  async start(): Promise<void> {
    await this.tick().catch(() => undefined);
    this.timer = setInterval(() => void this.tick().catch((err: unknown) => this.logger.debug({ err: (err as Error).message }, 'partner control poll failed')), POLL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    void this.redis.zrem(this.keys.members, this.consumer).catch(() => undefined);
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const now = Date.now();
      const tick = this.ticks++;
      if (tick % HEARTBEAT_EVERY === 0) {
        const live = await this.redis.pbMembers(this.keys.members, this.consumer, MEMBER_TTL_MS, tick % PRUNE_EVERY === 0 ? 1 : 0);
        this.live = Math.max(1, live.length);
      }
      for (const [origin, c] of this.controls) {
        // Tidy: a pause that ended is removed by whoever sees it first.
        if (expiredPause(c, now)) {
          void this.redis.pbControlSet(this.keys.partners, this.keys.version, origin, 'pause', '', 'expire', now).catch(() => undefined);
        }
      }
      const version = await this.redis.get(this.keys.version);
      if (version === this.version) return;
      const [next, breakers] = await Promise.all([readControls(this.redis, this.keys), readBreakers(this.redis, this.keys)]);
      const changed = new Set<string>();
      for (const origin of new Set([...this.controls.keys(), ...next.keys()])) {
        if (JSON.stringify(this.controls.get(origin)) !== JSON.stringify(next.get(origin))) changed.add(origin);
      }
      for (const origin of new Set([...this.breakers.keys(), ...breakers.keys()])) {
        if (JSON.stringify(this.breakers.get(origin)) !== JSON.stringify(breakers.get(origin))) changed.add(origin);
      }
      this.controls = next;
      this.breakers = breakers;
      this.version = version;
      if (changed.size > 0) this.onChange(changed);
    } finally {
      this.busy = false;
    }
  }

  /** The pause of an origin in force now, or null. */
  pauseOf(origin: string, now: number): Pause | null {
    return activePause(this.controls.get(origin), now);
  }

  /** The breaker of an origin when it is not closed, else null. */
  breakerOf(origin: string): BreakerRecord | null {
    return this.breakers.get(origin) ?? null;
  }

  /** Records a breaker change made here at once (other processes read it within a second). */
  setBreaker(origin: string, b: BreakerRecord | null): void {
    if (b === null) this.breakers.delete(origin);
    else this.breakers.set(origin, b);
    this.onChange(new Set([origin]));
  }

  /** Origins whose breaker is not closed. */
  breakerOrigins(): IterableIterator<[string, BreakerRecord]> {
    return this.breakers.entries();
  }

  limitOf(origin: string): LimitOverride | undefined {
    return this.controls.get(origin)?.limit;
  }

  /** Origins with a record (paused, limited). */
  origins(): IterableIterator<string> {
    return this.controls.keys();
  }

  /**
   * Pauses an origin for every process, at once here and within a second
   * elsewhere. `extend`: an automatic pause never shortens a longer one nor
   * replaces an operator's.
   */
  async pause(origin: string, until: number | null, by: PauseBy, reason: string | null, mode: 'replace' | 'extend'): Promise<void> {
    const pause: Pause = { until, by, reason, at: Date.now() };
    const current = this.controls.get(origin) ?? {};
    const old = current.pause;
    const keepOld = mode === 'extend' && old !== undefined && (old.by === 'operator' || old.until === null || (until !== null && old.until >= until));
    if (!keepOld) {
      this.controls.set(origin, { ...current, pause });
      this.onChange(new Set([origin]));
    }
    if (await setPause(this.redis, this.keys, origin, pause, mode)) this.logger.info({ origin, until: until === null ? null : new Date(until).toISOString(), by, reason }, 'partner paused');
  }
}
