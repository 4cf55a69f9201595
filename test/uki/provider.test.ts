/**
 * `canvos-lite uki provider`: an IS_UKI=true provider image from a provider image with systemd 255 and a carrier,
 * written as an OCI layout; umoci unpacks it, sbverify accepts the /trusted-boot EFI binaries with db.pem, the
 * carrier's layers are kept unchanged below the new one. A provider rootfs with systemd 252 is refused.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { genkey } from '../../src/uki/genkey.js';
import { DEFAULT_STUB } from '../../src/uki/uki.js';
import { prepareBootFixture, type BootFixture } from '../helpers/boot-fixture.js';
import { runCli } from '../helpers/cli.js';
import { run, tmpDir, umoci } from '../helpers/tools.js';
import { makeUkiImage } from './uki-fixture.js';

const ready = existsSync(DEFAULT_STUB) && existsSync('/usr/bin/sbsign');
let tmp: { path: string; cleanup(): Promise<void> };
let fx: BootFixture;
beforeAll(async () => {
  tmp = await tmpDir('canvos-uki-provider-');
  fx = await prepareBootFixture();
  await genkey({ dir: join(tmp.path, 'secure-boot'), skipMicrosoft: true });
  await makeUkiImage(join(tmp.path, 'provider'), fx);
  await makeUkiImage(join(tmp.path, 'carrier'), fx, false);
  await makeUkiImage(join(tmp.path, 'old'), fx, true, 252);
}, 600_000);
afterAll(async () => tmp.cleanup());

describe.skipIf(!ready)('uki provider', () => {
  const env = (): NodeJS.ProcessEnv => ({
    PATH: process.env.PATH,
    HOME: tmp.path,
    CANVOS_CACHE_DIR: join(tmp.path, 'cache'),
    SOURCE_DATE_EPOCH: '1700000000',
  });

  it('carrier + /trusted-boot (signed UKI and systemd-boot) + kairos-agent, readable by umoci', async () => {
    const out = join(tmp.path, 'out');
    const r = await runCli(
      [
        'uki',
        'provider',
        '--provider',
        `oci:${join(tmp.path, 'provider')}:latest`,
        '--carrier',
        `oci:${join(tmp.path, 'carrier')}:latest`,
        '--to',
        `oci:${out}:uki`,
        '--json',
      ],
      { env: env(), cwd: tmp.path },
    );
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout) as {
      trustedBoot: string[];
      systemdVersion: number;
      uname: string;
      manifestDigest: string;
    };
    expect(res).toMatchObject({ systemdVersion: 255, uname: fx.kver });
    expect(res.trustedBoot).toContain('/trusted-boot/EFI/kairos/norole.efi');
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    expect(index.manifests.map((m) => m.digest)).toContain(res.manifestDigest);
    const manifest = JSON.parse(await readFile(join(out, 'blobs', 'sha256', res.manifestDigest.slice(7)), 'utf8')) as {
      layers: { digest: string }[];
    };
    const carrierIdx = JSON.parse(await readFile(join(tmp.path, 'carrier', 'index.json'), 'utf8')) as {
      manifests: { digest: string }[];
    };
    const carrierManifest = JSON.parse(
      await readFile(
        join(tmp.path, 'carrier', 'blobs', 'sha256', (carrierIdx.manifests[0]?.digest ?? '').slice(7)),
        'utf8',
      ),
    ) as { layers: { digest: string }[] };
    expect(manifest.layers.slice(0, -1)).toEqual(carrierManifest.layers);
    const bundle = join(tmp.path, 'bundle');
    await umoci(['unpack', '--rootless', '--image', `${out}:uki`, bundle]);
    const rootfs = join(bundle, 'rootfs');
    for (const f of ['EFI/kairos/norole.efi', 'EFI/BOOT/BOOTX64.EFI']) {
      const v = await run('sbverify', [
        '--cert',
        join(tmp.path, 'secure-boot', 'public-keys', 'db.pem'),
        join(rootfs, 'trusted-boot', f),
      ]);
      expect(v.code, v.stderr).toBe(0);
    }
    expect(await readFile(join(rootfs, 'trusted-boot/loader/entries/norole.conf'), 'utf8')).toContain(
      'efi /EFI/kairos/norole.efi',
    );
    expect(await readFile(join(rootfs, 'usr/bin/kairos-agent'), 'utf8')).toContain('kairos-agent stand-in');
    expect(existsSync(join(rootfs, 'boot/vmlinuz'))).toBe(false); // not a bootable rootfs: a carrier
  });

  it('a provider image with systemd 252 is refused (exit 3), nothing written', async () => {
    const out = join(tmp.path, 'out-old');
    const r = await runCli(
      [
        'uki',
        'provider',
        '--provider',
        `oci:${join(tmp.path, 'old')}:latest`,
        '--carrier',
        `oci:${join(tmp.path, 'carrier')}:latest`,
        '--to',
        `oci:${out}:uki`,
      ],
      { env: env(), cwd: tmp.path },
    );
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/systemd 252; Trusted Boot \(UKI\) needs systemd >= 255/);
    expect(existsSync(join(out, 'index.json'))).toBe(false);
  });

  it('--compression-level outside 1..9 is refused (exit 2, the range as hint) before anything is read', async () => {
    const out = join(tmp.path, 'out-level');
    const r = await runCli(
      [
        'uki',
        'provider',
        '--provider',
        'oci:/nonexistent:x',
        '--carrier',
        'oci:/nonexistent:y',
        '--to',
        `oci:${out}:uki`,
        '--compression-level',
        '0',
      ],
      { env: env(), cwd: tmp.path },
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--compression-level "0" is not a gzip level from 1 to 9');
    expect(existsSync(out)).toBe(false);
  });
});
