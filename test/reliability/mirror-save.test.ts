/**
 * Class 3 for `mirror save`: a directory target is built beside its final path and renamed in only when complete; an
 * existing layout keeps its index.json byte for byte when the save fails (blobs may stay); an existing archive
 * (NAME.tar + NAME.manifest.json) stays intact when a new save of it fails; SIGINT mid-save leaves nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FaultProxy } from '../helpers/fault-proxy.js';
import { makeOciLayout } from '../helpers/fixtures.js';
import { expectCleanFailure, faultBlobs, runBin, serveImage, type ServedImage } from './harness.js';

let served: ServedImage;
let proxy: FaultProxy;
let dir: string;

beforeAll(async () => {
  served = await serveImage('canvos-rel-mirror-save-', 512 * 1024);
  ({ proxy, dir } = served);
}, 60_000);
afterAll(() => served?.stop());

/** Names in the test directory that start with `name` (the target and any `.name.partial-*` sibling). */
async function traces(name: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n === name || n.startsWith(`.${name}.`)).sort();
}

const save = (to: string, extra: string[] = []): Promise<Awaited<ReturnType<typeof runBin>>> =>
  runBin(['mirror', 'save', '--timeout', '5', '--src-insecure', ...extra, `${proxy.host}/app:v1`, '--to', to]);

function corruptBlobs(): void {
  faultBlobs(proxy, { kind: 'corrupt', offset: 1000 });
}

describe('mirror save --to DIR is staged', () => {
  it('a failing save into a new DIR leaves nothing (no DIR, no .DIR.partial-*)', async () => {
    corruptBlobs();
    const r = await save(join(dir, 'new-dir'));
    proxy.clearRules();
    await expectCleanFailure(r, { code: 16, withinMs: 30_000, hint: false });
    expect(await traces('new-dir')).toEqual([]);
  });

  it('a successful save renames the complete layout in', async () => {
    const to = join(dir, 'fresh-dir');
    const ok = await save(to);
    expect(ok.code, ok.stderr).toBe(0);
    expect(await traces('fresh-dir')).toEqual(['fresh-dir']);
    expect((await readdir(to)).sort()).toEqual(['blobs', 'index.json', 'oci-layout']);
  });

  it('a failing save into an existing layout keeps its index.json byte for byte', async () => {
    const to = join(dir, 'kept-dir');
    await makeOciLayout(to, { tag: 'mine', layerBytes: 3000 });
    const before = await readFile(join(to, 'index.json'));
    corruptBlobs();
    const r = await save(to);
    proxy.clearRules();
    await expectCleanFailure(r, { code: 16, withinMs: 30_000, hint: false });
    expect((await readFile(join(to, 'index.json'))).equals(before)).toBe(true);
    expect(await traces('kept-dir')).toEqual(['kept-dir']);
  });

  it('SIGINT mid-save into a new DIR: exit 130, nothing left', async () => {
    faultBlobs(proxy, { kind: 'slow', bytesPerSecond: 100_000 });
    const to = join(dir, 'sigint-dir');
    const r = await runBin(['mirror', 'save', '--src-insecure', `${proxy.host}/app:v1`, '--to', to], {
      kill: { signal: 'SIGINT', after: 2500 },
    });
    proxy.clearRules();
    await expectCleanFailure(r, { code: 130, withinMs: 8000, hint: false });
    expect(await traces('sigint-dir')).toEqual([]);
  });
});

describe('mirror save --to NAME.tar keeps an earlier archive intact', () => {
  it('a failing save of an existing archive changes neither its parts nor its manifest', async () => {
    const to = join(dir, 'arch.tar');
    const ok = await save(to, ['--max-part-size', '1MiB']);
    expect(ok.code, ok.stderr).toBe(0);
    const names = (await readdir(dir)).filter((n) => n.startsWith('arch.')).sort();
    expect(names).toContain('arch.manifest.json');
    const before = await Promise.all(names.map((n) => readFile(join(dir, n))));
    corruptBlobs();
    const r = await save(to, ['--max-part-size', '1MiB']);
    proxy.clearRules();
    await expectCleanFailure(r, { code: 16, withinMs: 30_000, hint: false });
    const after = (await readdir(dir)).filter((n) => n.startsWith('arch.') && n !== 'arch.tar.layout').sort();
    expect(after).toEqual(names);
    const now = await Promise.all(names.map((n) => readFile(join(dir, n))));
    expect(now.every((b, i) => b.equals(before[i]!))).toBe(true);
  });
});
