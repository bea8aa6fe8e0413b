/**
 * Where the repository is, found from this file whether it runs compiled
 * (dist/bench/lib/) for the benchmark or as source (bench/lib/) under the
 * tests: the nearest directory above holding package.json.
 */
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error('harness: no package.json above bench/lib');
  }
}

/** The repository's root directory. */
export const REPO_ROOT = findRoot();

/**
 * Text fit to commit (a results file): paths under the repository made
 * relative to it, and the machine's temporary folder written `<tmp>`, so
 * that nothing recorded names a path outside the project.
 */
export function portablePaths(text: string): string {
  const escape = (p: string) => JSON.stringify(`${p}/`).slice(1, -1);
  // The temporary folder only where a path starts (after a quote, "=" or a
  // blank): "/tmp/" also occurs inside bench/results/tmp/.
  const tmp = new RegExp(`(["=\\s])${escape(tmpdir()).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'g');
  return text.replaceAll(escape(REPO_ROOT), '').replace(tmp, '$1<tmp>/');
}

/** A path under the repository root. */
export function repoPath(...parts: string[]): string {
  return join(REPO_ROOT, ...parts);
}

/** The repository's package.json. */
export function packageJson(): { name: string; version: string } {
  return JSON.parse(readFileSync(repoPath('package.json'), 'utf8')) as { name: string; version: string };
}
