/**
 * End to end, rootless: the unprivileged user canvostest runs `canvos-lite disk --base oci:… --format qcow2,vhd`
 * on the Kairos-shaped boot fixture; the partitions are read back with sgdisk, fdisk, blkid and debugfs, a second
 * run gives the same bytes, and the raw image boots in QEMU with SeaBIOS and OVMF, the qcow2 copy with OVMF, each
 * from the disk through GRUB to the fixture initramfs, which finds COS_RECOVERY, COS_OEM and the squashfs.
 * Sequential: TCG on a shared 2-core machine (~60–80 s per boot).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MARKER } from '../helpers/boot-fixture.js';
import { partitionLabels, prepareDiskFixture, writeDiskLayout } from '../helpers/disk-fixture.js';
import { bootIso } from '../helpers/qemu.js';
import { run } from '../helpers/tools.js';
import { asUnprivileged, unprivilegedIdentity, unprivilegedTempDir } from '../helpers/unprivileged.js';

const BIN = resolve(__dirname, '../../bin/canvos-lite.js');
const EPOCH = '1700000000';
let work: string;
let first: {
  rawPath: string;
  sha256: string;
  qcow2: string;
  vhd: string;
  partitions: Array<{ label: string; firstLba: number }>;
};

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(file), h);
  return h.digest('hex');
}

/** `canvos-lite disk` as canvostest. */
async function diskCli(out: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = ['env', `SOURCE_DATE_EPOCH=${EPOCH}`, `CANVOS_CACHE_DIR=${join(work, 'cache')}`];
  const argv = [
    ...env,
    process.execPath,
    BIN,
    'disk',
    '--base',
    `oci:${join(work, 'layout')}:latest`,
    '--user-data',
    join(work, 'user-data'),
  ];
  const [cmd = '', ...args] = asUnprivileged([...argv, '--format', 'qcow2,vhd', '--output', out, '--json']);
  return run(cmd, args, { cwd: work, timeoutMs: 600_000 });
}

beforeAll(async () => {
  const fx = await prepareDiskFixture();
  work = unprivilegedTempDir('canvos-disk-');
  await writeDiskLayout(fx, join(work, 'layout'));
  await writeFile(join(work, 'user-data'), '#cloud-config\ninstall:\n  auto: true\n');
  const r = await diskCli(join(work, 'out'));
  expect(r.code, r.stderr).toBe(0);
  first = JSON.parse(r.stdout) as typeof first;
}, 900_000);
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe.sequential('canvos-lite disk (built by an unprivileged user)', () => {
  it('writes .raw, .sha256, .qcow2 and .vhd owned by that user', async () => {
    const id = unprivilegedIdentity();
    for (const f of [first.rawPath, `${first.rawPath}.sha256`, first.qcow2, first.vhd])
      expect((await stat(f)).uid).toBe(id?.uid);
    expect(await sha256(first.rawPath)).toBe(first.sha256);
  });

  it('has the Kairos partitions, read back by sgdisk, fdisk and blkid', async () => {
    const v = await run('sgdisk', ['-v', first.rawPath]);
    expect(v.stdout).toContain('No problems found');
    const p = await run('sgdisk', ['-p', first.rawPath]);
    expect(p.stdout).toMatch(/1\s+2048\s+133119\s+64\.0 MiB\s+EF00\s+efi/);
    expect(p.stdout).toMatch(/2\s+133120\s+135167\s+1024\.0 KiB\s+EF02\s+bios/);
    expect(p.stdout).toMatch(/3\s+135168\s+266239\s+64\.0 MiB\s+8300\s+oem/);
    expect(p.stdout).toMatch(/4\s+266240\s+\d+\s+.*8300\s+recovery/);
    const f = await run('fdisk', ['-l', first.rawPath]);
    expect(f.stdout).toMatch(/Disklabel type: gpt/);
    expect(f.stdout).toMatch(/raw1\s+2048\s+133119\s+131072\s+64M EFI System/);
    expect(f.stdout).toMatch(/raw2\s+133120\s+135167\s+2048\s+1M BIOS boot/);
    const labels = await partitionLabels(first.rawPath, first.partitions);
    expect(labels).toEqual({ COS_GRUB: 'vfat', COS_OEM: 'ext4', COS_RECOVERY: 'ext4' });
  });

  it('puts user-data, grubenv and the reset config in COS_OEM, the squashfs and grub.cfg in COS_RECOVERY, owned by root', async () => {
    const at = (label: string): string =>
      `${first.rawPath}?offset=${(first.partitions.find((x) => x.label === label)?.firstLba ?? 0) * 512}`;
    const oem = await run('debugfs', ['-R', 'ls -l /', at('COS_OEM')]);
    for (const n of ['90_custom.yaml', 'grubenv', '01_reset.yaml'])
      expect(oem.stdout).toMatch(new RegExp(`\\(1\\)\\s+0\\s+0\\s+\\d+\\s+.*${n.replace('.', '\\.')}`));
    const ud = await run('debugfs', ['-R', 'cat /90_custom.yaml', at('COS_OEM')]);
    expect(ud.stdout).toBe('#cloud-config\ninstall:\n  auto: true\n');
    const rec = await run('debugfs', ['-R', 'ls -p /cOS', at('COS_RECOVERY')]);
    expect(rec.stdout).toContain('/recovery.squashfs/');
    const cfg = await run('debugfs', ['-R', 'cat /etc/cos/grub.cfg', at('COS_RECOVERY')]);
    expect(cfg.stdout).toContain('loopback loop0 ($root)/cOS/recovery.squashfs');
  });

  it('converts losslessly: qcow2 and the fixed VHD hold the same sectors', async () => {
    const q = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', first.rawPath, first.qcow2]);
    expect(q.stdout + q.stderr).toContain('Images are identical');
    const v = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'vpc', first.rawPath, first.vhd]);
    expect(v.stdout + v.stderr).toContain('Images are identical');
    expect((await stat(first.vhd)).size).toBe((await stat(first.rawPath)).size + 512);
  });

  it('is reproducible: a second run gives byte-identical raw, qcow2 and vhd files', async () => {
    const r = await diskCli(join(work, 'out2'));
    expect(r.code, r.stderr).toBe(0);
    const second = JSON.parse(r.stdout) as typeof first;
    expect(second.sha256).toBe(first.sha256);
    expect(await sha256(second.qcow2)).toBe(await sha256(first.qcow2));
    expect(await sha256(second.vhd)).toBe(await sha256(first.vhd));
  }, 600_000);

  const boots = [
    { name: 'raw, SeaBIOS', firmware: 'bios', format: 'raw' },
    { name: 'raw, OVMF', firmware: 'uefi', format: 'raw' },
    { name: 'qcow2 copy, OVMF', firmware: 'uefi', format: 'qcow2' },
  ] as const;
  for (const b of boots) {
    it(`boots from the disk (${b.name}) to the initramfs with COS_RECOVERY, COS_OEM and the squashfs`, async () => {
      const img = b.format === 'raw' ? first.rawPath : first.qcow2;
      const r = await bootIso(img, {
        firmware: b.firmware,
        media: 'disk',
        diskFormat: b.format,
        timeoutMs: 420_000,
        until: 'CANVOS-TEST: DONE',
      });
      const lines = r.log.split('\n').filter((l) => l.startsWith('CANVOS-TEST:'));
      const ctx = `${r.accel} ${r.seconds}s timedOut=${r.timedOut}\n${lines.join('\n')}\n--- log tail ---\n${r.log.slice(-3000)}`;
      expect(lines, ctx).toContain(`CANVOS-TEST: firmware=${b.firmware.toUpperCase()}`);
      expect(lines.join('\n'), ctx).toMatch(/LABEL=COS_RECOVERY -> \/dev\/sda4$/m);
      expect(lines, ctx).toContain('CANVOS-TEST: oem: #cloud-config');
      expect(lines, ctx).toContain('CANVOS-TEST: grubenv: next_entry=recovery');
      expect(lines, ctx).toContain(`CANVOS-TEST: squashfs marker: ${MARKER}`);
    }, 480_000);
  }
});
