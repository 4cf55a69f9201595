// The packed package as a consumer gets it (npm pack → npm install <tarball>): the prebuilt addon loads with and
// without install scripts and the demo's provider images get byte-identical digests either way; `tsc --strict` of
// a file importing canvos-lite compiles with nothing but the tarball and typescript installed (@types/node comes as a
// peer); the shipped source maps carry their sources.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cp, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run, tmpDir } from './helpers/tools.js';

const root = join(import.meta.dirname, '..');
const npmFlags = ['--prefer-offline', '--no-audit', '--no-fund', '--loglevel=warn'];
let tmp: Awaited<ReturnType<typeof tmpDir>>;
let tarball: string;
const consumers = { scripts: '', noScripts: '' };

async function ok(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  const r = await run(cmd, args, { cwd, env: { ...process.env, ...env }, timeoutMs: 240_000 });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.slice(-3000)}`);
  return r;
}

/** A project with only the tarball and the repo's TypeScript version installed (from npm's cache when it can). */
async function consumer(name: string, ignoreScripts: boolean): Promise<string> {
  const dir = join(tmp.path, name);
  await cp(join(root, 'fixtures/demo'), join(dir, 'fixtures/demo'), { recursive: true });
  await cp(join(root, 'scripts/demo.mjs'), join(dir, 'scripts/demo.mjs'));
  await writeFile(
    join(dir, 'package.json'),
    JSON.stringify({ name: `consumer-${name}`, version: '1.0.0', type: 'module', private: true }),
  );
  const ts = JSON.parse(await readFile(join(root, 'node_modules/typescript/package.json'), 'utf8')) as {
    version: string;
  };
  const r = await ok(
    'npm',
    [
      'install',
      ...npmFlags,
      ...(ignoreScripts ? ['--ignore-scripts'] : ['--foreground-scripts']),
      tarball,
      `typescript@${ts.version}`,
    ],
    dir,
  );
  expect(r.stdout + r.stderr).not.toMatch(/gyp (ERR|info)/);
  // npm 11 still runs a dependency's install script (warning that allowScripts does not cover it): make sure it did.
  if (!ignoreScripts) expect(r.stdout).toContain('node scripts/install-native.mjs');
  return dir;
}

/** tag → manifest digest, and tag → config digest, of the demo's output layout. */
async function demo(dir: string, env: NodeJS.ProcessEnv = {}) {
  await ok(process.execPath, [join(dir, 'scripts/demo.mjs')], dir, env);
  const index = JSON.parse(await readFile(join(dir, 'build/provider-images/index.json'), 'utf8')) as {
    manifests: { digest: string; annotations: Record<string, string> }[];
  };
  const manifests: Record<string, string> = {};
  const configs: Record<string, string> = {};
  for (const m of index.manifests) {
    const tag = m.annotations['org.opencontainers.image.ref.name']!;
    manifests[tag] = m.digest;
    const man = JSON.parse(
      await readFile(join(dir, 'build/provider-images/blobs/sha256', m.digest.slice(7)), 'utf8'),
    ) as { config: { digest: string } };
    configs[tag] = man.config.digest;
  }
  expect(Object.keys(manifests).sort()).toEqual(['1.29.8', '1.30.4', '1.31.2'].map((v) => `k3s-${v}-v4.9.38-demo`));
  return { manifests, configs };
}

const backend = async (dir: string, env: NodeJS.ProcessEnv = {}) => {
  const load = join(dir, 'node_modules/canvos-lite/dist/native/load.js');
  const r = await ok(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const m = await import(${JSON.stringify(load)}); console.log(m.compressor().backend)`,
    ],
    dir,
    env,
  );
  return r.stdout.trim();
};

beforeAll(async () => {
  tmp = await tmpDir('canvos-package-');
  // --ignore-scripts: no `prepare` rebuilding dist/ under the other test files' feet (scripts/test.sh built it).
  const packed = await ok(
    'npm',
    ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp.path, '--loglevel=warn'],
    root,
  );
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as {
    filename: string;
    files: { path: string }[];
  }[];
  tarball = join(tmp.path, info!.filename);
  const files = info!.files.map((f) => f.path);
  for (const f of [
    'native/prebuilds/linux-x64/node.napi.glibc.node',
    'native/prebuilds/linux-arm64/node.napi.glibc.node',
    'scripts/install-native.mjs',
    'native/binding.gyp',
    'native/src/canvos_native.cc',
    'dist/index.d.ts',
    'dist/internal.d.ts',
  ])
    expect(files).toContain(f);
  consumers.noScripts = await consumer('no-scripts', true);
  consumers.scripts = await consumer('scripts', false);
}, 400_000);

afterAll(async () => {
  await tmp?.cleanup();
});

describe('the packed package', () => {
  it('loads the prebuilt addon and builds the demo with identical digests, with and without install scripts', async () => {
    expect(await backend(consumers.noScripts)).toBe('native');
    expect(await backend(consumers.scripts)).toBe('native');
    const a = await demo(consumers.noScripts);
    const b = await demo(consumers.scripts);
    expect(b.manifests).toEqual(a.manifests);
    // The pure-JS fallback: same uncompressed content (config digests, which hold the diff_ids), other gzip bytes.
    expect(await backend(consumers.noScripts, { CANVOS_NO_NATIVE: '1' })).toBe('js');
    const js = await demo(consumers.noScripts, { CANVOS_NO_NATIVE: '1' });
    expect(js.configs).toEqual(a.configs);
    for (const tag of Object.keys(a.manifests)) expect(js.manifests[tag]).not.toBe(a.manifests[tag]);
  });

  it('type-checks a strict consumer that installed only the tarball and typescript', async () => {
    const dir = consumers.noScripts;
    expect(JSON.parse(await readFile(join(dir, 'node_modules/@types/node/package.json'), 'utf8'))).toHaveProperty(
      'name',
      '@types/node',
    );
    await writeFile(
      join(dir, 'use.ts'),
      [
        "import { buildLayer, CanvosError, EXIT_CODES, OciLayout, parseReference, type ErrorCode } from 'canvos-lite';",
        "import { writeSquashfs, type SquashfsOptions } from 'canvos-lite/internal';",
        'const squash: SquashfsOptions | typeof writeSquashfs | undefined = undefined;',
        "const layout = new OciLayout('/tmp/x');",
        "const code: ErrorCode = 'ERR_CONFIG';",
        "const exit: number = EXIT_CODES[new CanvosError(code, 'x').code];",
        'const layer = await buildLayer({ entries: [] }, { dir: layout.blobsDir, sourceDateEpoch: 0 });',
        "console.log(layer.digest, exit, parseReference('docker://quay.io/kairos/ubuntu:24.04'), squash);",
        '',
      ].join('\n'),
    );
    const tsc = join(dir, 'node_modules/typescript/bin/tsc');
    const r = await run(
      process.execPath,
      [tsc, '--strict', '--noEmit', '--module', 'nodenext', '--target', 'es2023', 'use.ts'],
      { cwd: dir, timeoutMs: 240_000 },
    );
    expect(r.stdout + r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('ships source maps that carry their TypeScript sources', async () => {
    const dist = join(consumers.noScripts, 'node_modules/canvos-lite/dist');
    const maps = (await readdir(dist, { recursive: true })).filter(
      (f) => f.endsWith('.js.map') && !f.startsWith('bundle'),
    );
    expect(maps.length).toBeGreaterThan(50);
    for (const f of maps) {
      const map = JSON.parse(await readFile(join(dist, f), 'utf8')) as {
        sources: string[];
        sourcesContent?: (string | null)[];
      };
      expect(map.sourcesContent?.length, f).toBe(map.sources.length);
      expect(
        map.sourcesContent!.every((s) => typeof s === 'string' && s.length > 0),
        f,
      ).toBe(true);
    }
    const errorsMap = JSON.parse(await readFile(join(dist, 'errors.js.map'), 'utf8')) as { sourcesContent: string[] };
    expect(errorsMap.sourcesContent[0]).toBe(await readFile(join(root, 'src/errors.ts'), 'utf8'));
    // A stack trace through the package maps to the TypeScript lines.
    const r = await ok(
      process.execPath,
      [
        '--enable-source-maps',
        '--input-type=module',
        '-e',
        "import { parseReference } from 'canvos-lite'; try { parseReference('docker://'); } catch (e) { console.log(e.stack); }",
      ],
      consumers.noScripts,
    );
    expect(r.stdout).toMatch(/src\/[\w/-]+\.ts:\d+:\d+/);
  });
});
