/**
 * The disk image's building blocks against the real tools: the GPT (sgdisk -v / -i), name-based GUIDs equal to
 * AuroraBoot's (uuid.NewV5(NamespaceURL, label)), the BIOS boot patching offsets, grubenv (grub-editenv) and the
 * first-boot reset config.
 */
import { open, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { layoutDisk } from '../../src/disk/assemble.js';
import { placeBiosBoot } from '../../src/disk/bios.js';
import { PART_TYPE, SECTOR, crc32, gptTables, guidBytes, uuidV5 } from '../../src/disk/gpt.js';
import { firstBootResetYaml, grubEnvBlock, stateSizeMiB } from '../../src/disk/kairos-files.js';
import { qemuImgArgs } from '../../src/disk/convert.js';
import { run, tmpDir } from '../helpers/tools.js';

let dir: { path: string; cleanup(): Promise<void> };
beforeAll(async () => {
  dir = await tmpDir('canvos-gpt-');
});
afterAll(async () => {
  await dir.cleanup();
});

describe('GPT writer', () => {
  it('computes CRC-32 and v5 GUIDs as zlib and Go uuid.NewV5 do', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(uuidV5('COS_GRUB')).toBe('81444e82-66b3-5ed2-961b-497665f12be2');
    expect(guidBytes(PART_TYPE.efiSystem).toString('hex')).toBe('28732ac11ff8d211ba4b00a0c93ec93b');
  });

  it('writes a table sgdisk verifies, with names, types, GUIDs and attributes', async () => {
    const file = join(dir.path, 'gpt.img');
    const totalSectors = 16 * 2048;
    const parts = [
      {
        name: 'efi',
        type: PART_TYPE.efiSystem,
        guid: uuidV5('COS_GRUB'),
        firstLba: 2048,
        lastLba: 4095,
        attributes: 1n,
      },
      {
        name: 'bios',
        type: PART_TYPE.biosBoot,
        guid: uuidV5('BIOS_BOOT'),
        firstLba: 4096,
        lastLba: 6143,
        attributes: 5n,
      },
      {
        name: 'recovery',
        type: PART_TYPE.linuxFs,
        guid: uuidV5('COS_RECOVERY'),
        firstLba: 6144,
        lastLba: totalSectors - 2049,
      },
    ];
    const t = gptTables({ totalSectors, diskGuid: uuidV5('disk'), partitions: parts });
    await writeFile(file, t.head);
    await truncate(file, totalSectors * SECTOR);
    const fh = await open(file, 'r+');
    await fh.write(t.tail, 0, t.tail.length, t.tailOffset);
    await fh.close();
    const v = await run('sgdisk', ['-v', file]);
    expect(v.stdout, v.stdout + v.stderr).toContain('No problems found');
    const p = await run('sgdisk', ['-p', file]);
    expect(p.stdout).toMatch(/1\s+2048\s+4095\s+1024\.0 KiB\s+EF00\s+efi/);
    expect(p.stdout).toMatch(/2\s+4096\s+6143\s+1024\.0 KiB\s+EF02\s+bios/);
    expect(p.stdout).toMatch(/3\s+6144\s+30719\s+.*8300\s+recovery/);
    expect(p.stdout).toContain(`Disk identifier (GUID): ${uuidV5('disk').toUpperCase()}`);
    const i = await run('sgdisk', ['-i', '2', file]);
    expect(i.stdout).toContain(`Partition unique GUID: ${uuidV5('BIOS_BOOT').toUpperCase()}`);
    expect(i.stdout).toContain('Attribute flags: 0000000000000005');
  });

  it('lays partitions out from LBA 2048 in whole MiB, 1 MiB spare for the backup GPT, grown to --size', () => {
    const parts = [
      { name: 'efi', type: PART_TYPE.efiSystem, label: 'COS_GRUB', sizeMiB: 64 },
      { name: 'oem', type: PART_TYPE.linuxFs, label: 'COS_OEM', sizeMiB: 64 },
    ];
    const a = layoutDisk(parts);
    expect(a.placed.map((p) => [p.firstLba, p.lastLba, p.guid])).toEqual([
      [2048, 133119, uuidV5('COS_GRUB')],
      [133120, 264191, uuidV5('COS_OEM')],
    ]);
    expect(a.totalSectors).toBe(264192 + 2048);
    expect(layoutDisk(parts, 1024).totalSectors).toBe(1024 * 2048);
  });

  it('refuses partitions outside the usable range', () => {
    const bad = [{ name: 'x', type: PART_TYPE.linuxFs, guid: uuidV5('x'), firstLba: 2048, lastLba: 4096 }];
    expect(() => gptTables({ totalSectors: 4096, diskGuid: uuidV5('d'), partitions: bad })).toThrow(/outside/);
  });
});

describe('BIOS boot patching (grub util/setup.c)', () => {
  it('points boot.img at the core and the core blocklist at its remaining sectors', async () => {
    const bootImg = await readFile('/usr/lib/grub/i386-pc/boot.img');
    const core = Buffer.alloc(3 * SECTOR + 100, 0xaa);
    const r = placeBiosBoot(bootImg, core, 133120, 2048);
    expect(r.bootCode.length).toBe(440);
    expect(r.bootCode.readBigUInt64LE(0x5c)).toBe(133120n);
    expect([...r.bootCode.subarray(0x64, 0x68)]).toEqual([0xff, bootImg[0x65], 0x90, 0x90]);
    expect(r.core.length).toBe(4 * SECTOR);
    expect(r.core.readBigUInt64LE(500)).toBe(133121n);
    expect(r.core.readUInt16LE(508)).toBe(3);
    expect(r.core.readUInt16LE(510)).toBe(0x820);
    expect(r.core.readUInt16LE(496)).toBe(0); // terminator entry
    expect(() => placeBiosBoot(bootImg, Buffer.alloc(3 * SECTOR), 2048, 2)).toThrow(/does not fit/);
  });
});

describe('Kairos files', () => {
  it('writes a grubenv block grub-editenv reads', async () => {
    const f = join(dir.path, 'grubenv');
    const block = grubEnvBlock({ next_entry: 'recovery' });
    expect(block.length).toBe(1024);
    await writeFile(f, block);
    const r = await run('grub-editenv', [f, 'list']);
    expect(r.stdout.trim()).toBe('next_entry=recovery');
  });

  it('sizes COS_STATE like AuroraBoot and adds COS_STATE + COS_PERSISTENT on first boot', () => {
    expect(stateSizeMiB(200 * 1024 * 1024)).toBe(700);
    const y = parse(firstBootResetYaml(700)) as {
      stages: Record<
        string,
        Array<{ layout?: { add_partitions: Array<Record<string, unknown>> }; commands?: string[] }>
      >;
    };
    const parts = (y.stages['rootfs.before'] ?? []).flatMap((s) => s.layout?.add_partitions ?? []);
    expect(parts).toEqual([
      { fsLabel: 'COS_STATE', size: 700, pLabel: 'state', filesystem: 'ext4' },
      { fsLabel: 'COS_PERSISTENT', size: 0, pLabel: 'persistent', filesystem: 'ext4' },
    ]);
    expect(y.stages.network?.[0]?.commands).toEqual(['kairos-agent --debug reset --unattended --reboot']);
  });

  it('converts to a fixed VHD of the exact raw size (Azure) and to qcow2', () => {
    expect(qemuImgArgs('a.raw', 'a.vhd', 'vhd')).toEqual([
      'convert',
      '-q',
      '-f',
      'raw',
      '-O',
      'vpc',
      '-o',
      'subformat=fixed,force_size=on',
      'a.raw',
      'a.vhd',
    ]);
    expect(qemuImgArgs('a.raw', 'a.qcow2', 'qcow2')).toContain('qcow2');
  });
});
