/** The User-Agent the service sends (`postback-delivery/<version>`), for baselines to send the same bytes. */
import { readFileSync } from 'node:fs';

export function packageUserAgent(): string {
  // dist/bench/lib/version.js -> package.json at the repository root.
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { name: string; version: string };
  return `${pkg.name}/${pkg.version}`;
}
