/**
 * Every default in one object, named as in the environment variable table
 * of the README. `parse.ts` turns the
 * environment into a typed {@link Config}; nothing else reads `process.env`.
 */
import { availableParallelism } from 'node:os';

export const DEFAULTS = {
  REDIS_PORT: 6380,
  REDIS_PREFIX: 'pb',
  REDIS_SENTINEL_NAME: 'mymaster',
  QUEUE_SHARDS: 1,
  REDIS_DIR: './var/redis',
  REDIS_APPENDFSYNC: 'everysec',
  REDIS_PASSWORD_FILE: './var/redis.password',
  // Loopback: ingest makes our machines send requests, so reaching it from
  // elsewhere is a choice (INGEST_HOST plus INGEST_TOKENS, or INGEST_ALLOW_ANONYMOUS).
  INGEST_HOST: '127.0.0.1',
  INGEST_PORT: 8080,
  INGEST_MAX_BODY_BYTES: 1_048_576,
  INGEST_MAX_INFLIGHT_BYTES: 67_108_864,
  INGEST_MAX_ITEMS: 10_000,
  INGEST_MAX_URL_BYTES: 8_192,
  INGEST_MAX_RENDERED_URL_BYTES: 16_384,
  INGEST_MAX_HEADER_BYTES: 16_384,
  INGEST_WRITE_TIMEOUT_MS: 2_000,
  INGEST_WAIT_REPLICAS: 0,
  INGEST_WAIT_REPLICAS_MS: 1_000,
  INGEST_MAX_QUEUE: 5_000_000,
  INGEST_IDEMPOTENCY_TTL_MS: 86_400_000,
  INGEST_HEADERS_TIMEOUT_MS: 10_000,
  INGEST_REQUEST_TIMEOUT_MS: 30_000,
  INGEST_KEEPALIVE_TIMEOUT_MS: 5_000,
  MONITOR_HOST: '127.0.0.1',
  MONITOR_PORT: 9090,
  DELIVERY_METRICS_PORT: 9091,
  STATS_RETENTION_S: 3_600,
  DLQ_MAX: 1_000_000,
  DLQ_RETENTION_MS: 7 * 86_400_000,
  UNMATCHED_DEFAULT: '',
  DELIVERY_MAX_ATTEMPTS: 5,
  DELIVERY_TIMEOUT_MS: 10_000,
  DELIVERY_BACKOFF_BASE_MS: 1_000,
  DELIVERY_BACKOFF_MAX_MS: 600_000,
  DELIVERY_TTL_MS: 86_400_000,
  DELIVERY_DELAY_MS: 0,
  DELIVERY_MAX_DELAY_MS: 86_400_000,
  DELIVERY_CONCURRENCY: 1_024,
  // Threads only pay off with cores to spare: on 2 cores the main thread
  // sending itself delivered 1.1 to 1.2x as much as 2 threads (README).
  DELIVERY_WORKERS: availableParallelism() > 2 ? availableParallelism() - 1 : 0,
  DELIVERY_CONNECTIONS_PER_ORIGIN: 64,
  DELIVERY_BATCH_SIZE: 64,
  DELIVERY_ORIGIN_SHARE: 0.25,
  DELIVERY_VISIBILITY_MS: 60_000,
  DELIVERY_ALLOW_PRIVATE: false,
  RESPONSE_BODY_MAX: 1_024,
  SIGNING_SCHEME: 'postback' as const,
  PARTNER_BREAKER_FAILURE_RATIO: 0.5,
  PARTNER_BREAKER_WINDOW_MS: 30_000,
  PARTNER_BREAKER_MIN_ATTEMPTS: 20,
  PARTNER_BREAKER_CONSECUTIVE: 10,
  PARTNER_PROBE_INTERVAL_MS: 5_000,
  PARTNER_DISABLE_AFTER_MS: 0,
  SHUTDOWN_TIMEOUT_MS: 15_000,
  LOG_DIR: './var/log',
  LOG_LEVEL: 'info',
} as const;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Config {
  redis: {
    /**
     * Which Redis: `url` (REDIS_URL), `cluster` (REDIS_CLUSTER_NODES),
     * `sentinel` (REDIS_SENTINELS), or `private` (none set: the private
     * redis-server on 127.0.0.1:REDIS_PORT).
     */
    mode: 'url' | 'cluster' | 'sentinel' | 'private';
    /** Unset: `start` launches a private redis-server on `port`. */
    url: string | undefined;
    /** host:port of Redis Cluster nodes (any subset; the rest is discovered). */
    clusterNodes: string[];
    /** host:port of Redis Sentinels. */
    sentinels: string[];
    sentinelName: string;
    /** Password of the data nodes in cluster and sentinel modes. */
    password: string | undefined;
    sentinelPassword: string | undefined;
    /** TLS to the data nodes (and sentinels) in cluster and sentinel modes. */
    tls: boolean;
    /** Streams the queue is spread over (each with its own hash tag). */
    shards: number;
    port: number;
    /** Key prefix; every key is `<prefix>:{<shard>}:...`. */
    prefix: string;
    /** Data directory of the private redis-server. */
    dir: string;
    /** AOF fsync policy of the private redis-server. */
    appendfsync: 'everysec' | 'always' | 'no';
    /** Password of the private redis-server, generated on first start. */
    passwordFile: string;
  };
  ingest: {
    host: string;
    port: number;
    maxBodyBytes: number;
    /** Body bytes of all requests being read or answered at once in one process; past it, 503 overloaded. */
    maxInflightBytes: number;
    maxItems: number;
    maxUrlBytes: number;
    /** Longest URL a data object may render the template to. */
    maxRenderedUrlBytes: number;
    /** Largest request head (request line + headers); larger gets 431. */
    maxHeaderBytes: number;
    /** Bearer tokens; empty means ingest is open. */
    tokens: string[];
    /** Run without tokens on an address other machines can reach (an explicit choice). */
    allowAnonymous: boolean;
    /** Longest wait for Redis to acknowledge a request's writes before 503. */
    writeTimeoutMs: number;
    /** Replicas that must have a request's writes (Redis WAIT) before its 202; 0: the primary's word is enough. */
    waitReplicas: number;
    /** How long WAIT waits for them. */
    waitReplicasMs: number;
    /** Postbacks waiting (per shard) past which ingest answers 503; 0 disables. */
    maxQueue: number;
    /** How long an Idempotency-Key's first answer is kept. */
    idempotencyTtlMs: number;
    headersTimeoutMs: number;
    requestTimeoutMs: number;
    keepAliveTimeoutMs: number;
  };
  monitor: {
    host: string;
    port: number;
    /** Host names (besides loopback ones) a loopback monitor answers to: a reverse proxy's (DNS rebinding guard). */
    allowedHosts: string[];
    /** Port of a delivery process's /metrics, /healthz, /readyz (on monitor.host); 0: none. */
    deliveryPort: number;
    /** Bearer tokens for the monitor's mutating endpoints (pause, resume); empty: they answer 403. */
    adminTokens: string[];
    /** How long per-second statistics stay in Redis. */
    retentionS: number;
  };
  dlq: {
    /** Dead letters kept at most, all shards together; the oldest are trimmed first. */
    max: number;
    /** Dead letters older than this are trimmed. */
    retentionMs: number;
  };
  delivery: {
    unmatchedDefault: string;
    maxAttempts: number;
    timeoutMs: number;
    backoffBaseMs: number;
    backoffMaxMs: number;
    ttlMs: number;
    delayMs: number;
    maxDelayMs: number;
    concurrency: number;
    workers: number;
    connectionsPerOrigin: number;
    batchSize: number;
    /** Fraction of `concurrency` one origin may hold in flight. */
    originShare: number;
    /** Idle time after which another consumer reclaims an entry. */
    visibilityMs: number;
    allowPrivate: boolean;
    /** Ranges allowed even when private (SSRF guard exceptions). */
    allowedCidrs: string[];
    /** Origin patterns postbacks may go to (empty: any); others are refused at ingest and at delivery. */
    allowedOrigins: string[];
    /** DNS servers (ip or ip:port) delivery resolves partner names with; empty: the system's resolver. */
    dnsServers: string[];
    /** HMAC secrets; the first signs, all sign during a rotation (at most 2). */
    signingSecrets: string[];
    /** SIGNING_SCHEME: this project's X-Postback-Signature, or Standard Webhooks. */
    signingScheme: 'postback' | 'standard';
    responseBodyMax: number;
    /** DELIVERY_CA_FILE: a PEM file of CA certificates trusted for partner connections, besides Node's roots. */
    caFile: string | undefined;
    /** Its certificates (PEM each), read and checked at start; empty without the file. */
    caCerts: string[];
    /**
     * NODE_EXTRA_CA_CERTS's certificates, read only with DELIVERY_CA_FILE:
     * giving TLS a CA list drops Node's extra certificates, so they are listed again.
     */
    nodeExtraCaCerts: string[];
  };
  partners: {
    /** PARTNERS_FILE: the policy file (JSON or YAML), or undefined for none. */
    file: string | undefined;
    /** The circuit breaker's defaults, which a policy may change per partner. */
    breaker: {
      failureRatio: number;
      windowMs: number;
      minAttempts: number;
      consecutiveFailures: number;
      probeIntervalMs: number;
    };
    /** An origin open this long is paused (and reported); 0: never. */
    disableAfterMs: number;
  };
  log: {
    dir: string;
    level: LogLevel;
  };
  /** Bound on a graceful shutdown; past it the process exits 1. */
  shutdownTimeoutMs: number;
}

/** The variable that chose each Redis mode (the private one: none). */
export const REDIS_MODE_SOURCE: Readonly<Record<Config['redis']['mode'], string>> = {
  url: 'REDIS_URL',
  cluster: 'REDIS_CLUSTER_NODES',
  sentinel: 'REDIS_SENTINELS',
  private: 'private',
};
