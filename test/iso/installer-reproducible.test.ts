/**
 * Reproducible installer ISOs: the same rootfs and overlay inputs built twice (a second apart, into different
 * output directories) with the same SOURCE_DATE_EPOCH give byte-identical ISOs; xorriso reports the pinned volume
 * dates. Without an epoch the ISO keeps AuroraBoot's behaviour (current time), which the last case shows.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildIso, type BuildIsoResult } from '../../src/iso/build-iso.js';
import { layoutRootfs, prepareBootFixture } from '../helpers/boot-fixture.js';
import { run, tmpDir } from '../helpers/tools.js';

let dir: Awaited<ReturnType<typeof tmpDir>>;
let layout: string;
beforeAll(async () => {
  dir = await tmpDir('canvos-iso-repro-');
  layout = (await prepareBootFixture()).layoutDir;
  await writeFile(join(dir.path, 'user-data'), '#cloud-config\ninstall:\n  auto: true\n');
}, 600_000);
afterAll(async () => {
  await dir?.cleanup();
});

async function build(out: string, epoch: number | undefined): Promise<BuildIsoResult> {
  // A clean environment: xorriso must not pick SOURCE_DATE_EPOCH up from the test runner.
  const env = { PATH: process.env.PATH };
  return buildIso(
    {
      rootfs: await layoutRootfs(layout),
      userData: join(dir.path, 'user-data'),
      outputDir: join(dir.path, out),
      name: 'repro',
    },
    { env, sourceDateEpoch: epoch },
  );
}

describe('reproducible ISO bytes', () => {
  it('same inputs and SOURCE_DATE_EPOCH twice give the same ISO sha256', async () => {
    const a = await build('a', 1_700_000_000);
    await sleep(1100); // staging files get new mtimes; the ISO must not carry them
    const b = await build('b', 1_700_000_000);
    expect(b.sha256).toBe(a.sha256);
    const pvd = await run('xorriso', ['-indev', a.isoPath, '-pvd_info']);
    expect(pvd.stdout).toMatch(/Creation Time: 2023111422132000/);
    expect(pvd.stdout).toMatch(/Modif\. Time\s*: 2023111422132000/);
    const ls = await run('xorriso', ['-indev', a.isoPath, '-lsdl', '/files-iso/config.yaml']);
    expect(ls.stdout).toMatch(/Nov 14\s+2023 '\/files-iso\/config\.yaml'/);
  }, 240_000);

  it('another SOURCE_DATE_EPOCH gives another ISO', async () => {
    const a = await build('c', 1_700_000_000);
    const b = await build('d', 1_600_000_000);
    expect(b.sha256).not.toBe(a.sha256);
  }, 240_000);
});
