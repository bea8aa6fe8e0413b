/**
 * Pure: the HTTP request a postback becomes. Shared by the delivery worker
 * (which sends it) and ingest's `/preview` (which shows it), so the two can
 * never disagree.
 */
import type { DataObject } from './data.js';
import type { Signer } from './signature.js';
import { render, type CompiledTemplate } from './template.js';

export interface OutgoingRequest {
  method: 'GET' | 'POST';
  url: string;
  headers: Record<string, string>;
  body: string | null;
}

export interface OutgoingOptions {
  /** Null: unsigned. */
  signer?: Signer | null;
  /** When the request goes out, ms epoch (the signature's timestamp). */
  nowMs?: number;
  /** A partner policy's static headers (validated: they never replace the service's own). */
  headers?: Readonly<Record<string, string>>;
}

export function outgoingRequest(
  t: CompiledTemplate,
  data: DataObject,
  id: string,
  encodedDefault: string,
  userAgent: string,
  opts: OutgoingOptions = {},
): OutgoingRequest {
  const url = render(t, data, encodedDefault);
  const out: OutgoingRequest =
    t.method === 'GET'
      ? { method: 'GET', url, headers: { 'user-agent': userAgent, 'x-postback-id': id }, body: null }
      : {
          method: 'POST',
          url,
          headers: { 'user-agent': userAgent, 'x-postback-id': id, 'content-type': 'application/json' },
          body: JSON.stringify(data),
        };
  if (opts.headers) {
    for (const [name, value] of Object.entries(opts.headers)) if (!Object.hasOwn(out.headers, name)) out.headers[name] = value;
  }
  if (opts.signer) Object.assign(out.headers, opts.signer.headers(id, Math.floor((opts.nowMs ?? 0) / 1000), out.method, url, out.body));
  return out;
}
