/**
 * Pure: the HTTP request a postback becomes. Shared by the delivery worker
 * (which sends it) and ingest's `/preview` (which shows it), so the two can
 * never disagree.
 */
import type { DataObject } from './codec.js';
import { render, type CompiledTemplate } from './template.js';

export interface OutgoingRequest {
  method: 'GET' | 'POST';
  url: string;
  headers: Record<string, string>;
  body: string | null;
}

export function outgoingRequest(
  t: CompiledTemplate,
  data: DataObject,
  id: string,
  encodedDefault: string,
  userAgent: string,
): OutgoingRequest {
  const url = render(t, data, encodedDefault);
  if (t.method === 'GET') {
    return { method: 'GET', url, headers: { 'user-agent': userAgent, 'x-postback-id': id }, body: null };
  }
  return {
    method: 'POST',
    url,
    headers: { 'user-agent': userAgent, 'x-postback-id': id, 'content-type': 'application/json' },
    body: JSON.stringify(data),
  };
}
