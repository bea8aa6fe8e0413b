/**
 * A small HTTP server for a role without one of its own (delivery):
 * `GET /metrics` (Prometheus text), `GET /healthz` (the process is alive),
 * `GET /readyz` (it can do its work: Redis reachable, consumer group there).
 */
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export function createOpsServer(registry: Registry, ready: () => boolean): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const json = (status: number, body: string) =>
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(body);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      json(405, '{"error":"method_not_allowed","message":"this path takes GET"}');
    } else if (path === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        () => json(500, '{"error":"internal","message":"metrics unavailable"}'),
      );
    } else if (path === '/healthz') {
      json(200, '{"status":"ok"}');
    } else if (path === '/readyz') {
      const ok = ready();
      json(ok ? 200 : 503, ok ? '{"status":"ready"}' : '{"status":"not ready"}');
    } else {
      json(404, '{"error":"not_found","message":"try /metrics, /healthz or /readyz"}');
    }
  });
}
