import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFile, mkdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { makeOciLayout } from '../helpers/fixtures.js';
import { run, skopeo, tmpDir } from '../helpers/tools.js';
import { sha256 } from '../../src/image/digest.js';

// The real binary: bin/canvos-lite.js over a tsc build, run once from the CLI bundle (scripts/bundle.mjs, with the
// tsc modules of the CLI moved away, so only the bundle can serve it) and once from the plain modules (the bundle
// older than the tsc output, as after a `tsc` without the bundle step). The build goes under node_modules/.cache so
// the compiled code resolves the project's dependencies; it is removed afterwards.
const repo = resolve(import.meta.dirname, '..', '..');
const build = join(repo, 'node_modules', '.cache', `canvos-copy-cli-${process.pid}`);
let tmp: { path: string; cleanup(): Promise<void> };

beforeAll(async () => {
  tmp = await tmpDir('canvos-cli-bin-');
  // Other areas may be mid-edit and fail to typecheck; tsc still emits, and this test only needs the copy command.
  await run(
    process.execPath,
    [
      join(repo, 'node_modules', 'typescript', 'bin', 'tsc'),
      '-p',
      join(repo, 'tsconfig.json'),
      '--outDir',
      join(build, 'dist'),
      '--declaration',
      'false',
      '--sourceMap',
      'false',
    ],
    { timeoutMs: 180_000 },
  );
  await stat(join(build, 'dist', 'cli', 'commands', 'copy.js'));
  await mkdir(join(build, 'bin'), { recursive: true });
  await copyFile(join(repo, 'bin', 'canvos-lite.js'), join(build, 'bin', 'canvos-lite.js'));
  await writeFile(join(build, 'package.json'), '{"type":"module"}\n');
  await run(
    process.execPath,
    [join(repo, 'scripts', 'bundle.mjs'), join(build, 'dist', 'bundle'), join(build, 'dist', 'cli', 'main.js')],
    { timeoutMs: 120_000 },
  );
  await stat(join(build, 'dist', 'bundle', 'main.mjs'));
}, 200_000);
afterAll(async () => {
  await rm(build, { recursive: true, force: true });
  await tmp?.cleanup();
});

/** Make the bin pick the bundle (moving the CLI's tsc modules away) or the plain modules (bundle older). */
async function use(kind: 'bundle' | 'modules'): Promise<void> {
  const cli = join(build, 'dist', 'cli');
  const off = join(build, 'dist', 'cli-off');
  if (kind === 'bundle') {
    await rename(cli, off);
  } else {
    await rename(off, cli).catch(() => {});
    const old = new Date(Date.now() - 3600_000);
    await utimes(join(build, 'dist', 'bundle', 'main.mjs'), old, old);
  }
}

describe.each(['bundle', 'modules'] as const)('canvos-lite copy (real binary, %s)', (kind) => {
  it('copies a layout, prints plain progress lines off a TTY, and fails with one line and a distinct exit code', async () => {
    await use(kind);
    const fx = await makeOciLayout(join(tmp.path, `src-${kind}`), {
      tag: 'v1',
      platforms: ['linux/amd64', 'linux/arm64'],
      layers: 1,
      layerBytes: 4096,
    });
    const bin = join(build, 'bin', 'canvos-lite.js');
    const env = { PATH: process.env.PATH, HOME: tmp.path };
    const ok = await run(
      process.execPath,
      [bin, 'copy', `oci:${join(tmp.path, `src-${kind}`)}:v1`, `oci:${join(tmp.path, `dst-${kind}`)}:copied`],
      { env },
    );
    const lines = ok.stderr.trim().split('\n');
    expect(lines).toHaveLength(4); // 2 configs + 2 layers, one plain line each
    for (const l of lines) expect(l).toMatch(/^copied sha256:[0-9a-f]{12}… \d+(\.\d)? k?B$/);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`: ${fx.indexDigest} (3 manifests; blobs: 4 copied, 0 skipped, 0 mounted;`);
    expect(sha256(await skopeo(['inspect', '--raw', `oci:${join(tmp.path, `dst-${kind}`)}:copied`]))).toBe(
      fx.indexDigest,
    );

    const bad = await run(process.execPath, [bin, 'copy', 'nope:/x', `oci:${join(tmp.path, 'dst')}`], { env });
    expect(bad.code).toBe(17);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toBe(
      'canvos-lite: unknown transport "nope" in "nope:/x" (valid: docker://, oci:, docker-archive:)\nhint: write docker://host/repo:tag, oci:DIR[:tag] or docker-archive:FILE[:name:tag]\n',
    );
    const help = await run(process.execPath, [bin, 'copy', '--help'], { env });
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--platform OS/ARCH');
  });
});
