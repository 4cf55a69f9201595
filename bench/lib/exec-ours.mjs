/**
 * The canvos-lite side of bench/exec.mjs, run as the unprivileged user: materialise the base image of an OCI layout
 * (one uncompressed layer), RUN one command with the rootless executor, gzip the captured layer into the layout as
 * a new image, and push it with `canvos-lite copy`. argv: <layoutDir> <baseTag> <newTag> <dest docker:// ref> <tmpDir> <cmd>
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, readFileSync, writeFileSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { ROOT } from './util.mjs';

const [layout, baseTag, newTag, dest, tmpDir, cmd] = process.argv.slice(2);
const { openWorkspace } = await import(join(ROOT, 'dist', 'index.js'));
const blob = (d) => join(layout, 'blobs', 'sha256', d.replace('sha256:', ''));
const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
const desc = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === baseTag);
const manifest = JSON.parse(readFileSync(blob(desc.digest), 'utf8'));
const config = JSON.parse(readFileSync(blob(manifest.config.digest), 'utf8'));
const ws = await openWorkspace({
  layers: manifest.layers.map((l, i) => ({
    diffId: config.rootfs.diff_ids[i],
    open: async () => createReadStream(blob(l.digest)),
  })),
  arch: 'amd64',
  tmpDir,
});
try {
  const env = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    DEBIAN_FRONTEND: 'noninteractive',
  };
  const layer = await ws.run({ argv: ['/bin/sh', '-c', cmd], env, workdir: '/', label: 'bench:1', mtime: 1700000000 });
  const hash = createHash('sha256');
  let size = 0;
  const part = join(layout, 'blobs', 'sha256', 'new.part');
  await pipeline(
    createReadStream(layer.tarPath),
    createGzip({ level: 6 }),
    async function* (src) {
      for await (const c of src) {
        hash.update(c);
        size += c.length;
        yield c;
      }
    },
    createWriteStream(part),
  );
  const digest = `sha256:${hash.digest('hex')}`;
  await rename(part, blob(digest));
  const put = (o) => {
    const b = Buffer.from(JSON.stringify(o));
    const d = `sha256:${createHash('sha256').update(b).digest('hex')}`;
    writeFileSync(blob(d), b);
    return { digest: d, size: b.length };
  };
  config.rootfs.diff_ids.push(layer.diffId);
  (config.history ??= []).push({ created_by: `RUN ${cmd}` });
  const m = {
    ...manifest,
    config: { ...manifest.config, ...put(config) },
    layers: [...manifest.layers, { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size }],
  };
  const md = put(m);
  index.manifests.push({
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    ...md,
    annotations: { 'org.opencontainers.image.ref.name': newTag },
  });
  writeFileSync(join(layout, 'index.json'), JSON.stringify(index));
} finally {
  await ws.close();
}
const r = spawnSync(
  process.execPath,
  [join(ROOT, 'bin', 'canvos-lite.js'), 'copy', '--dest-insecure', `oci:${layout}:${newTag}`, dest],
  { stdio: 'inherit' },
);
process.exit(r.status ?? 1);
