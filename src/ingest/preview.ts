/**
 * Pure: what `POST /preview` answers, the exact requests delivery would make
 * now for a validated ingest request, with the ids they would carry.
 */
import { postbackId } from '../postback/ids.js';
import { outgoingRequest, type OutgoingRequest } from '../postback/outgoing.js';
import type { Signer } from '../postback/signature.js';
import type { IngestRequest } from './parse-request.js';

export interface PreviewRequest extends OutgoingRequest {
  id: string;
  /** ms epoch of the first attempt if the request were ingested now. */
  notBefore: number;
}

export function buildPreview(
  req: IngestRequest,
  requestId: string,
  encodedDefault: string,
  userAgent: string,
  now: number,
  signer: Signer | null = null,
): { requests: PreviewRequest[] } {
  const notBefore = now + req.delayMs;
  const requests = req.items.map((data, i) => {
    const id = postbackId(requestId, i);
    return { id, ...outgoingRequest(req.template, data, id, encodedDefault, userAgent, signer, notBefore), notBefore };
  });
  return { requests };
}
