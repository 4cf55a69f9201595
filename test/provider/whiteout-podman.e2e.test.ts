/**
 * The dangling-whiteout defect as a real runtime sees it: podman's overlay driver (the containers/storage code
 * k3s' containerd shares the behaviour with) lists a whiteout that hides nothing as an entry that cannot be
 * stat'ed (`c?????????`). A provider image built now has none; the same image plus the old layer has one.
 * Runs only where podman can mount overlay layers (its own storage root under the test's temp dir).
 */
import { cp, lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildLayer } from '../../src/layers/build.js';
import { buildProviderImages } from '../../src/provider/build.js';
import { loadBuildConfig } from '../../src/provider/load.js';
import { appendLayerToLayout } from '../helpers/append-layer.js';
import { prepareBootFixture } from '../helpers/boot-fixture.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { run, skopeo, tmpDir } from '../helpers/tools.js';
import { makeProject, pushFixtureImages } from './fixture-images.js';

const TAG = 'k3s-1.30.4-v4.9.38-demo';
let reg: TestRegistry;
let tmp: Awaited<ReturnType<typeof tmpDir>>;
let podmanArgs: string[] = [];
const usable = await run('podman', ['--version']).then(
  (r) => r.code === 0,
  () => false,
);

async function podman(...args: string[]): Promise<string> {
  const r = await run('podman', [...podmanArgs, ...args], { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`podman ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

/** Paths under `root` that readdir lists but lstat cannot stat (what `ls -la` prints as `c?????????`). */
async function unstatable(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const d of await readdir(join(root, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${d.name}` : d.name;
    const st = await lstat(join(root, p)).catch(() => undefined);
    if (!st) out.push(p);
    else if (st.isDirectory()) out.push(...(await unstatable(root, p)));
  }
  return out;
}

/**
 * Append a layer like the one canvos-lite wrote before the fix when the provider image has no directory entries for
 * /usr/local/system: a whiteout of `<dir>/providers` in a directory no lower layer has (here the fixture provider
 * image does have /usr/local/system, so a fresh directory stands in for it).
 */
async function withDanglingWhiteout(layout: string): Promise<void> {
  const layer = await buildLayer(
    { entries: [{ type: 'whiteout', paths: ['usr/local/system-old/providers'] }] },
    { dir: join(layout, 'blobs/sha256'), sourceDateEpoch: 1 },
  );
  await appendLayerToLayout(layout, layer);
}

beforeAll(async () => {
  if (!usable) return;
  reg = await startRegistry();
  tmp = await tmpDir('canvos-whiteout-podman-');
  podmanArgs = ['--root', join(tmp.path, 'storage'), '--runroot', join(tmp.path, 'run'), '--storage-driver', 'overlay'];
  const refs = await pushFixtureImages(reg, join(tmp.path, 'images'));
  const project = join(tmp.path, 'project');
  await makeProject(project, refs.argLines);
  // The bootable fixture base: written by our layer builder (makeOciLayout's layers repeat directory entries, which
  // containers/storage refuses to import).
  const fx = await prepareBootFixture();
  const config = await loadBuildConfig({
    argFile: join(project, '.arg'),
    overrides: { K8S_VERSION: '1.30.4', BASE_IMAGE: `oci:${fx.layoutDir}:${fx.tag}` },
  });
  const good = join(tmp.path, 'good');
  await buildProviderImages(config, {
    versions: ['1.30.4'],
    output: { ociDir: good },
    projectDir: project,
    registry: { insecureRegistries: [reg.host], authFiles: [] },
    cacheDir: join(tmp.path, 'cache'),
    sourceDateEpoch: 1_700_000_000,
  });
  await cp(good, join(tmp.path, 'bad'), { recursive: true });
  await withDanglingWhiteout(join(tmp.path, 'bad'));
}, 300_000);

afterAll(async () => {
  if (podmanArgs.length) {
    await run('podman', [...podmanArgs, 'image', 'unmount', '--all', '--force']).catch(() => undefined);
    await run('podman', [...podmanArgs, 'rmi', '--all', '--force']).catch(() => undefined);
  }
  await reg?.stop();
  await tmp?.cleanup();
});

describe.skipIf(!usable)('whiteouts under podman (overlay driver)', () => {
  it('the provider image lists only entries that exist; the old dangling whiteout shows an unstat-able providers', async () => {
    // skopeo names the images (podman pull would name them after the upper-case temp path).
    const store = `containers-storage:[overlay@${join(tmp.path, 'storage')}+${join(tmp.path, 'run')}]`;
    for (const name of ['good', 'bad'])
      await skopeo([
        'copy',
        '--insecure-policy',
        `oci:${join(tmp.path, name)}:${TAG}`,
        `${store}localhost/canvos/${name}:1`,
      ]);
    const goodRoot = await podman('image', 'mount', 'localhost/canvos/good:1');
    const badRoot = await podman('image', 'mount', 'localhost/canvos/bad:1');
    expect(await unstatable(goodRoot)).toEqual([]);
    // /usr/local/system itself stays, empty, as in CanvOS (COPY of the provider image root, then rm -rf …/providers).
    expect(await readdir(join(goodRoot, 'usr/local/system'))).toEqual([]);
    expect(await unstatable(badRoot)).toEqual(['usr/local/system-old/providers']);
  });
});
