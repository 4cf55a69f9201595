/**
 * The least a Node client can do for one warm-destination copy (bench/warm-floor.mjs): undici alone (its Agent and
 * request API, loaded from its own files as src/http/undici.ts does), no validation, no retries, no cache, no auth,
 * the same requests as `canvos-lite copy --all-platforms` sends into a warm repository: GET the source index; GET each
 * child manifest while the destination is asked for it (HEAD); one mount per blob (8 at once) from `FROM`; PUT the
 * children, then the index with its tag.
 *
 *   node --liftoff-only bench/lib/warm-floor-client.mjs SRC_HOST/REPO:TAG DST_HOST/REPO:TAG FROM_REPO
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const Agent = require('undici/lib/dispatcher/agent.js');
const Dispatcher = require('undici/lib/dispatcher/dispatcher.js');
Object.assign(Dispatcher.prototype, require('undici/lib/api/index.js'));

const [srcRef, dstRef, from] = process.argv.slice(2);
const split = (ref) => {
  const slash = ref.indexOf('/');
  const colon = ref.lastIndexOf(':');
  return { origin: `http://${ref.slice(0, slash)}`, repo: ref.slice(slash + 1, colon), tag: ref.slice(colon + 1) };
};
const src = split(srcRef);
const dst = split(dstRef);
const agent = new Agent();
const ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

async function send(origin, method, path, headers = {}, body = undefined) {
  const res = await agent.request({ origin, method, path, headers, body });
  const bytes = Buffer.from(await res.body.arrayBuffer());
  if (res.statusCode >= 300 && !(method === 'HEAD' && res.statusCode === 404))
    throw new Error(`${method} ${path}: ${res.statusCode}`);
  return { status: res.statusCode, headers: res.headers, bytes };
}
const getManifest = async (ref) => {
  const r = await send(src.origin, 'GET', `/v2/${src.repo}/manifests/${ref}`, { accept: ACCEPT });
  return { bytes: r.bytes, type: String(r.headers['content-type']), json: JSON.parse(r.bytes.toString('utf8')) };
};

const root = await getManifest(src.tag);
const children = await Promise.all(
  root.json.manifests.map(async (d) => {
    const [m] = await Promise.all([
      getManifest(d.digest),
      send(dst.origin, 'HEAD', `/v2/${dst.repo}/manifests/${d.digest}`, { accept: ACCEPT }),
    ]);
    return { ...m, digest: d.digest };
  }),
);
const blobs = [...new Set(children.flatMap((c) => [c.json.config, ...c.json.layers].map((b) => b.digest)))];
let next = 0;
await Promise.all(
  Array.from({ length: 8 }, async () => {
    while (next < blobs.length) {
      const digest = blobs[next++];
      const q = new URLSearchParams({ mount: digest, from });
      const r = await send(dst.origin, 'POST', `/v2/${dst.repo}/blobs/uploads/?${q}`, { 'content-length': '0' });
      if (r.status !== 201) throw new Error(`mount ${digest}: ${r.status}`);
    }
  }),
);
const put = (ref, m) =>
  send(dst.origin, 'PUT', `/v2/${dst.repo}/manifests/${ref}`, { 'content-type': m.type }, m.bytes);
await Promise.all(children.map((c) => put(c.digest, c)));
await put(dst.tag, root);
await agent.close();
