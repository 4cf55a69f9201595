/**
 * The rootless RUN executor on a real Debian base (mmdebstrap minbase, cached), as the unprivileged test user:
 * `apt-get install wireguard-tools` from deb.debian.org and `rm /etc/debian_version`, then the captured layers are
 * stacked on the base in an OCI layout and unpacked by umoci (rootless), where `wg --version` runs and the removed
 * file is gone. Needs the network to deb.debian.org (one apt run per file).
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readLayer } from '../../src/layers/read.js';
import { debianBase, type DebianBase } from '../helpers/debian-base.js';
import { run } from '../helpers/tools.js';
import { asUnprivileged, unprivilegedIdentity, unprivilegedTempDir } from '../helpers/unprivileged.js';
import { mustRun, readTar, runDriver, type DriverEvent } from './helpers.js';

const EPOCH = 1_700_000_000;
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

let dir: string;
let base: DebianBase;
let events: DriverEvent[];

function proxies(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of ['http_proxy', 'https_proxy', 'no_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY'])
    if (process.env[k]) out[k] = process.env[k]!;
  return out;
}

beforeAll(async () => {
  base = await debianBase();
  dir = unprivilegedTempDir('canvos-exec-debian-');
  await cp(base.tarPath, join(dir, 'base.tar'));
  const env = { PATH, DEBIAN_FRONTEND: 'noninteractive', ...proxies() };
  ({ events } = await runDriver(
    dir,
    {
      layers: [join(dir, 'base.tar')],
      tmpDir: dir,
      layerDir: join(dir, 'layers'),
      steps: [
        {
          argv: ['/bin/sh', '-c', 'apt-get update && apt-get install -y --no-install-recommends wireguard-tools'],
          env,
          workdir: '/',
          label: 'Dockerfile:2',
          mtime: EPOCH,
        },
        { argv: ['/bin/sh', '-c', 'rm /etc/debian_version'], env, workdir: '/', label: 'Dockerfile:3', mtime: EPOCH },
      ],
    },
    {},
    850_000,
  ));
}, 900_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const layer = (label: string): DriverEvent => {
  const l = events.find((e) => e.event === 'layer' && e.label === label);
  if (!l) throw new Error(`no layer for ${label}: ${JSON.stringify(events)}`);
  return l;
};

async function sha256File(p: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(p)) h.update(c as Buffer);
  return h.digest('hex');
}

describe('RUN on a Debian base as an unprivileged user', () => {
  it('runs with the full subordinate id range and captures apt-get install as root-owned package files', async () => {
    expect(events[0]).toMatchObject({ ok: true, mapping: 'full' });
    const l = layer('Dockerfile:2');
    expect(`sha256:${await sha256File(String(l.tarPath))}`).toBe(l.diffId);
    const entries = await readTar(String(l.tarPath));
    const wg = entries.find((e) => e.path === 'usr/bin/wg');
    expect(wg).toMatchObject({ type: 'file', uid: 0, gid: 0, mode: 0o755 });
    expect(entries.filter((e) => e.path.startsWith('usr/')).every((e) => e.uid === 0 && e.gid === 0)).toBe(true);
    expect(entries.every((e) => e.mtime <= EPOCH)).toBe(true);
    // apt's download dir belongs to _apt (uid 42): only possible with the subordinate range mapped.
    expect(entries.find((e) => e.path === 'var/cache/apt/archives/partial')).toMatchObject({ uid: 42 });
    const status = entries.find((e) => e.path === 'var/lib/dpkg/status')!.data!.toString();
    expect(status).toMatch(/^Package: wireguard-tools\nStatus: install ok installed$/m);
    expect(entries.some((e) => /^(proc|dev|tmp)\//.test(e.path) || e.path === 'etc/resolv.conf')).toBe(false);
  });

  it('captures rm of a base file as a whiteout that hides real lower content', async () => {
    const entries = await readTar(String(layer('Dockerfile:3').tarPath));
    expect(entries.map((e) => e.path)).toEqual(['etc', 'etc/.wh.debian_version']);
    let inBase = false;
    for await (const e of readLayer(createReadStream(base.tarPath))) {
      e.content?.resume();
      if (e.path === 'etc/debian_version' && e.type === 'file') inBase = true;
    }
    expect(inBase).toBe(true);
  });

  it('umoci unpacks base + captured layers (rootless): wg --version runs, the removed file is gone', async () => {
    const layout = join(dir, 'layout');
    await cp(base.layoutDir, layout, { recursive: true });
    const blobs = join(layout, 'blobs', 'sha256');
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as {
      manifests: Array<{ digest: string }>;
    };
    const blob = (d: string): string => join(blobs, d.replace('sha256:', ''));
    const manifest = JSON.parse(readFileSync(blob(index.manifests[0]!.digest), 'utf8')) as {
      config: { digest: string; size: number };
      layers: unknown[];
    };
    const config = JSON.parse(readFileSync(blob(manifest.config.digest), 'utf8')) as { rootfs: { diff_ids: string[] } };
    for (const label of ['Dockerfile:2', 'Dockerfile:3']) {
      const l = layer(label);
      await cp(String(l.tarPath), blob(String(l.diffId)));
      manifest.layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: l.diffId, size: l.size });
      config.rootfs.diff_ids.push(String(l.diffId));
    }
    const put = async (o: unknown): Promise<{ digest: string; size: number }> => {
      const b = Buffer.from(JSON.stringify(o));
      const d = createHash('sha256').update(b).digest('hex');
      await writeFile(join(blobs, d), b);
      return { digest: `sha256:${d}`, size: b.length };
    };
    manifest.config = { ...manifest.config, ...(await put(config)) };
    const m = await put(manifest);
    await writeFile(
      join(layout, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            ...m,
            annotations: { 'org.opencontainers.image.ref.name': 'built' },
          },
        ],
      }),
    );
    const id = unprivilegedIdentity()!;
    await mustRun(['chown', '-R', `${id.uid}:${id.gid}`, layout]);
    const bundle = join(dir, 'bundle');
    await mustRun(asUnprivileged(['umoci', 'unpack', '--rootless', '--image', `${layout}:built`, bundle]), dir);
    const rootfs = join(bundle, 'rootfs');
    expect(existsSync(join(rootfs, 'usr/bin/wg'))).toBe(true);
    expect(existsSync(join(rootfs, 'etc/debian_version'))).toBe(false);
    expect(existsSync(join(rootfs, 'etc/os-release'))).toBe(true);
    const wg = asUnprivileged([
      'unshare',
      '--user',
      '--map-root-user',
      '/usr/sbin/chroot',
      rootfs,
      '/usr/bin/wg',
      '--version',
    ]);
    const r = await run(wg[0]!, wg.slice(1));
    expect(r.stdout + r.stderr).toMatch(/wireguard-tools v\d/);
  });
});
