/**
 * Pure: environment (a plain record) in, a typed Config or the complete list
 * of problems out. It collects every problem instead of stopping at the
 * first, so one start tells the operator everything that is wrong, each
 * message naming its variable. The files variables name that are read
 * here (DELIVERY_CA_FILE, and each secret's X_FILE: secret-files.ts) are
 * read through the `readFile` given (index.ts gives the real one), so a bad
 * file is a configuration problem like any.
 */
import { secretProblem, SIGNING_SCHEMES, type SigningScheme } from '../postback/signature.js';
import { isIP } from 'node:net';
import { parseOriginPattern } from '../postback/origin-pattern.js';
import { parseCaPem } from './ca.js';
import { parseCidr } from './cidr.js';
import { DEFAULTS, LOG_LEVELS, type Config, type LogLevel } from './defaults.js';
import { resolveSecretFiles, type Env, type FileMode, type ReadFile } from './secret-files.js';

export type { Env, FileMode, ReadFile } from './secret-files.js';

/** `warnings`: worth one line on stderr at start (a secret file other users may read), not a reason to stop. */
export type ParseResult = { ok: true; config: Config; warnings: string[] } | { ok: false; problems: string[] };

const NO_FILES: ReadFile = () => {
  throw Object.assign(new Error('no file reader given'), { code: 'ENOREADER' });
};

const INT = /^\d+$/;
const TRUE = new Set(['1', 'true', 'yes', 'on']);
const FALSE = new Set(['0', 'false', 'no', 'off']);

class Reader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  /** The raw value; empty strings count as unset except where noted. */
  private raw(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v === '' ? undefined : v.trim();
  }

  int(name: string, def: number, min: number, max: number): number {
    const v = this.raw(name);
    if (v === undefined) return def;
    const n = INT.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      this.problems.push(`${name} must be an integer from ${min} to ${max} (got "${v}")`);
      return def;
    }
    return n;
  }

  bool(name: string, def: boolean): boolean {
    const v = this.raw(name);
    if (v === undefined) return def;
    const lower = v.toLowerCase();
    if (TRUE.has(lower)) return true;
    if (FALSE.has(lower)) return false;
    this.problems.push(`${name} must be true or false (got "${v}")`);
    return def;
  }

  /** A string taken verbatim: an empty value is a value (UNMATCHED_DEFAULT). */
  verbatim(name: string, def: string): string {
    const v = this.env[name];
    return v === undefined ? def : v;
  }

  str(name: string, def: string): string {
    return this.raw(name) ?? def;
  }

  optional(name: string): string | undefined {
    return this.raw(name);
  }

  list(name: string): string[] {
    const v = this.raw(name);
    if (v === undefined) return [];
    return v
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
  }

  fraction(name: string, def: number): number {
    const v = this.raw(name);
    if (v === undefined) return def;
    const n = /^(0?\.\d+|1(\.0*)?)$/.test(v) ? Number(v) : NaN;
    if (!(n > 0 && n <= 1)) {
      this.problems.push(`${name} must be a fraction above 0 and at most 1, like 0.25 (got "${v}")`);
      return def;
    }
    return n;
  }

  oneOf<T extends string>(name: string, def: T, allowed: readonly T[]): T {
    const v = this.raw(name);
    if (v === undefined) return def;
    if ((allowed as readonly string[]).includes(v)) return v as T;
    this.problems.push(`${name} must be one of ${allowed.join(', ')} (got "${v}")`);
    return def;
  }

  problem(message: string): void {
    this.problems.push(message);
  }
}

const PORT_MAX = 65_535;
const DAY_MS = 86_400_000;

/**
 * `fileMode` (optional): a file's permission bits, to warn about a secret
 * file other users may read; without it nothing is warned about.
 */
export function parseConfig(given: Env, readFile: ReadFile = NO_FILES, fileMode?: FileMode): ParseResult {
  // Secrets given as X_FILE first: from here on each is read as X would be.
  const secrets = resolveSecretFiles(given, readFile, fileMode);
  const env = secrets.env;
  const r = new Reader(env);
  for (const p of secrets.problems) r.problem(p);
  const d = DEFAULTS;

  const redisUrl = r.optional('REDIS_URL');
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) {
    // Not echoed, even redacted: a URL mistyped this way may hold its password anywhere.
    r.problem('REDIS_URL must start with redis:// or rediss:// (its value is not shown: it may hold a password)');
  }
  const prefix = r.str('REDIS_PREFIX', d.REDIS_PREFIX);
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(prefix)) {
    r.problem(`REDIS_PREFIX must be 1 to 64 letters, digits, "_", "." or "-" (got "${prefix}")`);
  }

  const clusterNodes = r.list('REDIS_CLUSTER_NODES');
  const sentinels = r.list('REDIS_SENTINELS');
  for (const [name, list] of [
    ['REDIS_CLUSTER_NODES', clusterNodes],
    ['REDIS_SENTINELS', sentinels],
  ] as const) {
    const badNode = list.find((n) => !/^[A-Za-z0-9_.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(n));
    if (badNode !== undefined) r.problem(`${name} must be a comma list of host:port (got "${badNode}")`);
  }
  const modes = [redisUrl !== undefined && 'REDIS_URL', clusterNodes.length > 0 && 'REDIS_CLUSTER_NODES', sentinels.length > 0 && 'REDIS_SENTINELS'].filter(Boolean);
  if (modes.length > 1) r.problem(`set only one of REDIS_URL, REDIS_CLUSTER_NODES and REDIS_SENTINELS (got ${modes.join(' and ')})`);
  const mode = redisUrl !== undefined ? 'url' : clusterNodes.length > 0 ? 'cluster' : sentinels.length > 0 ? 'sentinel' : 'private';

  const config: Config = {
    redis: {
      mode,
      url: redisUrl,
      clusterNodes,
      sentinels,
      sentinelName: r.str('REDIS_SENTINEL_NAME', d.REDIS_SENTINEL_NAME),
      password: r.optional('REDIS_PASSWORD'),
      sentinelPassword: r.optional('REDIS_SENTINEL_PASSWORD'),
      tls: r.bool('REDIS_TLS', false),
      shards: r.int('QUEUE_SHARDS', d.QUEUE_SHARDS, 1, 256),
      port: r.int('REDIS_PORT', d.REDIS_PORT, 1, PORT_MAX),
      prefix,
      dir: r.str('REDIS_DIR', d.REDIS_DIR),
      passwordFile: r.str('REDIS_PASSWORD_FILE', d.REDIS_PASSWORD_FILE),
      appendfsync: r.oneOf<'everysec' | 'always' | 'no'>('REDIS_APPENDFSYNC', d.REDIS_APPENDFSYNC, ['everysec', 'always', 'no'] as const),
    },
    ingest: {
      host: r.str('INGEST_HOST', d.INGEST_HOST),
      port: r.int('INGEST_PORT', d.INGEST_PORT, 0, PORT_MAX),
      maxBodyBytes: r.int('INGEST_MAX_BODY_BYTES', d.INGEST_MAX_BODY_BYTES, 64, 512 * 1_048_576),
      maxInflightBytes: r.int('INGEST_MAX_INFLIGHT_BYTES', d.INGEST_MAX_INFLIGHT_BYTES, 64, 16 * 1_073_741_824),
      maxItems: r.int('INGEST_MAX_ITEMS', d.INGEST_MAX_ITEMS, 1, 1_000_000),
      maxUrlBytes: r.int('INGEST_MAX_URL_BYTES', d.INGEST_MAX_URL_BYTES, 32, 1_048_576),
      maxRenderedUrlBytes: r.int('INGEST_MAX_RENDERED_URL_BYTES', d.INGEST_MAX_RENDERED_URL_BYTES, 32, 1_048_576),
      maxHeaderBytes: r.int('INGEST_MAX_HEADER_BYTES', d.INGEST_MAX_HEADER_BYTES, 1_024, 1_048_576),
      tokens: r.list('INGEST_TOKENS'),
      allowAnonymous: r.bool('INGEST_ALLOW_ANONYMOUS', false),
      writeTimeoutMs: r.int('INGEST_WRITE_TIMEOUT_MS', d.INGEST_WRITE_TIMEOUT_MS, 50, 60_000),
      waitReplicas: r.int('INGEST_WAIT_REPLICAS', d.INGEST_WAIT_REPLICAS, 0, 100),
      waitReplicasMs: r.int('INGEST_WAIT_REPLICAS_MS', d.INGEST_WAIT_REPLICAS_MS, 1, 60_000),
      maxQueue: r.int('INGEST_MAX_QUEUE', d.INGEST_MAX_QUEUE, 0, 1_000_000_000),
      idempotencyTtlMs: r.int('INGEST_IDEMPOTENCY_TTL_MS', d.INGEST_IDEMPOTENCY_TTL_MS, 1_000, 30 * DAY_MS),
      headersTimeoutMs: r.int('INGEST_HEADERS_TIMEOUT_MS', d.INGEST_HEADERS_TIMEOUT_MS, 100, 600_000),
      requestTimeoutMs: r.int('INGEST_REQUEST_TIMEOUT_MS', d.INGEST_REQUEST_TIMEOUT_MS, 100, 3_600_000),
      keepAliveTimeoutMs: r.int('INGEST_KEEPALIVE_TIMEOUT_MS', d.INGEST_KEEPALIVE_TIMEOUT_MS, 0, 600_000),
    },
    monitor: {
      host: r.str('MONITOR_HOST', d.MONITOR_HOST),
      allowedHosts: r.list('MONITOR_ALLOWED_HOSTS').map((h) => h.toLowerCase()),
      port: r.int('MONITOR_PORT', d.MONITOR_PORT, 0, PORT_MAX),
      deliveryPort: r.int('DELIVERY_METRICS_PORT', d.DELIVERY_METRICS_PORT, 0, PORT_MAX),
      adminTokens: r.list('ADMIN_TOKENS'),
      retentionS: r.int('STATS_RETENTION_S', d.STATS_RETENTION_S, 60, 7 * 86_400),
    },
    dlq: {
      max: r.int('DLQ_MAX', d.DLQ_MAX, 1, 1_000_000_000),
      retentionMs: r.int('DLQ_RETENTION_MS', d.DLQ_RETENTION_MS, 60_000, 365 * DAY_MS),
    },
    delivery: {
      unmatchedDefault: r.verbatim('UNMATCHED_DEFAULT', d.UNMATCHED_DEFAULT),
      maxAttempts: r.int('DELIVERY_MAX_ATTEMPTS', d.DELIVERY_MAX_ATTEMPTS, 1, 100),
      timeoutMs: r.int('DELIVERY_TIMEOUT_MS', d.DELIVERY_TIMEOUT_MS, 10, 600_000),
      backoffBaseMs: r.int('DELIVERY_BACKOFF_BASE_MS', d.DELIVERY_BACKOFF_BASE_MS, 1, DAY_MS),
      backoffMaxMs: r.int('DELIVERY_BACKOFF_MAX_MS', d.DELIVERY_BACKOFF_MAX_MS, 1, 7 * DAY_MS),
      ttlMs: r.int('DELIVERY_TTL_MS', d.DELIVERY_TTL_MS, 1_000, 30 * DAY_MS),
      delayMs: r.int('DELIVERY_DELAY_MS', d.DELIVERY_DELAY_MS, 0, 30 * DAY_MS),
      maxDelayMs: r.int('DELIVERY_MAX_DELAY_MS', d.DELIVERY_MAX_DELAY_MS, 0, 30 * DAY_MS),
      concurrency: r.int('DELIVERY_CONCURRENCY', d.DELIVERY_CONCURRENCY, 1, 100_000),
      workers: r.int('DELIVERY_WORKERS', d.DELIVERY_WORKERS, 0, 256),
      connectionsPerOrigin: r.int('DELIVERY_CONNECTIONS_PER_ORIGIN', d.DELIVERY_CONNECTIONS_PER_ORIGIN, 1, 10_000),
      batchSize: r.int('DELIVERY_BATCH_SIZE', d.DELIVERY_BATCH_SIZE, 1, 10_000),
      originShare: r.fraction('DELIVERY_ORIGIN_SHARE', d.DELIVERY_ORIGIN_SHARE),
      visibilityMs: r.int('DELIVERY_VISIBILITY_MS', d.DELIVERY_VISIBILITY_MS, 1_000, DAY_MS),
      allowPrivate: r.bool('DELIVERY_ALLOW_PRIVATE', d.DELIVERY_ALLOW_PRIVATE),
      allowedCidrs: r.list('DELIVERY_ALLOWED_CIDRS'),
      allowedOrigins: r.list('DELIVERY_ALLOWED_ORIGINS'),
      dnsServers: r.list('DELIVERY_DNS_SERVERS'),
      signingSecrets: r.list('SIGNING_SECRET'),
      signingScheme: r.oneOf<SigningScheme>('SIGNING_SCHEME', d.SIGNING_SCHEME, SIGNING_SCHEMES),
      responseBodyMax: r.int('RESPONSE_BODY_MAX', d.RESPONSE_BODY_MAX, 0, 1_048_576),
      caFile: r.optional('DELIVERY_CA_FILE'),
      caCerts: [],
      nodeExtraCaCerts: [],
    },
    partners: {
      file: r.optional('PARTNERS_FILE'),
      breaker: {
        failureRatio: r.fraction('PARTNER_BREAKER_FAILURE_RATIO', d.PARTNER_BREAKER_FAILURE_RATIO),
        windowMs: r.int('PARTNER_BREAKER_WINDOW_MS', d.PARTNER_BREAKER_WINDOW_MS, 1_000, 3_600_000),
        minAttempts: r.int('PARTNER_BREAKER_MIN_ATTEMPTS', d.PARTNER_BREAKER_MIN_ATTEMPTS, 1, 1_000_000),
        consecutiveFailures: r.int('PARTNER_BREAKER_CONSECUTIVE', d.PARTNER_BREAKER_CONSECUTIVE, 1, 1_000_000),
        probeIntervalMs: r.int('PARTNER_PROBE_INTERVAL_MS', d.PARTNER_PROBE_INTERVAL_MS, 100, 3_600_000),
      },
      disableAfterMs: r.int('PARTNER_DISABLE_AFTER_MS', d.PARTNER_DISABLE_AFTER_MS, 0, 30 * DAY_MS),
    },
    log: {
      dir: r.str('LOG_DIR', d.LOG_DIR),
      level: r.oneOf<LogLevel>('LOG_LEVEL', d.LOG_LEVEL, LOG_LEVELS),
    },
    shutdownTimeoutMs: r.int('SHUTDOWN_TIMEOUT_MS', d.SHUTDOWN_TIMEOUT_MS, 1_000, 600_000),
  };

  const del = config.delivery;
  if (del.backoffBaseMs > del.backoffMaxMs) {
    r.problem(
      `DELIVERY_BACKOFF_BASE_MS (${del.backoffBaseMs}) must not exceed DELIVERY_BACKOFF_MAX_MS (${del.backoffMaxMs})`,
    );
  }
  if (del.delayMs > del.maxDelayMs) {
    r.problem(`DELIVERY_DELAY_MS (${del.delayMs}) must not exceed DELIVERY_MAX_DELAY_MS (${del.maxDelayMs})`);
  }
  const minVisibility = 2 * del.timeoutMs + 5_000;
  if (del.visibilityMs < minVisibility) {
    r.problem(
      `DELIVERY_VISIBILITY_MS (${del.visibilityMs}) must be at least 2 x DELIVERY_TIMEOUT_MS + 5000 (${minVisibility}), or live postbacks would be reclaimed and sent twice`,
    );
  }
  if (config.shutdownTimeoutMs < del.timeoutMs + 3_000) {
    r.problem(
      `SHUTDOWN_TIMEOUT_MS (${config.shutdownTimeoutMs}) must be at least DELIVERY_TIMEOUT_MS + 3000 (${del.timeoutMs + 3_000}) so in-flight attempts can finish`,
    );
  }
  const ing = config.ingest;
  if (ing.maxInflightBytes < ing.maxBodyBytes) {
    r.problem(`INGEST_MAX_INFLIGHT_BYTES (${ing.maxInflightBytes}) must be at least INGEST_MAX_BODY_BYTES (${ing.maxBodyBytes}), or the largest request could never be taken`);
  }
  if (ing.waitReplicas > 0) {
    // WAIT answers for the node it is sent to: a Cluster spreads the shards
    // over several primaries, and the private Redis has no replica at all.
    if (config.redis.mode === 'cluster') r.problem('INGEST_WAIT_REPLICAS works with one primary (REDIS_URL or REDIS_SENTINELS), not with REDIS_CLUSTER_NODES');
    if (config.redis.mode === 'private') r.problem('INGEST_WAIT_REPLICAS needs a Redis with replicas (REDIS_URL or REDIS_SENTINELS): the private Redis has none, and every request would get 503');
    if (ing.waitReplicasMs >= ing.writeTimeoutMs) r.problem(`INGEST_WAIT_REPLICAS_MS (${ing.waitReplicasMs}) must be below INGEST_WRITE_TIMEOUT_MS (${ing.writeTimeoutMs}), which bounds every Redis command of ingest`);
  }
  if (ing.headersTimeoutMs > ing.requestTimeoutMs) {
    // node:http refuses to start with it ('headersTimeout is out of range').
    r.problem(`INGEST_HEADERS_TIMEOUT_MS (${ing.headersTimeoutMs}) must not exceed INGEST_REQUEST_TIMEOUT_MS (${ing.requestTimeoutMs})`);
  }
  if (del.timeoutMs >= del.ttlMs) {
    r.problem(`DELIVERY_TIMEOUT_MS (${del.timeoutMs}) must be below DELIVERY_TTL_MS (${del.ttlMs})`);
  }
  for (const c of del.allowedCidrs) {
    try {
      parseCidr(c);
    } catch (err) {
      r.problem(`DELIVERY_ALLOWED_CIDRS: ${(err as Error).message}`);
    }
  }
  for (const server of del.dnsServers) {
    const m = /^\[([0-9a-fA-F:.]+)\](?::(\d{1,5}))?$|^([0-9.]+)(?::(\d{1,5}))?$|^([0-9a-fA-F:]+)$/.exec(server);
    const host = m ? (m[1] ?? m[3] ?? m[5]) : undefined;
    const port = m ? Number(m[2] ?? m[4] ?? 53) : NaN;
    if (host === undefined || isIP(host) === 0 || !(port >= 1 && port <= PORT_MAX)) {
      r.problem(`DELIVERY_DNS_SERVERS must be a comma list of IP addresses, each with an optional port (1.1.1.1, 10.0.0.2:5353, [2001:db8::53]:53) (got "${server}")`);
    }
  }
  for (const o of del.allowedOrigins) {
    const p = parseOriginPattern(o);
    if (!p.ok) r.problem(`DELIVERY_ALLOWED_ORIGINS: ${p.message}`);
  }
  if (del.caFile !== undefined) {
    const ca = readCaFile(del.caFile, readFile, false);
    if (ca.ok) del.caCerts = ca.certs;
    else r.problem(`DELIVERY_CA_FILE (${del.caFile}) ${ca.problem}`);
    // A list of CAs replaces Node's own trust, NODE_EXTRA_CA_CERTS included:
    // what it adds is listed again with the file's. Read as Node reads it
    // (what parses is kept, a file it cannot read ignored: Node warned already).
    const extra = env.NODE_EXTRA_CA_CERTS;
    if (extra !== undefined && extra !== '') {
      const e = readCaFile(extra, readFile, true);
      if (e.ok) del.nodeExtraCaCerts = e.certs;
    }
  }
  const secretProblems = del.signingSecrets.map(secretProblem).filter((x) => x !== null);
  if (del.signingSecrets.length > 2 || secretProblems.length > 0) {
    r.problem(`SIGNING_SECRET must be one or two comma-separated secrets, each whsec_<base64 of 24 to 64 bytes> or at least 16 characters${secretProblems.length > 0 ? ` (${secretProblems[0]})` : ''} (value not shown)`);
  }
  if (config.redis.port === 6379) {
    r.problem('REDIS_PORT must not be 6379, the default port a shared Redis listens on: pick another (default 6380)');
  }
  if (config.ingest.maxRenderedUrlBytes < config.ingest.maxUrlBytes) {
    r.problem(
      `INGEST_MAX_RENDERED_URL_BYTES (${config.ingest.maxRenderedUrlBytes}) must not be below INGEST_MAX_URL_BYTES (${config.ingest.maxUrlBytes})`,
    );
  }
  for (const [name, tokens] of [['INGEST_TOKENS', config.ingest.tokens], ['ADMIN_TOKENS', config.monitor.adminTokens]] as const) {
    if (tokens.some((t) => t.length < 16 || /\s/.test(t))) r.problem(`${name} entries must be at least 16 characters without spaces (value not shown)`);
  }
  if (config.monitor.adminTokens.some((t) => config.ingest.tokens.includes(t))) {
    r.problem('ADMIN_TOKENS must not repeat an INGEST_TOKENS entry: an ingest client must not be able to pause partners (value not shown)');
  }

  return r.problems.length === 0 ? { ok: true, config, warnings: secrets.warnings } : { ok: false, problems: r.problems };
}

function readCaFile(path: string, readFile: ReadFile, lenient: boolean): ReturnType<typeof parseCaPem> {
  let text: string;
  try {
    text = readFile(path);
  } catch (err) {
    return { ok: false, problem: `cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
  }
  return parseCaPem(text, lenient);
}
