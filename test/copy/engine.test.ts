import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { copyImage, CopyPool } from '../../src/copy/copy.js';
import { openDestination, openSource } from '../../src/transports/resolve-location.js';
import type { ImageDestination, ImageSource, ProgressEvent } from '../../src/image/types.js';
import { CanvosError } from '../../src/errors.js';
import { sha256, type Digest } from '../../src/image/digest.js';
import { OciLayout } from '../../src/transports/oci-layout/oci-layout.js';
import { layoutSource } from '../../src/transports/oci-layout/layout-source.js';
import { layoutDestination } from '../../src/transports/oci-layout/layout-destination.js';
import { blobMountOrigin, type MountableSource } from '../../src/transports/registry/registry-image.js';
import { makeOciLayout } from '../helpers/fixtures.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeo, tmpDir } from '../helpers/tools.js';

let reg: TestRegistry;
let proxy: FaultProxy;
let tmp: { path: string; cleanup(): Promise<void> };

beforeAll(async () => {
  tmp = await tmpDir('canvos-engine-');
  reg = await startRegistry();
  proxy = await startFaultProxy(reg.url);
});
afterAll(async () => {
  await proxy?.stop();
  await reg?.stop();
  await tmp?.cleanup();
});

interface M {
  schemaVersion: 2;
  mediaType: string;
  config: { mediaType: string; digest: Digest; size: number };
  layers: Array<{ mediaType: string; digest: Digest; size: number; urls?: string[] }>;
  annotations?: Record<string, string>;
}

/** A layout whose index has two platform manifests sharing config and layers (differing only by annotation). */
async function sharedLayout(dir: string): Promise<{ index: Digest; m: M }> {
  await makeOciLayout(dir, { tag: 'single', layers: 3, layerBytes: 64 * 1024 });
  const layout = new OciLayout(dir);
  const root = await layout.resolve('single');
  const m = JSON.parse((await layout.readSmallBlob(root.digest)).toString('utf8')) as M;
  const arm = Buffer.from(JSON.stringify({ ...m, annotations: { variant: 'arm64' } }));
  const armDigest = await layout.writeSmallBlob(arm);
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        { ...root, annotations: undefined, platform: { os: 'linux', architecture: 'amd64' } },
        {
          mediaType: root.mediaType,
          digest: armDigest,
          size: arm.length,
          platform: { os: 'linux', architecture: 'arm64' },
        },
      ],
    }),
  );
  const d = await layout.writeSmallBlob(index);
  await layout.setTag(
    { mediaType: 'application/vnd.oci.image.index.v1+json', digest: d, size: index.length },
    'shared',
  );
  return { index: d, m };
}

/** Counts what is in progress and keeps the peak; `enter` returns the matching `leave` (idempotent). */
function peakCounter(): { readonly max: number; enter(): () => void } {
  let now = 0;
  let max = 0;
  return {
    get max() {
      return max;
    },
    enter() {
      now++;
      max = Math.max(max, now);
      let left = false;
      return () => {
        if (!left) {
          left = true;
          now--;
        }
      };
    },
  };
}

/** Wraps a real destination to measure how many putBlob calls run at once. */
function measured(d: ImageDestination): ImageDestination & { readonly max: number } {
  const peak = peakCounter();
  return {
    get max() {
      return peak.max;
    },
    description: d.description,
    tag: d.tag,
    hasBlob: d.hasBlob.bind(d),
    hasManifest: d.hasManifest.bind(d),
    putManifest: d.putManifest.bind(d),
    commit: d.commit.bind(d),
    close: d.close.bind(d),
    async putBlob(...args: Parameters<ImageDestination['putBlob']>) {
      const leave = peak.enter();
      try {
        return await d.putBlob(...args);
      } finally {
        leave();
      }
    },
  };
}

/** Wraps a source to record the most blob streams open at once (from getBlob until the stream ends or closes). */
function measuredSource(src: ImageSource): MountableSource & { readonly max: number } {
  const peak = peakCounter();
  return {
    get max() {
      return peak.max;
    },
    description: src.description,
    mountOriginOf: (d) => blobMountOrigin(src, d),
    getManifest: src.getManifest.bind(src),
    close: src.close.bind(src),
    async getBlob(...args: Parameters<ImageSource['getBlob']>) {
      const leave = peak.enter();
      try {
        const s = await src.getBlob(...args);
        s.once('end', leave).once('close', leave);
        return s;
      } catch (e) {
        leave();
        throw e;
      }
    },
  };
}

describe('copy engine', () => {
  it('moves each blob once even when several manifests share it, with bounded concurrency and progress totals', async () => {
    const dir = join(tmp.path, 'shared');
    const { index } = await sharedLayout(dir);
    proxy.requests.length = 0;
    const dst = measured(
      openDestination(`${proxy.host}/shared/img:v1`, { registry: { insecureRegistries: [proxy.host], authFiles: [] } }),
    );
    const src = measuredSource(openSource(`oci:${dir}:shared`));
    const events: ProgressEvent[] = [];
    const r = await copyImage(src, dst, { concurrency: 2, onProgress: (e) => events.push(e) });
    expect(r.rootDigest).toBe(index);
    expect(r.manifests).toBe(3);
    expect(r.blobs.copied).toBe(4);
    const uploads = proxy.requests
      .filter((q) => q.method === 'PUT' && /\/blobs\/uploads\//.test(q.path))
      .map((q) => /digest=([^&]+)/.exec(q.path)?.[1]);
    expect(uploads).toHaveLength(4);
    expect(new Set(uploads).size).toBe(4);
    // `concurrency` bounds the blobs being read; a blob whose source is read may still be finishing its upload
    // (the registry's answer, the confirming HEAD) while the next one starts.
    expect(src.max).toBe(2);
    expect(dst.max).toBeGreaterThanOrEqual(2);
    const finished = events.filter((e) => e.status === 'copied');
    expect(finished).toHaveLength(4);
    expect(finished.at(-1)).toMatchObject({ itemsDone: 4, itemsTotal: 4 });
    expect(finished.at(-1)!.transferred).toBe(finished.at(-1)!.total);
    // Manifests arrive bottom-up: both children before the index, the index last and by tag.
    const puts = proxy.requests
      .filter((q) => q.method === 'PUT' && /\/manifests\//.test(q.path))
      .map((q) => q.path.split('/manifests/')[1]);
    expect(puts.slice(-1)).toEqual(['v1']);
    expect(puts.slice(0, 2).every((p) => p?.startsWith('sha256:'))).toBe(true);
    expect(sha256(await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/shared/img:v1`]))).toBe(
      index,
    );
  });

  it('a shared CopyPool moves a blob needed by concurrent copies into the same layout once', async () => {
    const dir = join(tmp.path, 'pooled-src');
    await sharedLayout(dir);
    const out = join(tmp.path, 'pooled-out');
    const pool = new CopyPool(2);
    const one = (arch: string, tag: string) =>
      copyImage(layoutSource(dir, { tag: 'shared' }), layoutDestination(out, { tag }), {
        platforms: [{ os: 'linux', architecture: arch }],
        pool,
        poolScope: out,
      });
    const [x, y] = await Promise.all([one('amd64', 'x'), one('arm64', 'y')]);
    expect(x.blobs.copied + y.blobs.copied).toBe(4);
    expect(x.blobs.skipped + y.blobs.skipped).toBe(4);
    expect(pool.inflight.size).toBe(0);
    expect(await new OciLayout(out).tags()).toEqual(expect.arrayContaining(['x', 'y']));
  });

  it('skips foreign layers (urls) unless asked, and then fails cleanly when they are absent', async () => {
    const dir = join(tmp.path, 'foreign');
    await makeOciLayout(dir, { tag: 'x', layers: 1, layerBytes: 1024 });
    const layout = new OciLayout(dir);
    const m = JSON.parse((await layout.readSmallBlob((await layout.resolve('x')).digest)).toString('utf8')) as M;
    m.layers.push({
      mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
      digest: sha256('not here'),
      size: 8,
      urls: ['https://example.invalid/layer'],
    });
    const bytes = Buffer.from(JSON.stringify(m));
    const d = await layout.writeSmallBlob(bytes);
    await layout.setTag({ mediaType: m.mediaType, digest: d, size: bytes.length }, 'foreign');

    const out = join(tmp.path, 'foreign-out');
    const r = await copyImage(layoutSource(dir, { tag: 'foreign' }), layoutDestination(out, { tag: 'f' }));
    expect(r.blobs).toMatchObject({ copied: 2, foreignSkipped: 1 });
    expect(r.rootDigest).toBe(d);
    const e = await copyImage(layoutSource(dir, { tag: 'foreign' }), layoutDestination(out, { tag: 'g' }), {
      includeForeign: true,
    }).catch((x: unknown) => x);
    expect(CanvosError.is(e) && e.code).toBe('ERR_BLOB_UNKNOWN');
    expect(await new OciLayout(out).tags()).toEqual(['f']);
  });

  it('a missing child manifest in the source fails before anything is written', async () => {
    const dir = join(tmp.path, 'broken');
    const fx = await makeOciLayout(dir, {
      tag: 'b',
      platforms: ['linux/amd64', 'linux/arm64'],
      layers: 1,
      layerBytes: 1024,
    });
    const { rm } = await import('node:fs/promises');
    await rm(join(dir, 'blobs', 'sha256', fx.manifestDigests[1]!.slice(7)));
    const out = join(tmp.path, 'broken-out');
    const e = await copyImage(layoutSource(dir), layoutDestination(out, { tag: 'b' })).catch((x: unknown) => x);
    expect(CanvosError.is(e) && e.code).toBe('ERR_BLOB_UNKNOWN');
    await expect(readFile(join(out, 'index.json'))).rejects.toThrow(/ENOENT/);
  });
});
