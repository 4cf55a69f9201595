import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { sha256 } from '../../src/image/digest.js';
import { parseReference } from '../../src/registry/reference.js';
import { itemsFromRefs } from '../../src/mirror/resolve.js';
import { mirrorLoad, mirrorPush, mirrorSave } from '../../src/mirror/operations.js';
import { registriesYaml } from '../../src/mirror/registries-yaml.js';
import { parseDestinationRoot } from '../../src/mirror/naming.js';
import { readArchiveManifest } from '../../src/mirror/archive.js';
import { makeOciLayout } from '../helpers/fixtures.js';
import { pushLayout } from '../helpers/push-layout.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { run, skopeo, tmpDir } from '../helpers/tools.js';

let a: TestRegistry; // source
let b: TestRegistry; // destination of loads
let tmp: { path: string; cleanup(): Promise<void> };
let multi: Awaited<ReturnType<typeof makeOciLayout>>;
let single: Awaited<ReturnType<typeof makeOciLayout>>;

const insecure = (...r: TestRegistry[]) => ({ insecureRegistries: r.map((x) => x.host), authFiles: [] as string[] });

async function rawDigest(ref: string): Promise<string> {
  return sha256(await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]));
}

beforeAll(async () => {
  tmp = await tmpDir('canvos-mirror-');
  [a, b] = await Promise.all([startRegistry(), startRegistry()]);
  multi = await makeOciLayout(join(tmp.path, 'multi'), {
    tag: 'v1',
    platforms: ['linux/amd64', 'linux/arm64'],
    layerBytes: 700 * 1024,
  });
  single = await makeOciLayout(join(tmp.path, 'single'), { tag: 'v1', docker: true, layerBytes: 300 * 1024 });
  await pushLayout(join(tmp.path, 'multi'), a, 'apps/multi', { tag: 'v1' });
  await pushLayout(join(tmp.path, 'single'), a, 'single', { tag: 'v1' });
});
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await tmp?.cleanup();
});

describe('mirror save → load round trip', () => {
  it('saves two images into ONE split archive and loads it into a second registry with identical digests', async () => {
    const items = itemsFromRefs([`${a.host}/apps/multi:v1`, `${a.host}/single:v1`]);
    const tar = join(tmp.path, 'out', 'bundle.tar');
    const saved = await mirrorSave(items, tar, { sourceRegistry: insecure(a), maxPartSize: 1024 * 1024 });
    expect(saved.failures).toEqual([]);
    expect(saved.images.map((i) => i.digest).sort()).toEqual([multi.indexDigest, single.indexDigest].sort());
    const m = await readArchiveManifest(join(tmp.path, 'out', 'bundle.manifest.json'));
    expect(m.parts.length).toBeGreaterThan(1);
    for (const p of m.parts) {
      const bytes = await readFile(join(tmp.path, 'out', p.name));
      expect(bytes.length).toBeLessThanOrEqual(1024 * 1024);
      expect(sha256(bytes)).toBe(`sha256:${p.sha256}`);
    }
    // The working layout is gone; concatenated parts are a plain tar of an OCI layout (umoci/tar can read it).
    expect((await readdir(join(tmp.path, 'out'))).filter((f) => f.endsWith('.layout'))).toEqual([]);
    const whole = join(tmp.path, 'whole.tar');
    await writeFile(
      whole,
      Buffer.concat(await Promise.all(m.parts.map((p) => readFile(join(tmp.path, 'out', p.name))))),
    );
    const listing = await run('tar', ['-tf', whole]);
    expect(listing.stdout.split('\n').slice(0, 2)).toEqual(['oci-layout', 'index.json']);
    const unpacked = join(tmp.path, 'unpacked');
    await run('mkdir', ['-p', unpacked]);
    expect((await run('tar', ['-xf', whole, '-C', unpacked])).code).toBe(0);
    expect(sha256(await skopeo(['inspect', '--raw', `oci:${unpacked}:${a.host}/apps/multi:v1`]))).toBe(
      multi.indexDigest,
    );

    const loaded = await mirrorLoad(tar, `${b.host}/mirror`, { destRegistry: insecure(b) });
    expect(loaded.failures).toEqual([]);
    expect(await rawDigest(`${b.host}/mirror/${a.host.replace(':', '-')}/apps/multi:v1`)).toBe(multi.indexDigest);
    expect(await rawDigest(`${b.host}/mirror/${a.host.replace(':', '-')}/apps/multi@${multi.manifestDigests[1]}`)).toBe(
      multi.manifestDigests[1],
    );
    expect(await rawDigest(`${b.host}/mirror/${a.host.replace(':', '-')}/single:v1`)).toBe(single.indexDigest);

    const text = registriesYaml(loaded.sources, parseDestinationRoot(`${b.host}/mirror`), {}, { insecure: true });
    const y = parse(text) as { mirrors: Record<string, { endpoint: string[]; rewrite: Record<string, string> }> };
    expect(y.mirrors[a.host]).toEqual({
      endpoint: [`http://${b.host}`],
      rewrite: { '^(.*)$': `mirror/${a.host.replace(':', '-')}/$1` },
    });
  });

  it('a corrupted blob in a saved layout fails its image on load and leaves its tag absent; other images load', async () => {
    const dir = join(tmp.path, 'layout-corrupt');
    const items = itemsFromRefs([`${a.host}/apps/multi:v1`, `${a.host}/single:v1`]);
    const saved = await mirrorSave(items, dir, { sourceRegistry: insecure(a) });
    expect(saved.failures).toEqual([]);
    // Flip one byte of an arm64 layer (same size, wrong digest).
    const victim = multi.images[1]!.layerDigests[0]!;
    const file = join(dir, 'blobs', 'sha256', victim.slice(7));
    const bytes = await readFile(file);
    bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff;
    await writeFile(file, bytes);
    const loaded = await mirrorLoad(dir, `${b.host}/corrupt`, {
      destRegistry: insecure(b),
      rewrite: { keepRegistry: false },
    });
    expect(loaded.failures).toHaveLength(1);
    expect(loaded.failures[0]).toMatchObject({ source: `${a.host}/apps/multi:v1`, code: 'ERR_DIGEST_MISMATCH' });
    const tagged = await run('skopeo', [
      'inspect',
      '--raw',
      '--tls-verify=false',
      `docker://${b.host}/corrupt/apps/multi:v1`,
    ]);
    expect(tagged.code).not.toBe(0);
    expect(await rawDigest(`${b.host}/corrupt/single:v1`)).toBe(single.indexDigest);
    // The corrupted blob never reached the registry.
    const head = await fetch(`${b.url}/v2/corrupt/apps/multi/blobs/${victim}`, { method: 'HEAD' });
    expect(head.status).toBe(404);
  });

  it('push keeps going past a missing image and lists it as a failure', async () => {
    const items = itemsFromRefs([`${a.host}/apps/multi:v1`, `${a.host}/nope:v9`]);
    const r = await mirrorPush(items, `${b.host}/kg`, {
      sourceRegistry: insecure(a),
      destRegistry: insecure(b),
      rewrite: { keepRegistry: false },
    });
    expect(r.images.map((i) => i.source)).toEqual([`${a.host}/apps/multi:v1`]);
    expect(r.failures).toEqual([
      expect.objectContaining({
        source: `${a.host}/nope:v9`,
        destination: `${b.host}/kg/nope:v9`,
        code: 'ERR_MANIFEST_UNKNOWN',
      }),
    ]);
    expect(await rawDigest(`${b.host}/kg/apps/multi:v1`)).toBe(multi.indexDigest);
  });

  it('flatten puts every repository in one path segment', async () => {
    const r = await mirrorPush(itemsFromRefs([`${a.host}/apps/multi:v1`]), `${b.host}/flat`, {
      sourceRegistry: insecure(a),
      destRegistry: insecure(b),
      rewrite: { flatten: true },
    });
    expect(r.failures).toEqual([]);
    expect(r.images[0]!.destination).toBe(`${b.host}/flat/${a.host.replace(':', '-')}-apps-multi:v1`);
    expect(await rawDigest(r.images[0]!.destination)).toBe(multi.indexDigest);
    expect(parseReference(r.images[0]!.destination).repository).toBe(`flat/${a.host.replace(':', '-')}-apps-multi`);
  });

  it('a differential archive (--since) leaves out layers already shipped and loads where the earlier one was loaded', async () => {
    const out = join(tmp.path, 'diff');
    const first = await mirrorSave(itemsFromRefs([`${a.host}/apps/multi:v1`]), join(out, 'one.tar'), {
      sourceRegistry: insecure(a),
    });
    expect(first.failures).toEqual([]);
    const second = await mirrorSave(
      itemsFromRefs([`${a.host}/apps/multi:v1`, `${a.host}/single:v1`]),
      join(out, 'two.tar'),
      { sourceRegistry: insecure(a), since: [join(out, 'one.tar')] },
    );
    expect(second.failures).toEqual([]);
    const m2 = await readArchiveManifest(join(out, 'two.manifest.json'));
    const multiLayers = multi.images.flatMap((i) => [i.configDigest, ...i.layerDigests]);
    for (const d of multiLayers) expect(m2.blobs).not.toContain(d);
    expect(m2.blobs).toEqual(
      expect.arrayContaining([
        multi.indexDigest,
        ...multi.manifestDigests,
        single.indexDigest,
        ...single.images[0]!.layerDigests,
      ]),
    );
    expect(m2.since).toHaveLength(1);
    // The multi image's layers were not downloaded again.
    expect(second.images.find((i) => i.source.endsWith('multi:v1'))!.blobs.copied).toBe(0);

    // A fresh site without one.tar: multi cannot load (its layers are missing), single can.
    const c = await startRegistry();
    try {
      const lonely = await mirrorLoad(join(out, 'two.tar'), c.host, {
        destRegistry: insecure(c),
        rewrite: { keepRegistry: false },
      });
      expect(lonely.failures).toEqual([
        expect.objectContaining({ source: `${a.host}/apps/multi:v1`, code: 'ERR_BLOB_UNKNOWN' }),
      ]);
      // The site that loaded one.tar first gets everything.
      expect(
        (
          await mirrorLoad(join(out, 'one.tar'), c.host, {
            destRegistry: insecure(c),
            rewrite: { keepRegistry: false },
          })
        ).failures,
      ).toEqual([]);
      const again = await mirrorLoad(join(out, 'two.tar'), c.host, {
        destRegistry: insecure(c),
        rewrite: { keepRegistry: false },
      });
      expect(again.failures).toEqual([]);
      expect(await rawDigest(`${c.host}/apps/multi:v1`)).toBe(multi.indexDigest);
      expect(await rawDigest(`${c.host}/single:v1`)).toBe(single.indexDigest);
    } finally {
      await c.stop();
    }
  });

  it('an unreachable destination fails once, up front (preflight), instead of once per image', async () => {
    const dead = await startRegistry();
    const host = dead.host;
    await dead.stop();
    const items = itemsFromRefs([`${a.host}/apps/multi:v1`, `${a.host}/single:v1`]);
    await expect(
      mirrorPush(items, host, {
        sourceRegistry: insecure(a),
        destRegistry: { insecureRegistries: [host], authFiles: [], retry: { attempts: 1 } },
      }),
    ).rejects.toMatchObject({ code: 'ERR_NETWORK' });
  });
});
