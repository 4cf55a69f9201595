/**
 * A WAN stand-in for benches: an HTTP reverse proxy on loopback in front of a registry. Every request waits
 * `latencyMs` before it is forwarded, and every response body is paced to `bytesPerSec` per connection, which is
 * what one TCP stream gets over a long-haul link (throughput ≈ window / RTT) or from a CDN that shapes per
 * connection. Request bodies (uploads) are not paced. The Host header is kept, so Location headers point back at the
 * proxy. Used by copy.mjs and mirror.mjs.
 */
import { createServer, request } from 'node:http';

/** Start the proxy in front of `targetHost` (`127.0.0.1:port`); resolves {host, stop()}. */
export async function startWan(targetHost, latencyMs, bytesPerSec) {
  const [hostname, port] = targetHost.split(':');
  const server = createServer((req, res) => {
    setTimeout(() => {
      const up = request(
        { host: hostname, port: Number(port), method: req.method, path: req.url, headers: req.headers },
        (ur) => {
          res.writeHead(ur.statusCode ?? 502, ur.headers);
          const started = Date.now();
          let sent = 0;
          ur.on('data', (c) => {
            sent += c.length;
            const flowing = res.write(c);
            const ahead = (sent / bytesPerSec) * 1000 - (Date.now() - started);
            if (ahead > 5 || !flowing) {
              ur.pause();
              const go = () => setTimeout(() => ur.resume(), Math.max(0, ahead));
              if (flowing) go();
              else res.once('drain', go);
            }
          });
          ur.on('end', () => res.end());
          ur.on('error', () => res.destroy());
        },
      );
      up.on('error', () => res.destroy());
      req.pipe(up);
    }, latencyMs);
  });
  server.keepAliveTimeout = 30000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    host: `127.0.0.1:${server.address().port}`,
    stop: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
