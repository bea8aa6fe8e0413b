#!/usr/bin/env node
// Copies the non-TypeScript files the build needs (Lua scripts, the
// dashboard's HTML and browser JavaScript) from src/
// into dist/, keeping their relative paths. Part of `npm run build`.
import { cpSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join, relative, dirname } from 'node:path';

const ASSET = /\.(lua|html|js|css)$/;
const src = new URL('../src/', import.meta.url).pathname;
const dist = new URL('../dist/', import.meta.url).pathname;

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (ASSET.test(name)) {
      const out = join(dist, relative(src, p));
      mkdirSync(dirname(out), { recursive: true });
      cpSync(p, out);
    }
  }
}
walk(src);
