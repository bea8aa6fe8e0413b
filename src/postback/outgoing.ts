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

/** `signer` null: unsigned. `nowMs`: when the request goes out (the signature's timestamp). */
export function outgoingRequest(
  t: CompiledTemplate,
  data: DataObject,
  id: string,
  encodedDefault: string,
  userAgent: string,
  signer: Signer | null = null,
  nowMs = 0,
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
  if (signer !== null) {
    const ts = Math.floor(nowMs / 1000);
    out.headers['x-postback-timestamp'] = String(ts);
    out.headers['x-postback-signature'] = signer.sign(id, ts, out.method, url, out.body);
  }
  return out;
}
