/**
 * Class 1 for spawned tools (src/util/run-tool.ts): a tool that hangs silently (a shell script first on PATH that
 * starts a grandchild and waits) is stopped after `--timeout` with exit 10 naming the tool and the flag; its whole
 * process group is gone afterwards, the output directory the command made is removed and $TMPDIR is empty. A
 * missing tool keeps its "not installed" hint; a second case checks that output counts as progress.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runTool } from '../../src/util/run-tool.js';
import { prepareBootFixture, type BootFixture } from '../helpers/boot-fixture.js';
import { tmpDir } from '../helpers/tools.js';
import { entries, expectCleanFailure, runBin } from './harness.js';

let tmp: { path: string; cleanup(): Promise<void> };
let fx: BootFixture;

beforeAll(async () => {
  tmp = await tmpDir('canvos-rel-tools-');
  fx = await prepareBootFixture();
}, 600_000);
afterAll(async () => {
  await tmp?.cleanup();
});

/** A directory holding `name`: a script that records its pid and its grandchild's, then waits silently. */
async function hangingTool(name: string): Promise<{ bin: string; pids: () => Promise<number[]> }> {
  const bin = join(tmp.path, `bin-${name}`);
  await mkdir(bin, { recursive: true });
  const script = `#!/bin/sh\necho $$ > "${bin}/tool.pid"\nsleep 600 &\necho $! > "${bin}/child.pid"\nwait\n`;
  await writeFile(join(bin, name), script);
  await chmod(join(bin, name), 0o755);
  return {
    bin,
    pids: async () =>
      Promise.all(['tool.pid', 'child.pid'].map(async (f) => Number((await readFile(join(bin, f), 'utf8')).trim()))),
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The pids end within a second or two after the command (SIGTERM to the group, SIGKILL after the grace). */
async function expectGone(pids: number[]): Promise<void> {
  const until = Date.now() + 5000;
  while (pids.some(alive) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  expect(pids.filter(alive)).toEqual([]);
}

describe('a spawned tool that hangs → exit 10 after --timeout, process group gone', () => {
  it('xorriso (iso --base)', async () => {
    const fake = await hangingTool('xorriso');
    const out = join(tmp.path, 'iso-out');
    const r = await runBin(['iso', '--base', `oci:${fx.layoutDir}:${fx.tag}`, '--output', out, '--timeout', '2'], {
      env: { PATH: `${fake.bin}:${process.env.PATH}` },
    });
    await expectCleanFailure(r, {
      code: 10,
      withinMs: 60_000,
      message: /xorriso made no progress for 2 s .*stopped/,
    });
    expect(r.stderr).toMatch(/hint: .*xorriso.*--timeout/);
    await expectGone(await fake.pids());
    expect(await entries(out)).toBeNull();
  }, 90_000);

  it('mke2fs (disk --base)', async () => {
    const fake = await hangingTool('mke2fs');
    const out = join(tmp.path, 'disk-out');
    const r = await runBin(['disk', '--base', `oci:${fx.layoutDir}:${fx.tag}`, '--output', out, '--timeout', '2'], {
      env: { PATH: `${fake.bin}:${process.env.PATH}` },
    });
    await expectCleanFailure(r, { code: 10, withinMs: 60_000, message: /mke2fs made no progress for 2 s/ });
    expect(r.stderr).toMatch(/hint: .*mke2fs.*--timeout/);
    await expectGone(await fake.pids());
    expect((await entries(out)) ?? []).toEqual([]);
  }, 90_000);
});

describe('runTool (library)', () => {
  it('output counts as progress; the total bound still stops it; abort kills the group', async () => {
    const chatty = ['-c', 'for i in 1 2 3 4 5 6; do echo tick; sleep 0.3; done; echo done'];
    await expect(runTool('sh', chatty, { code: 'ERR_DISK', missingHint: '', idleMs: 1000 })).resolves.toMatch(
      /done\n$/,
    );
    await expect(
      runTool('sh', chatty, { code: 'ERR_DISK', missingHint: '', idleMs: 1000, totalMs: 700 }),
    ).rejects.toMatchObject({ code: 'ERR_TIMEOUT', message: /sh did not finish within 0\.7 s/ });
    const ac = new AbortController();
    const t0 = Date.now();
    setTimeout(() => ac.abort(), 300);
    await expect(
      runTool('sh', ['-c', 'sleep 600 & wait'], { code: 'ERR_DISK', missingHint: '', signal: ac.signal }),
    ).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('a missing program is the given code with the install hint; stderr in the message is redacted', async () => {
    await expect(
      runTool('no-such-tool-xyz', [], { code: 'ERR_ISO', missingHint: 'install it (apt-get install x)' }),
    ).rejects.toMatchObject({ code: 'ERR_ISO', message: /no-such-tool-xyz not found/, hint: /apt-get install x/ });
    await expect(
      runTool('sh', ['-c', 'echo "GET https://bob:S3cret@h.example/v2" >&2; exit 3'], {
        code: 'ERR_DISK',
        missingHint: '',
      }),
    ).rejects.toMatchObject({ code: 'ERR_DISK', message: 'sh exited 3: GET https://h.example/v2' });
  });
});
