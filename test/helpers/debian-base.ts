/**
 * A real Debian base image for the RUN executor and Dockerfile tests: `mmdebstrap --variant=minbase bookworm` from
 * deb.debian.org (mode unshare as the unprivileged test user, so owners inside the tar are the in-namespace ones),
 * cached in the test cache dir (boot-fixture.ts cacheDir()) keyed by its inputs, built in a temp dir and renamed.
 * Also packaged as a one-layer OCI image layout (uncompressed layer) for pushing with push-layout.ts.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheDir } from './boot-fixture.js';
import { run } from './tools.js';
import { asUnprivileged, unprivilegedTempDir } from './unprivileged.js';

/** What {@link debianBase} provides. */
export interface DebianBase {
  /** The uncompressed rootfs tar (one layer; owners as inside the build namespace: root = 0). */
  tarPath: string;
  /** sha256:… of the tar (its diffID; also its blob digest in the layout, which stores it uncompressed). */
  diffId: string;
  size: number;
  /** OCI image layout holding the image as tag `latest` (linux/amd64). */
  layoutDir: string;
  tag: string;
}

/** Inputs of the fixture; the cache key. Bump `v` when the way it is built changes. */
const INPUTS = { v: 1, suite: 'bookworm', variant: 'minbase', mirror: 'http://deb.debian.org/debian', arch: 'amd64' };

function sha256(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex');
}

async function fileSha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return h.digest('hex');
}

let pending: Promise<DebianBase> | undefined;

/** The cached Debian bookworm minbase image, building it (≈1 min, needs deb.debian.org) on first use. */
export function debianBase(): Promise<DebianBase> {
  pending ??= build();
  return pending;
}

async function build(): Promise<DebianBase> {
  const key = sha256(JSON.stringify(INPUTS)).slice(0, 16);
  const final = join(cacheDir(), `debian-base-${key}`);
  const tarPath = join(final, 'rootfs.tar');
  const meta = join(final, 'meta.json');
  if (!existsSync(meta)) {
    await mkdir(cacheDir(), { recursive: true });
    const work = unprivilegedTempDir('canvos-debian-base-');
    try {
      const out = join(work, 'rootfs.tar');
      const argv = [
        'mmdebstrap',
        '--mode=unshare',
        `--variant=${INPUTS.variant}`,
        `--architectures=${INPUTS.arch}`,
        '--quiet',
        INPUTS.suite,
        out,
        INPUTS.mirror,
      ];
      const cmd = asUnprivileged(['env', `HOME=${work}`, 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', ...argv]);
      const r = await run(cmd[0]!, cmd.slice(1), { cwd: work, timeoutMs: 900_000 });
      if (r.code !== 0) throw new Error(`mmdebstrap exited ${r.code}: ${r.stderr.slice(-2000)}`);
      const digest = await fileSha256(out);
      const size = (await stat(out)).size;
      const layout = join(work, 'layout');
      await writeLayout(layout, out, digest, size);
      await writeFile(join(work, 'meta.json'), JSON.stringify({ digest, size }));
      const staging = await mkdtemp(`${final}.tmp-`);
      await rename(out, join(staging, 'rootfs.tar'));
      await rename(layout, join(staging, 'layout'));
      await rename(join(work, 'meta.json'), join(staging, 'meta.json'));
      await chmod(staging, 0o755);
      await rm(final, { recursive: true, force: true });
      await rename(staging, final);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }
  const { digest, size } = JSON.parse(await readFile(meta, 'utf8')) as { digest: string; size: number };
  return { tarPath, diffId: `sha256:${digest}`, size, layoutDir: join(final, 'layout'), tag: 'latest' };
}

/** A one-layer OCI layout whose layer blob is the uncompressed tar (hardlinked when possible). */
async function writeLayout(dir: string, tar: string, digest: string, size: number): Promise<void> {
  const blobs = join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const r = await run('cp', ['--reflink=auto', tar, join(blobs, digest)]);
  if (r.code !== 0) throw new Error(`cp: ${r.stderr}`);
  const put = async (obj: unknown): Promise<{ digest: string; size: number }> => {
    const b = Buffer.from(JSON.stringify(obj));
    const d = sha256(b);
    await writeFile(join(blobs, d), b);
    return { digest: `sha256:${d}`, size: b.length };
  };
  const config = await put({
    architecture: INPUTS.arch,
    os: 'linux',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['bash'] },
    rootfs: { type: 'layers', diff_ids: [`sha256:${digest}`] },
    history: [{ created_by: `mmdebstrap --variant=${INPUTS.variant} ${INPUTS.suite}` }],
  });
  const manifest = await put({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${digest}`, size }],
  });
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(dir, 'index.json'),
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
