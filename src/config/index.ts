/**
 * The only place that reads `process.env`. `loadConfig()` parses it once
 * (and reads the files DELIVERY_CA_FILE and the secrets' X_FILE variables
 * name); on a bad value it prints one line naming every bad variable and
 * exits 1, so a misconfigured process never starts half-working. A warning
 * (a secret file other users may read) is one line on stderr, once.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { parseConfig } from './parse.js';
import type { Config } from './defaults.js';

export type { Config, LogLevel } from './defaults.js';
export { DEFAULTS, REDIS_MODE_SOURCE } from './defaults.js';

let cached: Config | undefined;

/** The largest file configuration reads (a CA bundle, a secret): more is refused, not read for ever. */
export const CONFIG_FILE_MAX = 4 * 1024 * 1024;

/**
 * A file's text, refused past CONFIG_FILE_MAX bytes: an X_FILE pointed at
 * /dev/zero or a log by mistake must fail the start with a clear line, not
 * hang it or fill the heap.
 */
function readConfigFile(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(CONFIG_FILE_MAX + 1);
    let size = 0;
    for (;;) {
      const n = readSync(fd, buf, size, buf.length - size, null);
      if (n === 0) break;
      size += n;
      if (size > CONFIG_FILE_MAX) throw new Error(`larger than ${CONFIG_FILE_MAX / 1024 / 1024} MiB`);
    }
    return buf.toString('utf8', 0, size);
  } finally {
    closeSync(fd);
  }
}

export function loadConfig(): Config {
  if (cached) return cached;
  const result = parseConfig(process.env, readConfigFile, (path) => statSync(path).mode);
  if (!result.ok) {
    process.stderr.write(`postback-delivery: bad configuration: ${result.problems.join('; ')}\n`);
    process.exit(1);
  }
  for (const w of result.warnings) process.stderr.write(`postback-delivery: warning: ${w}\n`);
  cached = result.config;
  return cached;
}
