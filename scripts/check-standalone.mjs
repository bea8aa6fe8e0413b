#!/usr/bin/env node
// The project stands alone: a user's clone has nothing beside it. Fails,
// naming each file and line, when a tracked text file names a path outside
// the repository:
// - the reference folder of shared material beside the development
//   checkout (SHARED below);
// - an absolute path into a developer's machine (/work/, /home/<user>/,
//   /Users/<user>/, /root/);
// - a relative path (`../x`) that, resolved from the file's own folder,
//   climbs above the repository root.
// System paths a user's machine has (/etc/..., /usr/..., /tmp) are fine.
// Plain Node, no dependencies: .ci/run runs it before `npm run setup`.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SELF = 'scripts/check-standalone.mjs';
// This script and its test name such paths as examples.
const SKIP = new Set([SELF, 'test/scripts/check-standalone.test.ts', 'package-lock.json']);
const ABSOLUTE = /(?:^|[^\w.$-])(\/work\/|\/home\/[A-Za-z_][\w.-]*\/|\/Users\/[A-Za-z_][\w.-]*\/|\/root\/)/;
const CLIMB = /(?:^|[^\w.])((?:\.\.\/)+)([\w.@-]*)/g;
// Built from parts, so that this file does not itself name the folder.
export const SHARED = ['..', 'shared'].join('/');

/** Hits of one file's text: [line number, why]. */
export function hitsOf(file, text) {
  const hits = [];
  const folder = dirname(join(root, file));
  text.split('\n').forEach((line, i) => {
    if (line.includes(SHARED)) hits.push([i + 1, `names ${SHARED}`]);
    const abs = ABSOLUTE.exec(line);
    if (abs) hits.push([i + 1, `absolute path ${abs[1]}`]);
    for (const m of line.matchAll(CLIMB)) {
      const to = resolve(folder, m[1]);
      const rel = relative(root, to);
      if (rel === '..' || rel.startsWith(`..${sep}`)) hits.push([i + 1, `${m[1]}${m[2]} climbs above the repository`]);
    }
  });
  return hits;
}

function main() {
  const files = execFileSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8' }).split('\0').filter((f) => f !== '' && !SKIP.has(f));
  const out = [];
  for (const file of files) {
    let buf;
    try {
      buf = readFileSync(join(root, file));
    } catch {
      continue; // deleted in the work tree
    }
    if (buf.includes(0)) continue; // binary
    for (const [line, why] of hitsOf(file, buf.toString('utf8'))) out.push(`${file}:${line}: ${why}`);
  }
  if (out.length > 0) {
    process.stderr.write(`check-standalone: these lines reach outside the repository (a user's clone has nothing beside it):\n${out.join('\n')}\n`);
    process.exit(1);
  }
  process.stdout.write(`check-standalone: no path outside the repository (${files.length} files)\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
