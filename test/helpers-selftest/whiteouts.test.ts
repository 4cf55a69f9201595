import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, tmpDir } from '../helpers/tools.js';
import { whiteoutProblems } from '../helpers/whiteouts.js';

let tmp: Awaited<ReturnType<typeof tmpDir>>;

/** A gzip layer made by GNU tar from `files` (path → content; '' for an empty whiteout file). */
async function layer(name: string, files: Record<string, string>): Promise<string> {
  const root = join(tmp.path, name);
  for (const [p, c] of Object.entries(files)) {
    await mkdir(join(root, p, '..'), { recursive: true });
    await writeFile(join(root, p), c);
  }
  const out = join(tmp.path, `${name}.tar.gz`);
  const r = await run('tar', ['-czf', out, '-C', root, '.']);
  expect(r.code).toBe(0);
  return out;
}

beforeAll(async () => {
  tmp = await tmpDir('whiteouts-selftest-');
});
afterAll(async () => tmp?.cleanup());

describe('whiteoutProblems (the oracle of the provider whiteout tests)', () => {
  it('accepts whiteouts of lower content and reports dangling ones and directories made only for them', async () => {
    const base = await layer('base', { 'etc/ssh/ssh_host_rsa_key': 'k', 'etc/hosts': 'h' });
    const good = await layer('good', { 'etc/ssh/.wh.ssh_host_rsa_key': '' });
    expect(await whiteoutProblems([base, good])).toEqual([]);
    const bad = await layer('bad', { 'usr/local/system/.wh.providers': '', 'etc/.wh.gone': '' });
    expect((await whiteoutProblems([base, bad])).sort()).toEqual([
      'layer 1: directory usr is new and holds only whiteouts',
      'layer 1: directory usr/local is new and holds only whiteouts',
      'layer 1: directory usr/local/system is new and holds only whiteouts',
      'layer 1: whiteout etc/.wh.gone hides nothing (no lower layer has etc/gone)',
      'layer 1: whiteout usr/local/system/.wh.providers hides nothing (no lower layer has usr/local/system/providers)',
    ]);
    // Hiding something twice: the second whiteout hides nothing any more.
    expect(await whiteoutProblems([base, good, good])).toEqual([
      'layer 2: whiteout etc/ssh/.wh.ssh_host_rsa_key hides nothing (no lower layer has etc/ssh/ssh_host_rsa_key)',
    ]);
  });
});
