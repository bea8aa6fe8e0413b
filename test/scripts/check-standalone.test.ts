/**
 * scripts/check-standalone.mjs: what counts as naming a path outside the
 * repository (a table of lines, each as if in a given file), and the
 * repository itself passing it.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('../../scripts/check-standalone.mjs', import.meta.url));

type HitsOf = (file: string, text: string) => [number, string][];

t.test('lines that reach outside the repository, and lines that do not', async (t) => {
  const { hitsOf, SHARED } = (await import(SCRIPT)) as { hitsOf: HitsOf; SHARED: string };
  const cases: [string, string, boolean][] = [
    // [file, line, flagged]
    ['docs/x.md', `see ${SHARED}/DESIGN.md`, true],
    ['README.md', 'cp /work/shared/notes.md .', true],
    ['src/a.ts', "const cfg = '/home/alice/project/config';", true],
    ['src/a.ts', "const cfg = '/Users/bob/x';", true],
    ['bench/a.json', '"LOG_DIR": "/root/var/log"', true],
    ['docs/x.md', '[outside](../../outside/x)', true],
    ['README.md', 'clone it next to ../sibling-repo', true],
    ['test/ops/a.test.ts', "new URL('../../../x', import.meta.url)", true],
    ['test/ops/a.test.ts', "new URL('../..', import.meta.url)", false],
    ['src/start/main.ts', "new URL('../cli.js', import.meta.url)", false],
    ['docs/x.md', 'see [README](../README.md)', false],
    ['README.md', 'units go to /etc/systemd/system; logs to /var/log', false],
    ['README.md', 'data in ./var/redis, and <tmp>/pb-tls-x/ca.pem', false],
    ['src/a.ts', 'const r = a/work/b; // a division, not a path', false],
  ];
  for (const [file, line, flagged] of cases) {
    t.equal(hitsOf(file, line).length > 0, flagged, `${file}: ${line}`);
  }
});

t.test('this repository passes', async (t) => {
  const { stdout } = await run(process.execPath, [SCRIPT]);
  t.match(stdout, /no path outside the repository/);
});
