/**
 * xorriso argument list (AuroraBoot v0.26.2, canvos.md §3.3, argument for argument) and the runner's failure
 * modes against the real binary: missing program, non-zero exit with the stderr tail, abort.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CanvosError, XorrisoError } from '../../src/errors.js';
import { runXorriso } from '../../src/iso/run-xorriso.js';
import { xorrisoArgs } from '../../src/iso/xorriso-args.js';
import { run, tmpDir } from '../helpers/tools.js';

let dir: { path: string; cleanup(): Promise<void> };
beforeAll(async () => {
  dir = await tmpDir('canvos-xorriso-');
});
afterAll(async () => {
  await dir.cleanup();
});

describe('xorrisoArgs', () => {
  it('reproduces the AuroraBoot build-iso command line exactly, plus ownership 0:0 and no emulated TOC', () => {
    const argv = ['xorriso', ...xorrisoArgs({ isoDir: '/s/iso', outPath: '/o/x.iso' })].join(' ');
    expect(argv).toBe(
      [
        'xorriso -volid COS_LIVE -joliet on -padding 0 -compliance no_emul_toc -outdev /o/x.iso -map /s/iso / -chmod 0755 --',
        '-chown_r 0 / -- -chgrp_r 0 / --',
        '-boot_image grub bin_path=/boot/eltorito.img',
        '-boot_image grub grub2_mbr=/s/iso//boot/boot_hybrid.img',
        '-boot_image grub grub2_boot_info=on',
        '-boot_image any partition_offset=16',
        '-boot_image any cat_path=/boot/boot.catalog',
        '-boot_image any cat_hidden=on',
        '-boot_image any boot_info_table=on',
        '-boot_image any platform_id=0x00',
        '-boot_image any emul_type=no_emulation',
        '-boot_image any load_size=2048',
        '-boot_image any next',
        '-boot_image any platform_id=0xef',
        '-boot_image any emul_type=no_emulation',
        '-append_partition 2 0xef /s/iso/boot/uefi.img',
        '-boot_image any efi_path=--interval:appended_partition_2:all::',
        '-boot_image any appended_part_as=gpt',
        '-boot_image any mbr_force_bootable=on',
      ].join(' '),
    );
    expect(xorrisoArgs({ isoDir: 'd', outPath: 'o', volid: 'X' }).slice(0, 2)).toEqual(['-volid', 'X']);
  });
});

describe('runXorriso', () => {
  it('maps a missing xorriso (PATH without it) to ERR_XORRISO_MISSING with an install hint', async () => {
    const err = await runXorriso(['-version'], { env: { PATH: dir.path } }).catch((e: unknown) => e);
    expect(CanvosError.is(err) && err.code).toBe('ERR_XORRISO_MISSING');
    expect((err as CanvosError).hint).toContain('apt-get install xorriso');
    expect((err as CanvosError).exitCode).toBe(14);
  });

  it('reports a failing run as XorrisoError with the stderr tail', async () => {
    const err = await runXorriso([
      '-outdev',
      join(dir.path, 'x.iso'),
      '-map',
      join(dir.path, 'does-not-exist'),
      '/',
    ]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XorrisoError);
    const x = err as XorrisoError;
    expect(x.code).toBe('ERR_XORRISO_EXIT');
    expect(x.processExitCode).not.toBe(0);
    expect(x.stderrTail).toMatch(/does-not-exist/);
    expect(x.message).toMatch(/^xorriso failed/);
  });

  it('writes an ISO on success; an aborted signal gives ERR_ABORTED', async () => {
    const src = join(dir.path, 'tree');
    await mkdir(src, { recursive: true });
    await writeFile(join(src, 'hello.txt'), 'hi\n');
    const out = join(dir.path, 'ok.iso');
    await runXorriso(['-volid', 'T', '-outdev', out, '-map', src, '/']);
    const ls = await run('xorriso', ['-indev', out, '-find', '/', '-type', 'f']);
    expect(ls.stdout).toContain("'/hello.txt'");
    const ac = new AbortController();
    ac.abort();
    const aborted = await runXorriso(['-version'], { signal: ac.signal }).catch((e: unknown) => e);
    expect(CanvosError.is(aborted) && aborted.code).toBe('ERR_ABORTED');
  });
});
