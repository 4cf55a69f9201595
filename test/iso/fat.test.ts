/**
 * writeFatImage against the real dosfstools/mtools: fsck.fat -n must find the image clean, mdir must show the long
 * names, mcopy must return every file byte-identical; also FAT12/FAT32 variants, determinism and size errors.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CanvosError } from '../../src/errors.js';
import { writeFatImage, type FatFileSpec } from '../../src/iso/fat.js';
import { run, tmpDir } from '../helpers/tools.js';

const GRUB = '/usr/lib/grub/x86_64-efi/monolithic/gcdx64.efi';
let dir: { path: string; cleanup(): Promise<void> };
beforeAll(async () => {
  dir = await tmpDir('canvos-fat-');
});
afterAll(async () => {
  await dir.cleanup();
});

const stub =
  'search --no-floppy --file --set=root /boot/kernel\nset prefix=($root)/boot/grub2\nconfigfile $prefix/grub.cfg\n';
const efiFiles: FatFileSpec[] = [
  { path: 'EFI/BOOT/BOOTX64.EFI', source: GRUB },
  { path: 'EFI/BOOT/grub.cfg', source: Buffer.from(stub) },
  { path: 'boot/grub/grub.cfg', source: Buffer.from(stub) },
  { path: 'EFI/ubuntu/grub.cfg', source: Buffer.from(stub) },
];

async function fsck(img: string): Promise<string> {
  const r = await run('fsck.fat', ['-n', '-v', img]);
  expect(r.code, r.stdout + r.stderr).toBe(0);
  expect(r.stdout).not.toMatch(/dirty|differ|Free cluster summary wrong|Orphan|invalid|Reclaim|will be|Fix/i);
  return r.stdout;
}

async function mcopyOut(img: string, path: string): Promise<Buffer> {
  const r = await run('sh', ['-c', `mcopy -n -i "$0" "::${path}" "$1"`, img, join(dir.path, 'out.bin')]);
  expect(r.code, r.stderr).toBe(0);
  return readFile(join(dir.path, 'out.bin'));
}

describe('writeFatImage', () => {
  it('writes the EFI_LIVE ESP layout that fsck.fat, mdir and mcopy accept', async () => {
    const img = join(dir.path, 'uefi.img');
    const res = await writeFatImage(img, { files: efiFiles }, { sourceDateEpoch: 1_700_000_000 });
    // 3.8 MB of grub + stubs → the next 4 MiB step, like AuroraBoot's du-based sizing.
    expect(res.bytes).toBe(4 * 1024 * 1024);
    expect((await stat(img)).size).toBe(res.bytes);
    expect(res.fatType).toBe(16);
    const log = await fsck(img);
    expect(log).toMatch(/16 bit entries/);
    const mdir = await run('mdir', ['-i', img, '-/', '::']);
    expect(mdir.code, mdir.stderr).toBe(0);
    expect(mdir.stdout).toMatch(/Volume in drive : is EFI_LIVE/);
    expect(mdir.stdout).toMatch(/BOOTX64\s+EFI\s+3833856/);
    expect(mdir.stdout).toMatch(/GRUB\s+CFG\s+\d+ 2023-11-14\s+22:13\s+grub\.cfg/);
    expect(mdir.stdout).toMatch(/Directory for ::\/EFI\/ubuntu/);
    expect(mdir.stdout).toMatch(/Directory for ::\/boot\/grub/);
    expect((await mcopyOut(img, 'EFI/BOOT/BOOTX64.EFI')).equals(await readFile(GRUB))).toBe(true);
    expect((await mcopyOut(img, 'boot/grub/grub.cfg')).toString()).toBe(stub);
    // No file leftovers besides the image.
    await expect(stat(`${img}.partial`)).rejects.toThrow();
  });

  it('is deterministic and takes its timestamps and volume id from SOURCE_DATE_EPOCH', async () => {
    const a = join(dir.path, 'a.img');
    const b = join(dir.path, 'b.img');
    const c = join(dir.path, 'c.img');
    await writeFatImage(a, { files: efiFiles }, { sourceDateEpoch: 1_600_000_000 });
    await writeFatImage(b, { files: [...efiFiles].reverse() }, { sourceDateEpoch: 1_600_000_000 });
    await writeFatImage(c, { files: efiFiles }, { sourceDateEpoch: 1_600_000_002 });
    const h = async (p: string): Promise<string> =>
      createHash('sha256')
        .update(await readFile(p))
        .digest('hex');
    expect(await h(a)).toBe(await h(b));
    expect(await h(a)).not.toBe(await h(c));
    const mdir = await run('mdir', ['-i', a, '::EFI/BOOT']);
    expect(mdir.stdout).toMatch(/2020-09-13\s+12:26/);
  });

  it('handles long names, ~N short-name collisions, multi-cluster directories and empty files', async () => {
    const files: FatFileSpec[] = [];
    const contents = new Map<string, Buffer>();
    for (let i = 0; i < 150; i++) {
      const p = `deep/dir with spaces/a rather long file name number ${i}.Data`;
      const data = randomBytes(i * 37);
      files.push({ path: p, source: data });
      contents.set(p, data);
    }
    const img = join(dir.path, 'many.img');
    await writeFatImage(img, { files, dirs: ['empty/sub'] }, { sourceDateEpoch: 0 });
    await fsck(img);
    const mdir = await run('mdir', ['-i', img, '-b', '-/', '::']);
    expect(mdir.code, mdir.stderr).toBe(0);
    expect(mdir.stdout).toContain('::/deep/dir with spaces/a rather long file name number 149.Data');
    expect(mdir.stdout).toContain('::/empty/sub/');
    for (const i of [0, 1, 77, 149]) {
      const p = `deep/dir with spaces/a rather long file name number ${i}.Data`;
      expect((await mcopyOut(img, p)).equals(contents.get(p) ?? Buffer.alloc(1))).toBe(true);
    }
  });

  it('writes FAT12 and FAT32 images on request that fsck.fat accepts', async () => {
    const f12 = join(dir.path, 'f12.img');
    const r12 = await writeFatImage(f12, { files: efiFiles.slice(1) }, { sizeBytes: 1024 * 1024, fatType: 12 });
    expect(r12.fatType).toBe(12);
    expect(await fsck(f12)).toMatch(/12 bit entries/);
    expect((await mcopyOut(f12, 'EFI/ubuntu/grub.cfg')).toString()).toBe(stub);
    // 520 MiB is past mkfs.fat's FAT32 threshold; the file is sparse.
    const f32 = join(dir.path, 'f32.img');
    const r32 = await writeFatImage(f32, { files: efiFiles }, { sizeBytes: 520 * 1024 * 1024 });
    expect(r32.fatType).toBe(32);
    expect(await fsck(f32)).toMatch(/32 bit entries/);
    expect((await mcopyOut(f32, 'EFI/BOOT/BOOTX64.EFI')).equals(await readFile(GRUB))).toBe(true);
  });

  it('rejects content that does not fit a fixed size, and bad paths', async () => {
    const err = await writeFatImage(join(dir.path, 'small.img'), { files: efiFiles }, { sizeBytes: 1024 * 1024 }).catch(
      (e: unknown) => e,
    );
    expect(CanvosError.is(err) && err.code).toBe('ERR_ISO');
    await expect(stat(join(dir.path, 'small.img'))).rejects.toThrow();
    const bad = await writeFatImage(join(dir.path, 'bad.img'), {
      files: [{ path: '../x', source: Buffer.from('') }],
    }).catch((e: unknown) => e);
    expect(CanvosError.is(bad) && bad.code).toBe('ERR_ISO');
    const dup = await writeFatImage(join(dir.path, 'dup.img'), {
      files: [
        { path: 'a/B.txt', source: Buffer.from('1') },
        { path: 'A/b.TXT', source: Buffer.from('2') },
      ],
    }).catch((e: unknown) => e);
    expect(CanvosError.is(dup) && dup.code).toBe('ERR_ISO');
  });
});
