/**
 * The flavour pieces without a boot: which content bundles COS_CONTENT carries and how big it is (read back with
 * debugfs and blkid), which project files the rootfs gets, the flavour a configuration asks for, and the MAAS
 * Ubuntu image checks (a file that is not an ext4 image is refused with the download hint).
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CanvosError } from '../../src/errors.js';
import { CONTENT_LABEL, contentBundles, hasContent, writeContentImage } from '../../src/disk/content-partition.js';
import { diskFlavourOf } from '../../src/disk/installer-disk.js';
import { fallbackGrubCfg } from '../../src/disk/kairos-files.js';
import { maasGrubCustom, prepareUbuntuRootfs, setupRecoveryScript, setupRecoveryUnit } from '../../src/disk/maas.js';
import { rootfsExtraItems } from '../../src/disk/rootfs-extras.js';
import { run, tmpDir } from '../helpers/tools.js';

let tmp: Awaited<ReturnType<typeof tmpDir>>;
beforeAll(async () => {
  tmp = await tmpDir('canvos-flavour-parts-');
});
afterAll(async () => {
  await tmp.cleanup();
});

describe('COS_CONTENT', () => {
  it('takes the .zst/.tar files at the top of each content dir, a later dir replacing a same-named bundle', async () => {
    const a = join(tmp.path, 'content-a');
    const b = join(tmp.path, 'content-b');
    await mkdir(join(a, 'nested'), { recursive: true });
    await mkdir(b);
    for (const [d, n] of [
      [a, 'one.zst'],
      [a, 'two.tar'],
      [a, 'readme.txt'],
      [join(a, 'nested'), 'deep.zst'],
      [b, 'one.zst'],
    ] as const)
      await writeFile(join(d, n), `${d}/${n}\n`);
    expect(await contentBundles([a, b])).toEqual([join(b, 'one.zst'), join(a, 'two.tar')]);
    expect(hasContent({ bundles: [] })).toBe(false);
    expect(hasContent({ clusterConfig: join(a, 'two.tar') })).toBe(true);
  });

  it('is an ext4 COS_CONTENT image of files + 20 % + 100 MiB with the three folders', async () => {
    const bundle = join(tmp.path, 'big.zst');
    await writeFile(bundle, Buffer.alloc(5 * 1024 * 1024, 1));
    const spc = join(tmp.path, 'my-cluster.tgz');
    await writeFile(spc, 'spc');
    const img = join(tmp.path, 'content.img');
    const mib = await writeContentImage({ bundles: [bundle], clusterConfig: spc }, join(tmp.path, 'stage'), img, {
      uuid: '0b5c9f2e-7a51-4d5e-9c61-3f0f4e0b1a22',
      sourceDateEpoch: 1_700_000_000,
    });
    // 5 MiB + 3 bytes of files, + 1 MiB (20 %), + 100 MiB: just over 106 MiB, rounded up.
    expect(mib).toBe(107);
    expect((await stat(img)).size).toBe(mib * 1024 * 1024);
    const b = await run('blkid', ['-s', 'LABEL', '-s', 'TYPE', '-o', 'export', img]);
    expect(b.stdout).toContain(`LABEL=${CONTENT_LABEL}`);
    expect(b.stdout).toContain('TYPE=ext4');
    const ls = await run('debugfs', ['-R', 'ls -p /', img]);
    for (const d of ['bundle-content', 'spc-config', 'edge-config']) expect(ls.stdout).toContain(`/${d}/`);
    // CanvOS's cloud image copies CLUSTERCONFIG as /workdir/spc.tgz first: the name on COS_CONTENT is spc.tgz.
    expect((await run('debugfs', ['-R', 'cat /spc-config/spc.tgz', img])).stdout).toBe('spc');
    expect((await run('debugfs', ['-R', 'stat /bundle-content/big.zst', img])).stdout).toMatch(/Size: 5242880/);
  });

  it('refuses a content file that does not exist', async () => {
    const e = await writeContentImage({ clusterConfig: join(tmp.path, 'nope.tgz') }, join(tmp.path, 's2'), 'x', {
      uuid: '0b5c9f2e-7a51-4d5e-9c61-3f0f4e0b1a23',
      sourceDateEpoch: 0,
    }).catch((x: unknown) => x as CanvosError);
    expect(e).toMatchObject({ code: 'ERR_CONFIG' });
  });
});

describe('flavour inputs', () => {
  it("copies CanvOS's cloud files (scripts 0755) and maas-content.sh from the project, plain COPYs", () => {
    const cloud = rootfsExtraItems({ isCloudImage: true, isMaas: false }, '/p');
    expect(cloud.map((i) => [i.target, i.mode])).toEqual([
      ['/etc/kairos/branding/grubmenu.cfg', undefined],
      ['/system/oem/custom-post-reset.yaml', undefined],
      ['/opt/spectrocloud/scripts/cloud-content.sh', 0o755],
      ['/opt/spectrocloud/scripts/cloud-extend-persistent.sh', 0o755],
    ]);
    expect(cloud.every((i) => !i.optional && i.missingHint?.startsWith('IS_CLOUD_IMAGE=true, so CanvOS copies'))).toBe(
      true,
    );
    expect(rootfsExtraItems({ isCloudImage: false, isMaas: true }, '/p')).toEqual([
      expect.objectContaining({
        source: { kind: 'host-file', path: '/p/cloudconfigs/maas-content.sh' },
        target: '/opt/spectrocloud/scripts/maas-content.sh',
        mode: 0o755,
      }),
    ]);
    expect(rootfsExtraItems({ isCloudImage: false, isMaas: false }, '/p')).toEqual([]);
  });

  it('picks the flavour; both flags at once are refused', () => {
    expect(diskFlavourOf({ isCloudImage: false, isMaas: false })).toBe('kairos');
    expect(diskFlavourOf({ isCloudImage: true, isMaas: false })).toBe('cloud');
    expect(diskFlavourOf({ isCloudImage: false, isMaas: true })).toBe('maas');
    expect(() => diskFlavourOf({ isCloudImage: true, isMaas: true })).toThrow(/two different disk images/);
  });

  it('the fallback grub.cfg honours next_entry from grubenv and sources grubcustom (the MAAS firstboot entry)', () => {
    const cfg = fallbackGrubCfg();
    expect(cfg).toContain('load_env -f "(${env_blk})/grubenv"');
    expect(cfg).toContain('set default="${next_entry}"');
    expect(cfg).toContain('source "(${custom_blk})/grubcustom"');
    expect(maasGrubCustom()).toMatch(/--id 'ubuntu-firstboot'[\s\S]*root=LABEL=UBUNTU_ROOTFS/);
  });

  it('the MAAS first-boot script is valid bash that hands the user-data to COS_OEM and boots recovery once', async () => {
    const script = join(tmp.path, 'setup-recovery.sh');
    await writeFile(script, setupRecoveryScript());
    const n = await run('bash', ['-n', script]);
    expect(n.code, n.stderr).toBe(0);
    expect(setupRecoveryScript()).toContain('/var/lib/cloud/instance/user-data.txt "$mnt/userdata.yaml"');
    expect(setupRecoveryScript()).toContain('grub-editenv "$mnt/grubenv" set next_entry=recovery');
    expect(setupRecoveryUnit()).toMatch(
      /ConditionPathExists=!\/var\/lib\/setup-recovery-completed[\s\S]*WantedBy=multi-user\.target/,
    );
  });

  it('refuses a MAAS Ubuntu image that is not an ext4 root file system, with the download URL', async () => {
    const bogus = join(tmp.path, 'noble-server-cloudimg-amd64.img');
    await writeFile(bogus, Buffer.alloc(4096));
    const hooks = join(tmp.path, 'curtin-hooks');
    await writeFile(hooks, '#!/bin/sh\n');
    const work = join(tmp.path, 'maas-work');
    await mkdir(work);
    const e = await prepareUbuntuRootfs({ image: bogus, curtinHooks: hooks, workDir: work, sourceDateEpoch: 0 }).catch(
      (x: unknown) => x as CanvosError,
    );
    expect(e).toMatchObject({ code: 'ERR_CONFIG' });
    expect((e as CanvosError).message).toContain('not an ext4 root file system image');
    expect((e as CanvosError).hint).toContain('https://cloud-images.ubuntu.com/noble/current/');
    expect(await readFile(hooks, 'utf8')).toBe('#!/bin/sh\n');
  });
});
