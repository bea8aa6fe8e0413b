/**
 * What runs inside a delivery thread (a Piscina task). It imports only pure
 * modules and undici, never the pool or Redis: it renders each postback of a
 * batch, sends it through its own keep-alive pools, and returns one plain
 * {@link AttemptResult} per item, in order. It never throws.
 */
import { workerData } from 'piscina';
import { outgoingRequest } from '../queue/outgoing.js';
import { createSigner } from '../queue/signature.js';
import { parseTemplate, requestPath, type CompiledTemplate } from '../queue/template.js';
import type { AttemptResult, BatchTask, WorkerSettings } from './attempt.js';
import { HttpClient } from './http-client.js';

const settings = workerData as WorkerSettings;
const client = new HttpClient(settings);
const signer = createSigner(settings.signingSecrets);

/** Compiled templates by id (content-addressed, so never stale). */
const compiled = new Map<string, CompiledTemplate | string>();
const COMPILED_MAX = 10_000;

function template(id: string, method: 'GET' | 'POST', url: string): CompiledTemplate | string {
  let t = compiled.get(id);
  if (t === undefined) {
    const res = parseTemplate(method, url);
    t = res.ok ? res.template : res.message;
    if (compiled.size >= COMPILED_MAX) compiled.clear();
    compiled.set(id, t);
  }
  return t;
}

function failed(url: string, errorCode: string, error: string): AttemptResult {
  return {
    url,
    deliveryTime: Date.now(),
    responseTime: null,
    latencyMs: 0,
    status: null,
    body: null,
    errorCode,
    error,
    retryAfter: null,
  };
}

function attempt(t: CompiledTemplate | string, id: string, data: BatchTask['items'][number][2], signal: AbortSignal) {
  if (typeof t === 'string') return Promise.resolve(failed('', 'PB_ERR_BAD_URL', t));
  const out = outgoingRequest(t, data, id, settings.encodedDefault, settings.userAgent, signer, Date.now());
  let origin: string;
  let path: string;
  if (t.origin !== null) {
    origin = t.origin;
    path = requestPath(t, out.url);
  } else {
    // A placeholder in the host: parse this rendering (the slow path).
    let u: URL;
    try {
      u = new URL(out.url);
    } catch {
      return Promise.resolve(failed(out.url, 'PB_ERR_BAD_URL', 'the rendered URL is not valid (check values used in the host)'));
    }
    if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.username !== '' || u.password !== '') {
      return Promise.resolve(failed(out.url, 'PB_ERR_BAD_URL', 'the rendered URL must be http(s) without credentials'));
    }
    origin = u.origin;
    path = u.pathname + u.search;
  }
  return client.send({ origin, path, url: out.url, method: out.method, headers: out.headers, body: out.body }, signal);
}

export default async function deliverBatch(task: BatchTask): Promise<AttemptResult[]> {
  const templates = task.templates.map(([id, method, url]) => template(id, method, url));
  const { signal, done } = client.deadline();
  try {
    return await Promise.all(
      task.items.map(([ti, id, data]) => attempt(templates[ti] ?? 'unknown template', id, data, signal)),
    );
  } finally {
    done();
  }
}
