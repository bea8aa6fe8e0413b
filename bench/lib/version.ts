/** The User-Agent the service sends (`postback-delivery/<version>`), for baselines to send the same bytes. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's package.json: the nearest one above this file (it runs from dist/bench/lib/). */
function packageJson(): { name: string; version: string } {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as { name: string; version: string };
    if (dirname(dir) === dir) throw new Error('bench: no package.json above dist/bench/lib');
  }
}

export function packageUserAgent(): string {
  const pkg = packageJson();
  return `${pkg.name}/${pkg.version}`;
}
