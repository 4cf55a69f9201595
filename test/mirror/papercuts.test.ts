import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { mirrorSave } from '../../src/mirror/operations.js';
import { eachLimited } from '../../src/mirror/engine.js';
import { itemsFromRefs } from '../../src/mirror/resolve.js';
import { sha256 } from '../../src/image/digest.js';
import { makeOciLayout } from '../helpers/fixtures.js';
import { pushLayout } from '../helpers/push-layout.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { runCli } from '../helpers/cli.js';
import { run, skopeo, tmpDir } from '../helpers/tools.js';

// Mirror papercuts of issue #12: no MaxListenersExceededWarning with many images (the real binary, whose stderr is
// where Node prints it), --max-part-size refused before anything is read, bare references under `images:`.
const repoRoot = resolve(import.meta.dirname, '..', '..');
const IMAGES = 16; // more than Node's 10 listeners plus the 4 images copied at once
let a: TestRegistry;
let b: TestRegistry;
let tmp: { path: string; cleanup(): Promise<void> };
let digest = '';

beforeAll(async () => {
  tmp = await tmpDir('canvos-mirror-papercuts-');
  [a, b] = await Promise.all([startRegistry(), startRegistry()]);
  const fx = await makeOciLayout(join(tmp.path, 'img'), { tag: 'v1', layers: 2, layerBytes: 4096 });
  digest = fx.indexDigest;
  for (let i = 0; i < IMAGES; i++) await pushLayout(join(tmp.path, 'img'), a, `many/app${i}`, { tag: '1.0.0' });
}, 120_000);
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await tmp?.cleanup();
});

const bin = (args: string[]) =>
  run(process.execPath, [join(repoRoot, 'bin', 'canvos-lite.js'), 'mirror', ...args], {
    env: { PATH: process.env.PATH, HOME: tmp.path },
    timeoutMs: 120_000,
  });
const cli = (...args: string[]) =>
  runCli(['mirror', ...args], { env: { HOME: tmp.path, PATH: process.env.PATH }, cwd: tmp.path });

describe('mirror with many images', () => {
  it('plan, push and save of 16 images (bare references and tag filters in mirror.yaml) print no MaxListenersExceededWarning', async () => {
    const cfg = join(tmp.path, 'many.yaml');
    const half = IMAGES / 2;
    const bare = Array.from({ length: half }, (_, i) => `  - ${a.host}/many/app${i}:1.0.0`);
    const filtered = Array.from(
      { length: IMAGES - half },
      (_, i) => `  - ref: ${a.host}/many/app${half + i}\n    tags: { semver: ">=1" }`,
    );
    await writeFile(cfg, `images:\n${[...bare, ...filtered].join('\n')}\nreferrers: true\n`);
    const runs = [
      ['plan', '--config', cfg, '--to', b.host, '--src-insecure', '--dest-insecure', '--json'],
      ['push', '--config', cfg, '--to', b.host, '--src-insecure', '--dest-insecure', '--json'],
      ['save', '--config', cfg, '--to', join(tmp.path, 'many.tar'), '--src-insecure', '--json'],
    ];
    for (const args of runs) {
      const r = await bin(args);
      expect(r.stderr, args[0]).toBe('');
      expect(r.code, `${args[0]}: ${r.stdout.slice(0, 2000)}`).toBe(0);
      const rep = JSON.parse(r.stdout) as { images: Array<{ source: string }> };
      expect(rep.images.map((i) => i.source).sort(), args[0]).toEqual(
        Array.from({ length: IMAGES }, (_, i) => `${a.host}/many/app${i}:1.0.0`).sort(),
      );
    }
    const last = `${b.host}/${a.host.replace(':', '-')}/many/app${IMAGES - 1}:1.0.0`;
    expect(sha256(await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${last}`]))).toBe(digest);
  });

  it('eachLimited runs at most `limit` at once, every entry once, and rejects with the first error', async () => {
    let now = 0;
    let peak = 0;
    const seen: number[] = [];
    await eachLimited(
      Array.from({ length: 25 }, (_, i) => i),
      4,
      async (n, i) => {
        expect(i).toBe(n);
        now++;
        peak = Math.max(peak, now);
        await new Promise((r) => setTimeout(r, 1 + (n % 3)));
        seen.push(n);
        now--;
      },
    );
    expect(peak).toBe(4);
    expect(seen.sort((x, y) => x - y)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    await expect(
      eachLimited([1, 2, 3], 2, async (n) => {
        if (n === 2) throw new Error('two');
      }),
    ).rejects.toThrow('two');
    await eachLimited([], 4, async () => {
      throw new Error('never called');
    });
  });
});

describe('--max-part-size is checked before anything is read', () => {
  // The source registry does not exist: any attempt to list or download would fail with another error and exit code.
  const nowhere = '127.0.0.1:9/none/app:1';
  it('refuses a size below 1 MiB, a bad size, a directory target and other subcommands with usage errors', async () => {
    const tar = join(tmp.path, 'cut.tar');
    const cases: Array<[string[], RegExp]> = [
      [['save', nowhere, '--to', tar, '--max-part-size', '1k'], /--max-part-size 1024 is below 1 MiB/],
      [['save', nowhere, '--to', tar, '--max-part-size', '0'], /--max-part-size 0 is below 1 MiB/],
      [['save', nowhere, '--to', tar, '--max-part-size', 'lots'], /--max-part-size "lots": expected bytes/],
      [
        ['save', nowhere, '--to', join(tmp.path, 'cut-dir'), '--max-part-size', '4G'],
        /--max-part-size splits an archive: save to NAME\.tar/,
      ],
      [
        ['push', nowhere, '--to', b.host, '--max-part-size', '4G'],
        /--max-part-size applies to mirror save only, not mirror push/,
      ],
      [['plan', nowhere, '--max-part-size', 'fat32'], /--max-part-size applies to mirror save only, not mirror plan/],
    ];
    for (const [args, msg] of cases) {
      const r = await cli(...args);
      expect(r.stderr, args.join(' ')).toMatch(msg);
      expect(r.stderr).toMatch(/^hint: /m);
      expect(r.code, args.join(' ')).toBe(2);
    }
    expect(existsSync(`${tar}.layout`)).toBe(false);
    expect(existsSync(join(tmp.path, 'cut-dir'))).toBe(false);
  });

  it('the library refuses it before creating the working layout', async () => {
    const tar = join(tmp.path, 'lib.tar');
    await expect(mirrorSave(itemsFromRefs([nowhere]), tar, { maxPartSize: 4096 })).rejects.toMatchObject({
      code: 'ERR_USAGE',
      message: expect.stringMatching(/below 1 MiB/),
    });
    await expect(
      mirrorSave(itemsFromRefs([nowhere]), join(tmp.path, 'lib-dir'), { maxPartSize: 8 << 20 }),
    ).rejects.toMatchObject({ code: 'ERR_USAGE' });
    expect(existsSync(`${tar}.layout`)).toBe(false);
    expect(existsSync(join(tmp.path, 'lib-dir'))).toBe(false);
  });
});
