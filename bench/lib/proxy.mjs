/**
 * A counting HTTP reverse proxy for benches: forwards every request to the target registry unchanged (Host kept, so
 * the registry's Location headers point back at the proxy) and records method, path and request-body bytes, to count
 * how many bytes a client uploaded (PATCH/PUT/POST bodies).
 */
import { createServer, request } from 'node:http';

/** Start the proxy; resolves {url, host, requests, uploadedBytes(), reset(), stop()}. */
export async function startCountingProxy(targetUrl) {
  const target = new URL(targetUrl);
  const requests = [];
  const server = createServer((req, res) => {
    const rec = { method: req.method, path: req.url, bytes: 0, status: 0 };
    requests.push(rec);
    const up = request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (ures) => {
        rec.status = ures.statusCode;
        res.writeHead(ures.statusCode, ures.statusMessage, ures.rawHeaders);
        ures.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.on('data', (d) => (rec.bytes += d.length));
    req.pipe(up);
  });
  server.keepAliveTimeout = 30000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests,
    /** Request-body bytes sent with PATCH/PUT/POST since the last reset. */
    uploadedBytes: () =>
      requests.filter((r) => ['PATCH', 'PUT', 'POST'].includes(r.method)).reduce((n, r) => n + r.bytes, 0),
    reset: () => requests.splice(0),
    stop: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
