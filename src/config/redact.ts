/**
 * Pure: the configuration fit to print (`node dist/cli.js config`) or log:
 * every secret it holds replaced by `***`. Secrets are listed here, in one
 * place, next to the Config they come from: REDIS_URL's password, the data
 * nodes' and sentinels' passwords, ingest and admin tokens, signing secrets
 * (the variables of SECRET_VARIABLES in secret-files.ts, each of which may
 * also come from a file: hidden the same either way).
 * CA certificates are shown as one line each (subject, expiry).
 */
import { describeCert } from './ca.js';
import type { Config } from './defaults.js';

const HIDDEN = '***';

/**
 * A Redis URL fit for a log line: the password replaced by ***, wherever
 * it is. The user info ends at the last `@` (a password may hold an
 * unescaped `@`, which ioredis reads as part of it); without a `scheme://`
 * everything before that `@` goes; a `password=` in the query goes too.
 * When unsure it hides more, never less.
 */
export function redactUrl(url: string): string {
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(url)?.[0] ?? '';
  const rest = url.slice(scheme.length);
  const at = rest.lastIndexOf('@');
  let out = url;
  if (at >= 0) {
    const userinfo = rest.slice(0, at);
    const colon = userinfo.indexOf(':');
    const user = scheme === '' ? HIDDEN : colon === -1 ? userinfo : `${userinfo.slice(0, colon)}:${HIDDEN}`;
    out = `${scheme}${user}@${rest.slice(at + 1)}`;
  }
  return out.replace(/([?&]password=)[^&#]*/gi, `$1${HIDDEN}`);
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
