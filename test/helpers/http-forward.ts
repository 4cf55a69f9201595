/**
 * Streaming HTTP forwarding shared by the fault and redirect proxies: relays a client request (method, headers,
 * body) to a target without buffering, rewrites absolute Location headers that point at the target so the client
 * keeps talking to the proxy, and relays response bodies, optionally throttled or cut off after N bytes.
 */
import { Agent, request, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

// Hop-by-hop headers (RFC 9110 §7.6.1) and Expect, which node's server already answered with 100 Continue.
const HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'te',
  'trailer',
  'upgrade',
  'expect',
]);

/** Copies `headers` without hop-by-hop fields. */
function endToEnd(headers: IncomingMessage['headers']): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP.has(k)) out[k] = v;
  return out;
}

/**
 * Sends `req` to `target` (an origin URL) with its body streamed, `Host` set to the target, and `extraHeaders`
 * merged in (a null value removes a header); resolves with the target's response.
 */
export function forwardRequest(
  req: IncomingMessage,
  target: URL,
  agent: Agent,
  extraHeaders: Record<string, string | null> = {},
): Promise<IncomingMessage> {
  const headers = endToEnd(req.headers);
  headers.host = target.host;
  for (const [k, v] of Object.entries(extraHeaders)) {
    if (v === null) Reflect.deleteProperty(headers, k);
    else headers[k] = v;
  }
  return new Promise((resolve, reject) => {
    const up = request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent },
      resolve,
    );
    up.on('error', reject);
    // A client that goes away mid-upload must not leave the upstream request hanging.
    req.on('close', () => {
      if (!req.complete) up.destroy(new Error('client aborted the request'));
    });
    req.pipe(up);
  });
}

/** The target's response headers for the client: hop-by-hop removed, Location on the target moved to `proxyOrigin`. */
export function responseHeaders(up: IncomingMessage, target: URL, proxyOrigin: string): OutgoingHttpHeaders {
  const out = endToEnd(up.headers);
  const loc = up.headers.location;
  if (loc && /^https?:\/\//i.test(loc)) {
    const u = new URL(loc);
    if (u.origin === target.origin) out.location = proxyOrigin + u.pathname + u.search + u.hash;
  }
  return out;
}

/** Options of {@link relayBody}. */
export interface RelayOptions {
  /** Close the connection (FIN, no trailing bytes) once this many body bytes were sent. Default: never. */
  afterBytes?: number;
  /** Throttle the body to this rate. Default: unthrottled. */
  bytesPerSecond?: number;
  /** Stop sending once this many body bytes were sent, keeping the connection open (a stalled server). Default: never. */
  stallAfterBytes?: number;
  /** Flip the bits of the body byte at this offset (a corrupting proxy). Default: none. */
  corruptAt?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Writes `up`'s status, headers and body to `res`, with backpressure; see {@link RelayOptions}. */
export async function relayBody(
  up: IncomingMessage,
  res: ServerResponse,
  headers: OutgoingHttpHeaders,
  opts: RelayOptions = {},
): Promise<void> {
  res.writeHead(up.statusCode ?? 502, headers);
  let closed = false;
  res.on('close', () => {
    closed = true;
    up.destroy();
  });
  const write = (b: Buffer) => new Promise<void>((resolve) => (res.write(b) ? resolve() : res.once('drain', resolve)));
  const cut = () => {
    // end() on the socket flushes what was written (headers included) and then sends FIN: the client sees a body
    // shorter than Content-Length, i.e. a connection dropped mid-transfer.
    up.destroy();
    res.flushHeaders();
    const socket = res.socket;
    socket?.end(() => socket.destroy());
  };
  if (opts.afterBytes === 0) return cut();
  const start = Date.now();
  const slice = opts.bytesPerSecond ? Math.max(1, Math.floor(opts.bytesPerSecond / 20)) : Infinity;
  let sent = 0;
  try {
    for await (const chunk of up as AsyncIterable<Buffer>) {
      for (let off = 0; off < chunk.length;) {
        if (closed) return;
        let part = chunk.subarray(off, off + Math.min(slice, chunk.length - off));
        if (opts.afterBytes !== undefined) part = part.subarray(0, opts.afterBytes - sent);
        if (opts.stallAfterBytes !== undefined) {
          part = part.subarray(0, Math.max(0, opts.stallAfterBytes - sent));
          if (part.length === 0) {
            up.destroy();
            return;
          }
        }
        if (opts.corruptAt !== undefined && opts.corruptAt >= sent && opts.corruptAt < sent + part.length) {
          part = Buffer.from(part);
          part[opts.corruptAt - sent] = part[opts.corruptAt - sent]! ^ 0xff;
        }
        if (opts.bytesPerSecond) {
          const due = start + ((sent + part.length) / opts.bytesPerSecond) * 1000;
          if (due > Date.now()) await sleep(due - Date.now());
          if (closed) return;
        }
        await write(part);
        sent += part.length;
        off += part.length;
        if (opts.afterBytes !== undefined && sent >= opts.afterBytes) return cut();
      }
    }
  } catch {
    // The upstream broke off: drop the client connection too, so the client sees the failure.
    if (!closed) res.destroy();
    return;
  }
  if (!closed) res.end();
}

/** Listens on `host` port 0 and resolves with the server's origin URL. */
export function listen(server: Server, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve(`http://${host}:${(server.address() as AddressInfo).port}`));
  });
}

/** Closes a server, its open connections and the upstream agent. */
export async function closeServer(server: Server, agent?: Agent): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  agent?.destroy();
}

export { createServer, Agent };
