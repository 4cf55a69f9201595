/**
 * A hostile registry for the reliability sweep: a minimal distribution API serving one small image
 * (`<repo>:v1`, one gzip layer) whose misbehaviour is chosen by the repository name:
 *
 * - `ok`: behaves;
 * - `huge-manifest`: the manifest answer claims a 2 GB Content-Length and streams zeros;
 * - `endless-manifest`: the manifest is an endless chunked body;
 * - `big-token` / `bad-token`: a Bearer challenge whose token server answers a 10 MB token / invalid JSON;
 * - `file-redirect`: blob GETs are redirected to `file:///etc/passwd`;
 * - `other-realm`: a Bearer challenge whose realm is on another host (`127.0.0.2`), which records the
 *   Authorization headers it receives;
 * - `long-blob` / `short-blob`: the layer is served with more / fewer bytes than its descriptor says.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';

/** A running {@link startHostileRegistry}. */
export interface HostileRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  /** Authorization headers the foreign realm (`other-realm`) received. */
  realmAuth: string[];
  close(): Promise<void>;
}

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A tar holding one file `hello` (one 512-byte header, the data block, two zero blocks). */
function tinyTar(): Buffer {
  const h = Buffer.alloc(512);
  h.write('hello', 0);
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write('00000000006\0', 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\0' + '00', 257);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const data = Buffer.alloc(512);
  data.write('world\n');
  return Buffer.concat([h, data, Buffer.alloc(1024)]);
}

const layer = gzipSync(tinyTar());
const config = Buffer.from(
  JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: {},
    rootfs: { type: 'layers', diff_ids: [sha(tinyTar())] },
  }),
);
const manifest = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(layer), size: layer.length }],
  }),
);
const blobs = new Map([
  [sha(layer), layer],
  [sha(config), config],
]);

/** Stream zeros until the client goes away (64 MiB at most, far past any manifest limit). */
function flood(res: ServerResponse): void {
  const chunk = Buffer.alloc(64 * 1024);
  let left = 1024;
  const gone = (): boolean => res.destroyed || !res.socket || res.socket.destroyed;
  const pump = (): void => {
    while (!gone() && left-- > 0 && res.write(chunk));
    if (left <= 0) res.destroy();
    else if (!gone()) res.once('drain', pump);
  };
  res.on('error', () => {});
  pump();
}

function serve(req: IncomingMessage, res: ServerResponse, host: string, realm: string): void {
  const url = new URL(req.url ?? '/', `http://${host}`);
  const m = /^\/v2\/([^/]+)\/(manifests|blobs)\/(.+)$/.exec(url.pathname);
  if (url.pathname === '/token-big') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token: 'x'.repeat(10 * 1024 * 1024) }));
    return;
  }
  if (url.pathname === '/token-bad') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"token": <html>captive portal</html>');
    return;
  }
  if (url.pathname === '/v2/') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    return;
  }
  if (!m) {
    res.writeHead(404).end();
    return;
  }
  const [, repo, kind, ref] = m as unknown as [string, string, string, string];
  const bearer = (path: string): void => {
    res.writeHead(401, { 'www-authenticate': `Bearer realm="${path}",service="hostile"` }).end();
  };
  if (repo === 'big-token' && !req.headers.authorization) return bearer(`http://${host}/token-big`);
  if (repo === 'bad-token' && !req.headers.authorization) return bearer(`http://${host}/token-bad`);
  if (repo === 'other-realm' && !req.headers.authorization) return bearer(`${realm}/token`);
  if (kind === 'manifests') {
    if (repo === 'huge-manifest') {
      res.writeHead(200, {
        'content-type': 'application/vnd.oci.image.manifest.v1+json',
        'content-length': String(2 * 1024 ** 3),
      });
      return flood(res);
    }
    if (repo === 'endless-manifest') {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
      return flood(res);
    }
    if (ref !== 'v1' && ref !== sha(manifest)) return void res.writeHead(404).end();
    res.writeHead(200, {
      'content-type': 'application/vnd.oci.image.manifest.v1+json',
      'docker-content-digest': sha(manifest),
      'content-length': String(manifest.length),
    });
    res.end(req.method === 'HEAD' ? undefined : manifest);
    return;
  }
  const blob = blobs.get(ref);
  if (!blob) return void res.writeHead(404).end();
  if (repo === 'file-redirect') return void res.writeHead(307, { location: 'file:///etc/passwd' }).end();
  const body =
    blob === layer && repo === 'long-blob'
      ? Buffer.concat([blob, Buffer.alloc(100_000)])
      : blob === layer && repo === 'short-blob'
        ? blob.subarray(0, blob.length - 10)
        : blob;
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length) });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function listen(server: Server, address: string): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, address, () => resolve((server.address() as { port: number }).port)),
  );
}

/** Start a {@link HostileRegistry} on 127.0.0.1 (and its foreign token realm on 127.0.0.2). */
export async function startHostileRegistry(): Promise<HostileRegistry> {
  const realmAuth: string[] = [];
  const realmServer = createServer((req, res) => {
    if (req.headers.authorization) realmAuth.push(req.headers.authorization);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"foreign"}');
  });
  const realm = `http://127.0.0.2:${await listen(realmServer, '127.0.0.2')}`;
  let host = '';
  const server = createServer((req, res) => {
    try {
      serve(req, res, host, realm);
    } catch {
      res.destroy();
    }
  });
  host = `127.0.0.1:${await listen(server, '127.0.0.1')}`;
  const close = (s: Server): Promise<void> =>
    new Promise((r) => {
      s.closeAllConnections();
      s.close(() => r());
    });
  return {
    host,
    realmAuth,
    close: async () => {
      await close(server);
      await close(realmServer);
    },
  };
}
