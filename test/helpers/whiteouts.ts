/**
 * An independent check of OCI whiteouts: lists every layer of an image with GNU tar (not our own reader), replays
 * them bottom-up, and reports each whiteout that hides nothing a lower layer has (containerd's and podman's
 * overlay drivers then show a `c?????????` entry), and each directory a layer creates only to hold whiteouts.
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { run, skopeo } from './tools.js';

const OPAQUE = '.wh..wh..opq';

async function tarFlag(file: string): Promise<string[]> {
  const fh = await open(file, 'r');
  try {
    const b = Buffer.alloc(4);
    await fh.read(b, 0, 4, 0);
    if (b[0] === 0x1f && b[1] === 0x8b) return ['-z'];
    if (b.readUInt32LE(0) === 0xfd2fb528) return ['--zstd'];
    return [];
  } finally {
    await fh.close();
  }
}

/** Paths of one layer blob as GNU tar lists them, normalised (no `./`, no trailing `/`), with directory flags. */
export async function listLayer(file: string): Promise<{ path: string; dir: boolean }[]> {
  const r = await run('tar', ['-t', ...(await tarFlag(file)), '-f', file]);
  if (r.code !== 0) throw new Error(`tar -t ${file}: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => ({ path: l.replace(/^\.\//, '').replace(/\/+$/, ''), dir: l.endsWith('/') }))
    .filter((e) => e.path !== '' && e.path !== '.');
}

/** Problems of a layer chain (bottom first): dangling whiteouts and directories invented just to hold whiteouts. */
export async function whiteoutProblems(layerFiles: readonly string[], label = ''): Promise<string[]> {
  const present = new Set<string>();
  const problems: string[] = [];
  for (const [i, file] of layerFiles.entries()) {
    const entries = await listLayer(file);
    const below = new Set(present);
    const removeTree = (p: string, keepSelf: boolean): void => {
      for (const q of [...present]) if ((q === p && !keepSelf) || q.startsWith(`${p}/`)) present.delete(q);
    };
    for (const e of entries) {
      const slash = e.path.lastIndexOf('/');
      const dir = slash < 0 ? '' : e.path.slice(0, slash);
      const name = e.path.slice(slash + 1);
      if (name === OPAQUE) {
        removeTree(dir, true);
      } else if (name.startsWith('.wh.')) {
        const hidden = dir ? `${dir}/${name.slice(4)}` : name.slice(4);
        if (!below.has(hidden))
          problems.push(`${label}layer ${i}: whiteout ${e.path} hides nothing (no lower layer has ${hidden})`);
        removeTree(hidden, false);
      }
    }
    for (const e of entries) {
      const name = e.path.slice(e.path.lastIndexOf('/') + 1);
      if (name.startsWith('.wh.')) continue;
      present.add(e.path);
      for (let j = e.path.indexOf('/'); j > 0; j = e.path.indexOf('/', j + 1)) present.add(e.path.slice(0, j)); // implied parents
    }
    // A directory new in this layer whose only contents are whiteouts exists just to carry them.
    for (const e of entries) {
      if (!e.dir || below.has(e.path)) continue;
      const inside = entries.filter((x) => x.path.startsWith(`${e.path}/`));
      if (
        inside.length > 0 &&
        inside.every((x) => x.dir || x.path.slice(x.path.lastIndexOf('/') + 1).startsWith('.wh.'))
      ) {
        const real = inside.filter((x) => !x.dir);
        if (real.length > 0) problems.push(`${label}layer ${i}: directory ${e.path} is new and holds only whiteouts`);
      }
    }
  }
  return problems;
}

/** The layer digests of an image, via skopeo (an independent reader). */
export async function imageLayerDigests(transportRef: string, tlsVerify = false): Promise<string[]> {
  const args = transportRef.startsWith('docker://')
    ? ['inspect', `--tls-verify=${tlsVerify}`, transportRef]
    : ['inspect', transportRef];
  return (JSON.parse(await skopeo(args)) as { Layers: string[] }).Layers;
}

/** Path of a blob in a docker-registry storage directory. */
export function registryBlobPath(dataDir: string, digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return join(dataDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
}

/** Path of a blob in an OCI layout. */
export function layoutBlobPath(layout: string, digest: string): string {
  return join(layout, 'blobs/sha256', digest.slice('sha256:'.length));
}

/** Every repository:tag of a test registry (catalog + tags lists). */
export async function registryTags(url: string): Promise<string[]> {
  const cat = (await (await fetch(`${url}/v2/_catalog?n=1000`)).json()) as { repositories: string[] };
  const out: string[] = [];
  for (const repo of cat.repositories) {
    const t = (await (await fetch(`${url}/v2/${repo}/tags/list`)).json()) as { tags: string[] | null };
    for (const tag of t.tags ?? []) out.push(`${repo}:${tag}`);
  }
  return out.sort();
}
