/**
 * Delivers one batch: renders each postback, sends it through keep-alive
 * pools, and returns one plain {@link AttemptResult} per item, in order. It
 * never throws. A Piscina worker runs one (worker.ts); the main thread runs
 * its own when DELIVERY_WORKERS is 0. It imports only pure modules and
 * undici, never the pool or Redis.
 */
import { outgoingRequest } from '../postback/outgoing.js';
import { createSigner, type Signer } from '../postback/signature.js';
import { parseTemplate, requestPath, type CompiledTemplate } from '../postback/template.js';
import { parseOriginPatterns, type OriginPattern } from '../postback/origin-pattern.js';
import { noResponse, type AttemptResult, type BatchTask, type WorkerPolicy, type WorkerSettings } from './attempt.js';
import { HttpClient } from './http-client.js';

const COMPILED_MAX = 10_000;

export class BatchRunner {
  private readonly client: HttpClient;
  private readonly signer: Signer | null;
  /** Compiled templates by id (content-addressed, so never stale). */
  private readonly compiled = new Map<string, CompiledTemplate | string>();
  /** DELIVERY_ALLOWED_ORIGINS (null: any). Ingest refuses others; this catches what was queued before. */
  private readonly allowed: OriginPattern[] | null;

  constructor(private readonly settings: WorkerSettings) {
    this.client = new HttpClient(settings);
    this.signer = createSigner(settings.signingSecrets, settings.signingScheme);
    this.allowed = parseOriginPatterns(settings.allowedOrigins);
  }

  private template(id: string, method: 'GET' | 'POST', url: string): CompiledTemplate | string {
    let t = this.compiled.get(id);
    if (t === undefined) {
      const res = parseTemplate(method, url);
      t = res.ok ? res.template : res.message;
      if (this.compiled.size >= COMPILED_MAX) this.compiled.clear();
      this.compiled.set(id, t);
    }
    return t;
  }

  private attempt(t: CompiledTemplate | string, id: string, data: BatchTask['items'][number][2], policy: WorkerPolicy): Promise<AttemptResult> {
    if (typeof t === 'string') return Promise.resolve(noResponse('', 'PB_ERR_BAD_URL', t, Date.now()));
    const s = this.settings;
    const out = outgoingRequest(t, data, id, s.encodedDefault, s.userAgent, { signer: policy.sign ? this.signer : null, nowMs: Date.now(), headers: policy.headers });
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
        return Promise.resolve(noResponse(out.url, 'PB_ERR_BAD_URL', 'the rendered URL is not valid (check values used in the host)', Date.now()));
      }
      if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.username !== '' || u.password !== '') {
        return Promise.resolve(noResponse(out.url, 'PB_ERR_BAD_URL', 'the rendered URL must be http(s) without credentials', Date.now()));
      }
      origin = u.origin;
      path = u.pathname + u.search;
    }
    if (this.allowed !== null && !this.allowed.some((p) => p.matches(origin))) {
      return Promise.resolve(noResponse(out.url, 'PB_ERR_ORIGIN_NOT_ALLOWED', `${origin} is not in DELIVERY_ALLOWED_ORIGINS`, Date.now()));
    }
    return this.client.send({ origin, path, url: out.url, method: out.method, headers: out.headers, body: out.body }, policy.timeoutMs);
  }

  run(task: BatchTask): Promise<AttemptResult[]> {
    const templates = task.templates.map(([id, method, url]) => this.template(id, method, url));
    return Promise.all(task.items.map(([ti, id, data]) => this.attempt(templates[ti] ?? 'unknown template', id, data, task.policy)));
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
