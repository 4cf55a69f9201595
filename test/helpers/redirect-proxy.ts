/**
 * A registry front that behaves like registries backed by object storage: blob GETs the registry would answer
 * are redirected (307) to a presigned-style URL on a "storage" server bound to ANOTHER host, 127.0.0.2, which
 * streams the bytes from the registry and records the headers it received — so tests can prove a client never
 * sends its registry Authorization to a different host. Everything else is forwarded unchanged.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import {
  Agent,
  closeServer,
  createServer,
  forwardRequest,
  listen,
  relayBody,
  responseHeaders,
} from './http-forward.js';

/** A running redirect proxy. */
export interface RedirectProxy {
  /** 'http://127.0.0.1:PORT' (the registry front). */
  url: string;
  host: string;
  /** '127.0.0.2:PORT' (the storage server). */
  storageHost: string;
  /** Every request the storage server received: path (with query) and headers. */
  storageRequests: Array<{ path: string; headers: Record<string, string | string[] | undefined> }>;
  stop(): Promise<void>;
}

/** Options of {@link startRedirectProxy}. */
export interface RedirectProxyOptions {
  /**
   * Credentials the storage server uses to read blobs from the registry. Default: it replays, server-side, the
   * Authorization the client sent with the redirected request (like a presigned URL standing for it).
   */
  username?: string;
  password?: string;
}

const BLOB_GET = /^\/v2\/(.+)\/blobs\/(sha256:[0-9a-f]{64})$/;

/** Starts the proxy (127.0.0.1, free port) and its storage server (127.0.0.2, free port) in front of `registryUrl`. */
export async function startRedirectProxy(registryUrl: string, opts: RedirectProxyOptions = {}): Promise<RedirectProxy> {
  const target = new URL(new URL(registryUrl).origin);
  // No upstream keep-alive: reusing a socket the target just closed would surface as a spurious 502.
  const agent = new Agent({ keepAlive: false });
  // sig → what the signed URL stands for (in-memory "presigning").
  const grants = new Map<string, { name: string; digest: string; authorization?: string }>();
  const storageRequests: RedirectProxy['storageRequests'] = [];
  const basic =
    opts.username !== undefined
      ? `Basic ${Buffer.from(`${opts.username}:${opts.password ?? ''}`).toString('base64')}`
      : undefined;
  let origin = '';
  let storageOrigin = '';

  const front = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const m = req.method === 'GET' ? BLOB_GET.exec(new URL(req.url ?? '/', 'http://x').pathname) : null;
    const up = await forwardRequest(req, target, agent);
    const status = up.statusCode ?? 0;
    // Only blobs the registry would actually serve are redirected; 401/404 go back as they are, so auth still works.
    if (m && (status === 200 || status === 206)) {
      up.destroy();
      const sig = randomBytes(12).toString('hex');
      grants.set(sig, { name: m[1]!, digest: m[2]!, authorization: req.headers.authorization });
      res.writeHead(307, { location: `${storageOrigin}/storage/${m[2]}?sig=${sig}`, 'content-length': '0' }).end();
      return;
    }
    await relayBody(up, res, responseHeaders(up, target, origin));
  };

  const storage = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    storageRequests.push({ path: req.url ?? '', headers: { ...req.headers } });
    const url = new URL(req.url ?? '/', storageOrigin);
    const grant = grants.get(url.searchParams.get('sig') ?? '');
    const digest = /^\/storage\/(sha256:[0-9a-f]{64})$/.exec(url.pathname)?.[1];
    if ((req.method !== 'GET' && req.method !== 'HEAD') || !grant || grant.digest !== digest) {
      res.writeHead(403, { 'content-type': 'text/plain' }).end('bad signature');
      return;
    }
    const auth = basic ?? grant.authorization ?? null;
    // Rewrite the request onto the registry's blob URL, keeping Range so resumed downloads work.
    req.url = `/v2/${grant.name}/blobs/${grant.digest}`;
    const up = await forwardRequest(req, target, agent, { authorization: auth, host: target.host });
    await relayBody(up, res, responseHeaders(up, target, origin));
  };

  const frontServer = createServer((req, res) => {
    front(req, res).catch(() => (res.headersSent ? res.destroy() : res.writeHead(502).end()));
  });
  const storageServer = createServer((req, res) => {
    storage(req, res).catch(() => (res.headersSent ? res.destroy() : res.writeHead(502).end()));
  });
  origin = await listen(frontServer, '127.0.0.1');
  storageOrigin = await listen(storageServer, '127.0.0.2');
  return {
    url: origin,
    host: new URL(origin).host,
    storageHost: new URL(storageOrigin).host,
    storageRequests,
    async stop() {
      await closeServer(frontServer);
      await closeServer(storageServer, agent);
    },
  };
}
