import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CanvosError } from '../../src/errors.js';
import { sha256, type Digest } from '../../src/image/digest.js';
import { RegistryHttp, RegistryRepository, registryDestination, registrySource } from '../../src/registry/index.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeo, tmpDir } from '../helpers/tools.js';
import { makeOciLayout } from '../helpers/fixtures.js';
import { pushTiny, readImage, tinyImage } from './image-util.js';

for (const auth of ['none', 'basic', 'bearer'] as const) {
  describe(`push and pull against a ${auth} registry`, () => {
    let reg: TestRegistry;
    let tmp: { path: string; cleanup(): Promise<void> };
    const opts = () => ({
      insecureRegistries: [reg.host],
      credentials: reg.username ? { username: reg.username, password: reg.password } : undefined,
      authFiles: [] as string[],
    });
    const creds = (flag: string): string[] => (reg.username ? [`${flag}=${reg.username}:${reg.password}`] : []);

    beforeAll(async () => {
      reg = await startRegistry({ auth });
      tmp = await tmpDir('canvos-reg-');
    });
    afterAll(async () => {
      await reg?.stop();
      await tmp?.cleanup();
    });

    it('pushes a blob + config + manifest, reads them back, and skopeo copies them digest-identical', async () => {
      const img = tinyImage(`push-${auth}`);
      const dest = registryDestination(`${reg.host}/canvos/app:v1`, opts());
      expect(dest.tag).toBe('v1');
      expect(await pushTiny(dest, img, 'v1')).toEqual(['uploaded', 'uploaded']);
      expect(await dest.hasBlob(img.layerDesc)).toBe(true);
      expect(await dest.hasManifest(img.manifestDigest)).toBe(true);
      // Pushing again is a no-op.
      expect(await pushTiny(dest, img, 'v1')).toEqual(['exists', 'exists']);
      await dest.close();

      const src = registrySource(`${reg.host}/canvos/app:v1`, opts());
      const got = await readImage(src);
      expect(got.manifestDigest).toBe(img.manifestDigest);
      expect(got.blobs.get(img.layerDesc.digest)?.equals(img.layer)).toBe(true);
      expect(got.blobs.get(img.configDesc.digest)?.equals(img.config)).toBe(true);
      await src.close();

      // skopeo (containers/image) pulls what we pushed, verifying every blob digest on the way.
      const out = join(tmp.path, 'pulled');
      await skopeo([
        'copy',
        '--insecure-policy',
        '--src-tls-verify=false',
        ...creds('--src-creds'),
        `docker://${reg.host}/canvos/app:v1`,
        `oci:${out}:v1`,
      ]);
      const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as {
        manifests: Array<{ digest: string }>;
      };
      expect(index.manifests[0]?.digest).toBe(img.manifestDigest);
      const raw = await readFile(join(out, 'blobs', 'sha256', img.manifestDigest.slice(7)));
      expect(sha256(raw)).toBe(img.manifestDigest);
    });

    it('reads what skopeo pushed from an OCI layout, digest-identical', async () => {
      const layout = join(tmp.path, 'fixture');
      const fx = await makeOciLayout(layout, { tag: 'latest', layers: 2, layerBytes: 32 * 1024 });
      await skopeo([
        'copy',
        '--insecure-policy',
        '--dest-tls-verify=false',
        ...creds('--dest-creds'),
        `oci:${layout}:latest`,
        `docker://${reg.host}/canvos/fixture:latest`,
      ]);
      const src = registrySource(`${reg.host}/canvos/fixture:latest`, opts());
      const got = await readImage(src);
      expect(got.manifestDigest).toBe(fx.manifestDigests[0]);
      const m = await src.getManifest(fx.manifestDigests[0] as Digest);
      const j = JSON.parse(m.bytes.toString('utf8')) as { layers: Array<{ digest: string }> };
      expect(j.layers).toHaveLength(2);
      for (const l of j.layers) {
        const blob = await readFile(join(layout, 'blobs', 'sha256', l.digest.slice(7)));
        expect(got.blobs.get(l.digest)?.equals(blob)).toBe(true);
      }
      await src.close();
    });

    it('mounts a blob from another repository (token covers both repositories)', async () => {
      const img = tinyImage(`mount-${auth}`);
      const a = registryDestination(`${reg.host}/canvos/mount-src:v1`, opts());
      await pushTiny(a, img, 'v1');
      await a.close();
      const before = reg.tokenServer?.requests.length ?? 0;
      const b = registryDestination(`${reg.host}/canvos/mount-dst:v1`, opts());
      const from = { registry: reg.host, repository: 'canvos/mount-src' };
      expect(
        await b.putBlob(
          img.layerDesc,
          async () => {
            throw new Error('must not read');
          },
          { mountFrom: from },
        ),
      ).toBe('mounted');
      await b.close();
      if (reg.tokenServer) {
        const scopes = reg.tokenServer.requests.slice(before).flatMap((r) => r.scopes);
        expect(scopes).toEqual(
          expect.arrayContaining(['repository:canvos/mount-dst:pull,push', 'repository:canvos/mount-src:pull']),
        );
      }
    });

    it.skipIf(auth === 'none')(
      'wrong credentials fail with ERR_REGISTRY_AUTH and never show the password',
      async () => {
        const secret = 'Wr0ng-Pa55word-XYZ';
        const repo = new RegistryRepository(reg.host, 'canvos/app', {
          insecureRegistries: [reg.host],
          credentials: { username: reg.username, password: secret },
          retry: { baseDelayMs: 10 },
        });
        let err: unknown;
        try {
          await repo.getManifest('v1');
        } catch (e) {
          err = e;
        }
        await repo.close();
        expect(CanvosError.is(err)).toBe(true);
        expect((err as CanvosError).code).toBe('ERR_REGISTRY_AUTH');
        const text = `${(err as Error).message} ${(err as CanvosError).hint ?? ''} ${JSON.stringify(err)} ${(err as Error).stack ?? ''}`;
        expect(text).not.toContain(secret);
        expect(text).not.toContain(Buffer.from(`${reg.username}:${secret}`).toString('base64'));
      },
    );

    it('ping checks the API and the credentials like docker login', async () => {
      const http = new RegistryHttp(reg.host, opts());
      expect(await http.ping()).toEqual({ auth });
      await http.close();
      if (auth !== 'none') {
        const bad = new RegistryHttp(reg.host, {
          ...opts(),
          credentials: { username: reg.username, password: 'wrong-wrong' },
        });
        await expect(bad.ping()).rejects.toMatchObject({ code: 'ERR_REGISTRY_AUTH' });
        await bad.close();
      }
    });

    it.skipIf(auth === 'none')('anonymous access is refused with ERR_REGISTRY_AUTH and a login hint', async () => {
      const repo = new RegistryRepository(reg.host, 'canvos/app', { insecureRegistries: [reg.host], authFiles: [] });
      await expect(repo.getManifest('v1')).rejects.toMatchObject({
        code: 'ERR_REGISTRY_AUTH',
        hint: expect.stringMatching(/log in|credentials/),
      });
      await repo.close();
    });
  });
}
