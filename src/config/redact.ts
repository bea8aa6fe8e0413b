/**
 * Pure: the configuration fit to print (`node dist/cli.js config`) or log:
 * every secret it holds replaced by `***`. Secrets are listed here, in one
 * place, next to the Config they come from: REDIS_URL's password, the data
 * nodes' and sentinels' passwords, ingest and admin tokens, signing secrets.
 * CA certificates are shown as one line each (subject, expiry).
 */
import { describeCert } from './ca.js';
import type { Config } from './defaults.js';

const HIDDEN = '***';

/** A Redis URL fit for a log line: the password replaced by ***. */
export function redactUrl(url: string): string {
  return url.replace(/^(rediss?:\/\/[^:@/]*:)[^@]*@/, `$1${HIDDEN}@`);
}

const hide = (v: string | undefined): string | undefined => (v === undefined ? undefined : HIDDEN);

export function redactConfig(c: Config): Config {
  return {
    ...c,
    redis: {
      ...c.redis,
      url: c.redis.url === undefined ? undefined : redactUrl(c.redis.url),
      password: hide(c.redis.password),
      sentinelPassword: hide(c.redis.sentinelPassword),
    },
    ingest: { ...c.ingest, tokens: c.ingest.tokens.map(() => HIDDEN) },
    monitor: { ...c.monitor, adminTokens: c.monitor.adminTokens.map(() => HIDDEN) },
    delivery: {
      ...c.delivery,
      signingSecrets: c.delivery.signingSecrets.map(() => HIDDEN),
      // Not secret, but long: each CA certificate as its subject and expiry.
      caCerts: c.delivery.caCerts.map(describeCert),
      nodeExtraCaCerts: c.delivery.nodeExtraCaCerts.map(describeCert),
    },
  };
}
