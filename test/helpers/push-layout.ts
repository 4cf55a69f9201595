/**
 * Pushes an OCI image layout to a registry byte-for-byte, independently of src/ (an oracle like fixtures.ts).
 * Needed because skopeo 1.9's `oci:` transport ignores index.json entries with Docker media types, so
 * `makeOciLayout({docker: true})` layouts cannot be seeded with skopeo; this keeps every digest as written.
 */
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';

/** Where to push: a TestRegistry (or anything with its url and credentials). */
export interface PushTarget {
  /** 'http://HOST:PORT' */
  url: string;
  username?: string;
  password?: string;
}

interface Desc {
  mediaType: string;
  digest: string;
  size: number;
}

const INDEX_TYPES = new Set([
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
]);
const MANIFEST_TYPES = new Set([
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
]);

/** The Authorization header for push+pull on `repo`, following the registry's /v2/ challenge (none, Basic, Bearer). */
async function authorize(t: PushTarget, repo: string): Promise<string | undefined> {
  const probe = await request(`${t.url}/v2/`);
  await probe.body.dump();
  if (probe.statusCode !== 401) return undefined;
  if (t.username === undefined) throw new Error(`pushLayout: ${t.url} wants credentials`);
  const basic = `Basic ${Buffer.from(`${t.username}:${t.password ?? ''}`).toString('base64')}`;
  const challenge = String(probe.headers['www-authenticate'] ?? '');
  if (/^basic/i.test(challenge)) return basic;
  const param = (k: string) => new RegExp(`${k}="([^"]*)"`).exec(challenge)?.[1];
  const realm = new URL(param('realm') ?? '');
  realm.searchParams.set('service', param('service') ?? '');
  realm.searchParams.set('scope', `repository:${repo}:pull,push`);
  const res = await request(realm, { headers: { authorization: basic } });
  if (res.statusCode !== 200) throw new Error(`pushLayout: token request failed with ${res.statusCode}`);
  return `Bearer ${((await res.body.json()) as { token: string }).token}`;
}

/**
 * Pushes the image index.json names with `org.opencontainers.image.ref.name` = `ref` (default: its only entry)
 * to `target` as `repo:tag` (tag default: `ref`, else 'latest'); children are pushed before their parents.
 * Resolves with the pushed top-level digest.
 */
export async function pushLayout(
  dir: string,
  target: PushTarget,
  repo: string,
  opts: { ref?: string; tag?: string } = {},
): Promise<string> {
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as {
    manifests: Array<Desc & { annotations?: Record<string, string> }>;
  };
  const top =
    opts.ref === undefined
      ? index.manifests[0]
      : index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === opts.ref);
  if (!top || (opts.ref === undefined && index.manifests.length !== 1))
    throw new Error(`pushLayout: cannot pick an image in ${dir}/index.json`);
  const auth = await authorize(target, repo);
  const headers = auth ? { authorization: auth } : {};
  const blobPath = (d: string) => join(dir, 'blobs', ...d.split(':'));

  const putBlob = async (d: Desc): Promise<void> => {
    const head = await request(`${target.url}/v2/${repo}/blobs/${d.digest}`, { method: 'HEAD', headers });
    if (head.statusCode === 200) return;
    const post = await request(`${target.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers });
    await post.body.dump();
    if (post.statusCode !== 202) throw new Error(`pushLayout: upload start for ${d.digest} got ${post.statusCode}`);
    const loc = new URL(String(post.headers.location), target.url);
    loc.searchParams.set('digest', d.digest);
    const size = (await stat(blobPath(d.digest))).size;
    const put = await request(loc, {
      method: 'PUT',
      headers: { ...headers, 'content-type': 'application/octet-stream', 'content-length': String(size) },
      body: createReadStream(blobPath(d.digest)),
    });
    await put.body.dump();
    if (put.statusCode !== 201) throw new Error(`pushLayout: blob ${d.digest} PUT got ${put.statusCode}`);
  };
  const putManifest = async (d: Desc, reference: string): Promise<void> => {
    const data = await readFile(blobPath(d.digest));
    const res = await request(`${target.url}/v2/${repo}/manifests/${reference}`, {
      method: 'PUT',
      headers: { ...headers, 'content-type': d.mediaType },
      body: data,
    });
    const text = await res.body.text();
    if (res.statusCode !== 201)
      throw new Error(`pushLayout: manifest ${d.digest} PUT got ${res.statusCode}: ${text.slice(0, 300)}`);
  };
  const push = async (d: Desc, reference: string): Promise<void> => {
    const body = JSON.parse(await readFile(blobPath(d.digest), 'utf8')) as {
      manifests?: Desc[];
      config?: Desc;
      layers?: Desc[];
    };
    if (INDEX_TYPES.has(d.mediaType)) {
      for (const m of body.manifests ?? []) await push(m, m.digest);
    } else if (MANIFEST_TYPES.has(d.mediaType)) {
      for (const b of [body.config, ...(body.layers ?? [])]) if (b) await putBlob(b);
    } else {
      throw new Error(`pushLayout: unsupported media type ${d.mediaType} for ${d.digest}`);
    }
    await putManifest(d, reference);
  };
  await push(top, opts.tag ?? top.annotations?.['org.opencontainers.image.ref.name'] ?? 'latest');
  return top.digest;
}
