/**
 * Test helpers for the layers area: temp dirs, GNU tar listings, a minimal OCI layout writer (for umoci), and a
 * comparable snapshot of a directory tree or of an FsEntry stream.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BuiltLayer } from '../../src/layers/build.js';
import type { FsEntry } from '../../src/tar/entry.js';
import type { LayerOpener } from '../../src/layers/merge.js';

export async function tempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `canvos-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** `tar -tvvf` of a (gzip) blob with GNU tar, xattrs shown. */
export function gnuList(blob: string): string {
  return execFileSync('tar', ['--xattrs', '--xattrs-include=*', '-tvvvf', blob], { encoding: 'utf8' });
}

export function opener(path: string): LayerOpener {
  return async () => createReadStream(path);
}

export async function sha256OfFile(p: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(p))
    .digest('hex');
}

/** One comparable line per filesystem object. */
export type Snapshot = Map<string, string>;

/** Snapshot a directory on disk (paths relative, hardlinks look like files). */
export async function snapshotDir(root: string): Promise<Snapshot> {
  const out: Snapshot = new Map();
  async function walk(rel: string): Promise<void> {
    for (const name of (await readdir(join(root, rel))).sort()) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const st = await lstat(join(root, r));
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isDirectory()) {
        out.set(r, `dir ${mode}`);
        await walk(r);
      } else if (st.isSymbolicLink()) out.set(r, `symlink -> ${await readlink(join(root, r))}`);
      else if (st.isFile()) out.set(r, `file ${mode} ${await sha256OfFile(join(root, r))}`);
      else out.set(r, `other ${mode}`);
    }
  }
  await walk('');
  return out;
}

/** Snapshot an FsEntry stream (consumes content). Hardlinks are resolved to their target's line. */
export async function snapshotEntries(entries: AsyncIterable<FsEntry>): Promise<Snapshot> {
  const out: Snapshot = new Map();
  const links: Array<[string, string]> = [];
  for await (const e of entries) {
    if (e.path === '') continue;
    const mode = e.mode.toString(8);
    if (e.type === 'directory') out.set(e.path, `dir ${mode}`);
    else if (e.type === 'symlink') out.set(e.path, `symlink -> ${e.linkname}`);
    else if (e.type === 'hardlink') links.push([e.path, e.linkname!]);
    else if (e.type === 'file') {
      const h = createHash('sha256');
      for await (const c of e.content ?? []) h.update(c as Buffer);
      out.set(e.path, `file ${mode} ${h.digest('hex')}`);
    } else out.set(e.path, `other ${mode}`);
  }
  for (const [p, t] of links) out.set(p, out.get(t) ?? `dangling hardlink -> ${t}`);
  return out;
}

/** Write an OCI image layout (one image, tag `latest`) whose blobs dir already holds `layers`. */
export async function writeLayout(layout: string, layers: readonly BuiltLayer[]): Promise<void> {
  const blobs = join(layout, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const put = async (obj: unknown): Promise<{ digest: string; size: number }> => {
    const buf = Buffer.from(JSON.stringify(obj));
    const hex = createHash('sha256').update(buf).digest('hex');
    await writeFile(join(blobs, hex), buf);
    return { digest: `sha256:${hex}`, size: buf.length };
  };
  const config = await put({
    architecture: 'amd64',
    os: 'linux',
    config: {},
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
  });
  const manifest = await put({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  });
  await writeFile(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          annotations: { 'org.opencontainers.image.ref.name': 'latest' },
        },
      ],
    }),
  );
}
