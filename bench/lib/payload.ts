/**
 * Request bodies, all from the v1 sample of the original assignment
 * (test/fixtures/requests/assignment-v1.json): the same endpoint and the same two
 * data objects, repeated to the item count asked for. For deliveries the
 * URL points at a sink origin under a phase tag, and each data object also
 * carries `ts` (µs of histogram.ts `nowUs()`, the machine's monotonic
 * clock, when the request was sent or scheduled), which the template
 * passes on as `&ts={ts}` so the sink can measure ingest-to-receipt
 * latency.
 */

export const SAMPLE_URL = 'http://sample_domain_endpoint.com/data?key={key}&value={value}&foo={bar}';
export const SAMPLE_ITEMS: readonly { key: string; value: string }[] = [
  { key: 'Azureus', value: 'Dendrobates' },
  { key: 'Phyllobates', value: 'Terribilis' },
];

function items(n: number, ts?: number): Record<string, string | number>[] {
  const out: Record<string, string | number>[] = [];
  for (let i = 0; i < n; i++) {
    const base = SAMPLE_ITEMS[i % SAMPLE_ITEMS.length] as { key: string; value: string };
    out.push(ts === undefined ? { ...base } : { ...base, ts });
  }
  return out;
}

/** The v1 sample with `n` items, as sent to ingest in the `ingest` scenarios (nothing delivered). */
export function sampleBody(n: number): string {
  return JSON.stringify({ endpoint: { method: 'GET', url: SAMPLE_URL }, data: items(n) });
}

/** The sample's URL template, pointed at a sink origin under a phase tag, with `&ts={ts}`. */
export function sinkTemplate(origin: string, tag: string): string {
  return `${origin}/${tag}/data?key={key}&value={value}&foo={bar}&ts={ts}`;
}

/** A request for delivery to the sink: `n` sample items, each stamped with `ts`. */
export function sinkBody(template: string, n: number, ts: number): string {
  return JSON.stringify({ endpoint: { method: 'GET', url: template }, data: items(n, ts) });
}

/** The sample's items without `ts`, for the bandwidth scenario (exactly the sample's data). */
export function plainSinkBody(origin: string, tag: string, n: number): string {
  return JSON.stringify({
    endpoint: { method: 'GET', url: `${origin}/${tag}/data?key={key}&value={value}&foo={bar}` },
    data: items(n),
  });
}

/** How the sink renders a sample item (what delivery sends), for baselines that render themselves. */
export function renderSample(template: string, data: Record<string, string | number>): string {
  return template.replace(/\{([^}]+)\}/g, (_m, name: string) => {
    const v = data[name];
    return v === undefined || v === null ? '' : encodeURIComponent(String(v));
  });
}
