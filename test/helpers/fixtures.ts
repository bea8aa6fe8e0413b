/**
 * The request cases of test/fixtures/requests/ (see its README): an ingest
 * body and the requests delivery must make for it. `origin` replaces the
 * sample host, so end-to-end tests can point a case at their sink.
 */
import { readFileSync, readdirSync } from 'node:fs';

const DIR = new URL('../fixtures/requests/', import.meta.url);
export const SAMPLE_ORIGIN = 'http://sample_domain_endpoint.com';

export interface RequestCase {
  name: string;
  /** The request body as sent (JSON text, or a form for {@link formCase}). */
  body: string;
  /** `METHOD URL` (GET) or `METHOD URL BODY` (POST), one per data object, in order. */
  expected: string[];
}

function read(file: string): string {
  return readFileSync(new URL(file, DIR), 'utf8');
}

function expectedLines(file: string, origin: string): string[] {
  return read(file)
    .trim()
    .split('\n')
    .map((line) => line.replaceAll(SAMPLE_ORIGIN, origin));
}

/** Every JSON case, by name. */
export function requestCases(origin = SAMPLE_ORIGIN): RequestCase[] {
  return readdirSync(DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const name = f.slice(0, -'.json'.length);
      return { name, body: read(f).replaceAll(SAMPLE_ORIGIN, origin), expected: expectedLines(`${name}.expected`, origin) };
    });
}

export function requestCase(name: string, origin = SAMPLE_ORIGIN): RequestCase {
  const found = requestCases(origin).find((c) => c.name === name);
  if (found === undefined) throw new Error(`no request case "${name}" in test/fixtures/requests`);
  return found;
}

/** The form-encoded twin of a case (`<name>.form`), the origin swapped inside its encoded URL. */
export function formCase(name: string, origin = SAMPLE_ORIGIN): RequestCase {
  const body = read(`${name}.form`).trim().replaceAll(encodeURIComponent(SAMPLE_ORIGIN), encodeURIComponent(origin));
  return { name, body, expected: expectedLines(`${name}.form.expected`, origin) };
}
