/**
 * Class 7, one redaction path: a password planted in every place a user can put one (reference userinfo in .arg /
 * canvos.yaml values and copy arguments, signed-URL query values of a k8s download URL, --creds, an auth file) never
 * shows up in stdout, stderr (also under --debug), --json, or a file the command writes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CanvosError, copyImage, openDestination } from '../../src/index.js';
import { layoutSource } from '../../src/internal.js';
import { makeOciLayout } from '../helpers/fixtures.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { tmpDir } from '../helpers/tools.js';
import { expectCleanFailure, runBin } from './harness.js';

const SECRET = 'Pl4ntedSecret';
let reg: TestRegistry;
let tmp: { path: string; cleanup(): Promise<void> };

beforeAll(async () => {
  tmp = await tmpDir('canvos-rel-redact-');
  reg = await startRegistry({ auth: 'basic' });
  await makeOciLayout(join(tmp.path, 'fixture'), { tag: 'v1', layerBytes: 1000 });
}, 60_000);
afterAll(async () => {
  await reg?.stop();
  await tmp?.cleanup();
});

/** Every file under `dir`, read as text, must not contain SECRET. */
async function expectNoSecretIn(dir: string): Promise<void> {
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const p = join(e.parentPath, e.name);
    expect((await readFile(p)).includes(SECRET), p).toBe(false);
  }
}

describe('secrets never printed', () => {
  it('build --dry-run --json masks userinfo, token=, X-Amz-Signature= and sig= of a k8s download URL', async () => {
    const dir = join(tmp.path, 'dry');
    await mkdir(dir, { recursive: true });
    await writeFile(
      join(dir, 'canvos.yaml'),
      [
        'OS_DISTRIBUTION: ubuntu',
        'OS_VERSION: "22.04"',
        'K8S_DISTRIBUTION: k3s',
        'K8S_VERSION: 1.30.4',
        'PE_VERSION: v4.9.38',
        `IMAGE_REGISTRY: ${reg.host}/edge`,
        `BASE_IMAGE: ${reg.host}/base:v1`,
        'k8s:',
        `  "1.30.4": { url: "https://bob:${SECRET}@dl.example.com/k3s?token=${SECRET}&X-Amz-Signature=${SECRET}&sig=${SECRET}", sha256: "${'0'.repeat(64)}" }`,
        '',
      ].join('\n'),
    );
    const r = await runBin(
      ['--debug', 'build', '--dry-run', '--json', '--timeout', '2', '--insecure-registry', reg.host],
      { cwd: dir },
    );
    expect(r.stdout).toContain('token=REDACTED');
    expect(r.stdout + r.stderr).not.toContain(SECRET);
    await expectNoSecretIn(r.tmp);
  });

  it('a password in IMAGE_REGISTRY / BASE_IMAGE is never echoed', async () => {
    const dir = join(tmp.path, 'arg');
    await mkdir(dir, { recursive: true });
    await writeFile(
      join(dir, '.arg'),
      `OS_DISTRIBUTION=ubuntu\nK8S_VERSION=1.30.4\nPE_VERSION=v4.9.38\nIMAGE_REGISTRY=bob:${SECRET}@${reg.host}/edge\nBASE_IMAGE=bob:${SECRET}@${reg.host}/base:v1\n`,
    );
    const r = await runBin(['--debug', 'build', '--dry-run'], { cwd: dir });
    await expectCleanFailure(r, { code: 3, withinMs: 10_000, secrets: [SECRET], debug: true });
  });

  it.each([
    [
      'a copy destination with userinfo',
      (d: string) => ['copy', `oci:${join(tmp.path, 'fixture')}:v1`, `docker://bob:${SECRET}@${reg.host}/x:${d}`],
    ],
    [
      'a wrong --dest-creds password (also under --debug)',
      (d: string) => [
        '--debug',
        'copy',
        '--dest-insecure',
        '--dest-creds',
        `bob:${SECRET}`,
        `oci:${join(tmp.path, 'fixture')}:v1`,
        `docker://${reg.host}/x:${d}`,
      ],
    ],
  ])('%s', async (_label, args) => {
    const argv = args('v1');
    const r = await runBin(argv);
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBe(1);
    await expectCleanFailure(r, {
      code: r.code!,
      withinMs: 15_000,
      secrets: [SECRET],
      debug: argv.includes('--debug'),
    });
  });

  it('an auth file password is not echoed when the registry refuses it', async () => {
    const auth = join(tmp.path, 'auth.json');
    await writeFile(
      auth,
      JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`bob:${SECRET}`).toString('base64') } } }),
    );
    const r = await runBin([
      '--debug',
      'copy',
      '--authfile',
      auth,
      '--dest-insecure',
      `oci:${join(tmp.path, 'fixture')}:v1`,
      `docker://${reg.host}/y:v1`,
    ]);
    await expectCleanFailure(r, {
      code: 8,
      withinMs: 15_000,
      secrets: [SECRET, Buffer.from(`bob:${SECRET}`).toString('base64')],
      debug: true,
    });
  });
});

describe('library errors are redacted at construction', () => {
  it.each([
    ['docker://bob:SECRET@HOST/x:v1'],
    ['bob:SECRET@HOST/x:v1'],
    ['docker://bob:SECRET@HOST/X Y'],
    ['docker://HOST/x:v1?token=SECRET'],
  ])('a copy to %s: message, hint and details carry no password', async (dest) => {
    const spec = dest.replace('SECRET', SECRET).replace('HOST', reg.host);
    const e: unknown = await (async () => {
      const dst = openDestination(spec);
      await copyImage(layoutSource(join(tmp.path, 'fixture'), { tag: 'v1' }), dst);
    })().then(
      () => null,
      (err: unknown) => err,
    );
    expect(CanvosError.is(e), String(e)).toBe(true);
    const ce = e as CanvosError;
    const shown = `${ce.message}\n${ce.hint ?? ''}\n${JSON.stringify(ce.details ?? {})}`;
    expect(shown.includes(SECRET), shown).toBe(false);
  });

  it('a CanvosError built by hand from a URL is redacted too', () => {
    const e = new CanvosError('ERR_NETWORK', `GET https://bob:${SECRET}@h.example/v2/?X-Amz-Signature=${SECRET}`, {
      hint: `retry bob:${SECRET}@h.example:5000/x`,
    });
    expect(e.message).toBe('GET https://h.example/v2/?X-Amz-Signature=REDACTED');
    expect(e.hint).toBe('retry h.example:5000/x');
  });
});
