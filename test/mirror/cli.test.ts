import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { sha256 } from '../../src/image/digest.js';
import { indexTar } from '../../src/tar/tar-index.js';
import { makeOciLayout } from '../helpers/fixtures.js';
import { pushLayout } from '../helpers/push-layout.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { run, skopeo, tmpDir } from '../helpers/tools.js';
import { runCli } from '../helpers/cli.js';

let a: TestRegistry;
let b: TestRegistry;
let tmp: { path: string; cleanup(): Promise<void> };
let multi: Awaited<ReturnType<typeof makeOciLayout>>;
let sig: Awaited<ReturnType<typeof makeOciLayout>>;
let sigTag: string;

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCli(['mirror', ...args], { env: { HOME: tmp.path, PATH: process.env.PATH }, cwd: tmp.path });
}

const raw = async (ref: string): Promise<string> =>
  sha256(await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]));

beforeAll(async () => {
  tmp = await tmpDir('canvos-mirror-cli-');
  [a, b] = await Promise.all([startRegistry(), startRegistry()]);
  multi = await makeOciLayout(join(tmp.path, 'multi'), {
    tag: 'v1',
    platforms: ['linux/amd64', 'linux/arm64'],
    layerBytes: 128 * 1024,
  });
  for (const t of ['1.0.0', '1.1.0', '2.0.0', '1.2.0-rc.1', 'edge'])
    await pushLayout(join(tmp.path, 'multi'), a, 'apps/multi', { tag: t });
  // A cosign-style signature: an artifact tagged sha256-<index hex>.sig in the same repository.
  sig = await makeOciLayout(join(tmp.path, 'sig'), { tag: 'sig', layers: 1, layerBytes: 1024 });
  sigTag = `${multi.indexDigest.replace(':', '-')}.sig`;
  await pushLayout(join(tmp.path, 'sig'), a, 'apps/multi', { tag: sigTag });
});
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await tmp?.cleanup();
});

describe('canvos-lite mirror CLI', () => {
  it('push --config: semver tag filter, cosign signature tag carried along, registries.yaml written', async () => {
    const cfg = join(tmp.path, 'mirror.yaml');
    await writeFile(
      cfg,
      `images:\n  - ref: ${a.host}/apps/multi\n    tags: { semver: ">=1.0.0 <2" }\nrewrite: { prefix: edge }\n`,
    );
    const ry = join(tmp.path, 'registries.yaml');
    const r = await cli(
      'push',
      '--config',
      cfg,
      '--to',
      b.host,
      '--src-insecure',
      '--dest-insecure',
      '--registries-yaml',
      ry,
      '--json',
    );
    expect(r.stderr, r.stdout).toBe(''); // on failure, the --json report (with the failures) is the message
    expect(r.code).toBe(0);
    const rep = JSON.parse(r.stdout) as { images: Array<{ source: string; referrer: boolean }> };
    expect(
      rep.images
        .filter((i) => !i.referrer)
        .map((i) => i.source)
        .sort(),
    ).toEqual([`${a.host}/apps/multi:1.0.0`, `${a.host}/apps/multi:1.1.0`]);
    expect(rep.images.filter((i) => i.referrer).map((i) => i.source)).toEqual([`${a.host}/apps/multi:${sigTag}`]);
    const dest = `${b.host}/edge/${a.host.replace(':', '-')}/apps/multi`;
    expect(await raw(`${dest}:1.1.0`)).toBe(multi.indexDigest);
    expect(await raw(`${dest}:${sigTag}`)).toBe(sig.indexDigest);
    const tags = JSON.parse(await skopeo(['list-tags', '--tls-verify=false', `docker://${dest}`])) as {
      Tags: string[];
    };
    expect(tags.Tags.sort()).toEqual(['1.0.0', '1.1.0', sigTag].sort());
    const y = parse(await readFile(ry, 'utf8')) as { mirrors: Record<string, unknown> };
    expect(y.mirrors).toEqual({
      [a.host]: { endpoint: [`http://${b.host}`], rewrite: { '^(.*)$': `edge/${a.host.replace(':', '-')}/$1` } },
    });
  });

  it('plan shows new vs present bytes; after a push nothing is new', async () => {
    const ref = `${a.host}/apps/multi:2.0.0`;
    const before = JSON.parse(
      (await cli('plan', ref, '--to', `${b.host}/p`, '--src-insecure', '--dest-insecure', '--json')).stdout,
    ) as {
      images: Array<{
        digest: string;
        blobs: number;
        newBlobs: number;
        bytes: number;
        newBytes: number;
        platforms: string[];
      }>;
      totals: { newBytes: number; presentBytes: number };
    };
    expect(before.images[0]).toMatchObject({
      digest: multi.indexDigest,
      blobs: 6,
      newBlobs: 6,
      platforms: ['linux/amd64', 'linux/arm64'],
    });
    expect(before.images[0]!.newBytes).toBe(before.images[0]!.bytes);
    expect((await cli('push', ref, '--to', `${b.host}/p`, '--src-insecure', '--dest-insecure')).code).toBe(0);
    const after = await cli('plan', ref, '--to', `${b.host}/p`, '--src-insecure', '--dest-insecure');
    expect(after.code).toBe(0);
    expect(after.stdout).toMatch(/^SOURCE\s+DESTINATION\s+PLATFORMS\s+BLOBS\s+SIZE\s+NEW BLOBS\s+NEW SIZE$/m);
    expect(after.stdout).toMatch(/to move: 0 blobs, 0 B; already present: /);
  });

  it('keep-going: failures listed on stderr and in --failures, exit ERR_MIRROR_PARTIAL (16); no archive from a failed save', async () => {
    const fails = join(tmp.path, 'failures.json');
    const tar = join(tmp.path, 'partial.tar');
    const r = await cli(
      'save',
      `${a.host}/apps/multi:1.0.0`,
      `${a.host}/apps/missing:1`,
      '--to',
      tar,
      '--src-insecure',
      '--failures',
      fails,
    );
    expect(r.code).toBe(16);
    expect(r.stderr).toMatch(new RegExp(`^mirrored ${a.host}/apps/multi:1\\.0\\.0 \\(\\d/\\d\\)$`, 'm'));
    expect(r.stderr).toContain(`failed: ${a.host}/apps/missing:1`);
    const list = JSON.parse(await readFile(fails, 'utf8')) as Array<{ source: string; code: string }>;
    expect(list).toEqual([
      expect.objectContaining({ source: `${a.host}/apps/missing:1`, code: 'ERR_MANIFEST_UNKNOWN' }),
    ]);
    expect(r.stdout).toContain('no archive written');
    expect((await run('test', ['-e', tar])).code).not.toBe(0);
    expect((await run('test', ['-d', `${tar}.layout`])).code).toBe(0);
  });

  it('a corrupted blob inside a split archive is detected on load; the image is not tagged', async () => {
    const tar = join(tmp.path, 'arch', 'set.tar');
    const s = await cli('save', `${a.host}/apps/multi:1.0.0`, '--to', tar, '--src-insecure', '--no-referrers');
    expect(s.code).toBe(0);
    // plan --from an archive: what loading it would move.
    const plan = await cli('plan', '--from', tar, '--to', `${b.host}/bad`, '--dest-insecure', '--json');
    expect(plan.code).toBe(0);
    const pj = JSON.parse(plan.stdout) as {
      images: Array<{ source: string; digest: string; newBlobs: number; destination: string }>;
    };
    expect(pj.images).toEqual([
      expect.objectContaining({
        source: `${a.host}/apps/multi:1.0.0`,
        digest: multi.indexDigest,
        newBlobs: 6,
        destination: `${b.host}/bad/${a.host.replace(':', '-')}/apps/multi:1.0.0`,
      }),
    ]);
    // Corrupt one layer's bytes inside the (single-part) tar.
    const members = await indexTar(tar);
    const victim = members.get(`blobs/sha256/${multi.images[0]!.layerDigests[1]!.slice(7)}`)!;
    const bytes = await readFile(tar);
    bytes[victim.offset + 100] = bytes[victim.offset + 100]! ^ 0x01;
    await writeFile(tar, bytes);
    // Without the blob-location cache: b holds these blobs in other repositories already and would mount them.
    const l = await runCli(['mirror', 'load', '--from', tar, '--to', `${b.host}/bad`, '--dest-insecure', '--json'], {
      env: { HOME: tmp.path, PATH: process.env.PATH, CANVOS_BLOB_LOCATIONS: '0' },
      cwd: tmp.path,
    });
    expect(l.code).toBe(16);
    const rep = JSON.parse(l.stdout) as { failures: Array<{ code: string; message: string }> };
    expect(rep.failures).toEqual([expect.objectContaining({ code: 'ERR_DIGEST_MISMATCH' })]);
    expect(
      (
        await run('skopeo', [
          'inspect',
          '--raw',
          '--tls-verify=false',
          `docker://${b.host}/bad/${a.host.replace(':', '-')}/apps/multi:1.0.0`,
        ])
      ).code,
    ).not.toBe(0);
  });

  it('--flatten takes the optional value last-segment as the next argument; a reference there is a reference', async () => {
    const ref = `${a.host}/apps/multi:2.0.0`;
    const dest = async (...args: string[]): Promise<string[]> => {
      const r = await cli('plan', ...args, '--to', `${b.host}/f`, '--src-insecure', '--dest-insecure', '--json');
      expect(r.code, r.stderr).toBe(0);
      return (JSON.parse(r.stdout) as { images: Array<{ destination: string }> }).images.map((i) => i.destination);
    };
    const host = a.host.replace(':', '-');
    expect(await dest('--flatten', 'last-segment', ref)).toEqual([`${b.host}/f/multi:2.0.0`]);
    expect(await dest(ref, '--flatten-last-segment')).toEqual([`${b.host}/f/multi:2.0.0`]);
    expect(await dest('--flatten', ref)).toEqual([`${b.host}/f/${host}-apps-multi:2.0.0`]);
    expect(await dest(ref)).toEqual([`${b.host}/f/${host}/apps/multi:2.0.0`]);
  });

  it('usage errors', async () => {
    expect((await cli('push', 'alpine')).code).toBe(2);
    expect((await cli('frobnicate')).code).toBe(2);
    expect((await cli('push', 'alpine', '--to', '/tmp/x.tar')).stderr).toContain('use mirror save');
  });
});
