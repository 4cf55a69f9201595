import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, cp, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { sha256 } from '../../src/image/digest.js';
import { RegistryRepository } from '../../src/registry/index.js';
import { loadRegistryCerts } from '../../src/registry/certs-d.js';
import { makeOciLayout } from '../helpers/fixtures.js';
import { pushLayout } from '../helpers/push-layout.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { run, skopeo, tmpDir } from '../helpers/tools.js';
import { asUnprivileged, unprivilegedTempDir } from '../helpers/unprivileged.js';

// A real docker-registry 2.8 that demands client certificates (http.tls.clientcas): a throw-away CA signs its
// server certificate (IP 127.0.0.1) and a client certificate. The client presents the pair only when certs.d
// (or --cert-dir) holds it; skopeo, given the same directory, reads back what canvos-lite copied.
const repoRoot = resolve(import.meta.dirname, '..', '..');
let tmp: { path: string; cleanup(): Promise<void> };
let mtls: TestRegistry;
let plain: TestRegistry;
const p = (...s: string[]): string => join(tmp.path, ...s);
/** A containers-certs.d host directory: ca.crt, client.cert, client.key. */
const hostDir = (): string => p('hostdir');

async function ssl(args: string[]): Promise<void> {
  const r = await run('openssl', args, { cwd: tmp.path });
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
}

/** `name`.key + `name`.crt signed by the test CA, with the given extension line. */
async function signed(name: string, cn: string, ext: string): Promise<void> {
  await ssl([
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    `/CN=${cn}`,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
  ]);
  await writeFile(p(`${name}.ext`), `${ext}\n`);
  await ssl([
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
    '-out',
    `${name}.crt`,
  ]);
}

beforeAll(async () => {
  tmp = await tmpDir('canvos-mtls-');
  await ssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=canvos mtls test CA',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
  ]);
  await signed('srv', '127.0.0.1', 'subjectAltName=IP:127.0.0.1');
  await signed('client', 'canvos test client', 'extendedKeyUsage=clientAuth');
  await mkdir(hostDir());
  await cp(p('ca.crt'), join(hostDir(), 'ca.crt'));
  await cp(p('client.crt'), join(hostDir(), 'client.cert'));
  await cp(p('client.key'), join(hostDir(), 'client.key'));
  [mtls, plain] = await Promise.all([
    startRegistry({
      tls: {
        certificate: p('srv.crt'),
        key: p('srv.key'),
        clientCas: [p('ca.crt')],
        probeCert: p('client.crt'),
        probeKey: p('client.key'),
      },
    }),
    startRegistry(),
  ]);
  await makeOciLayout(p('layout'), {
    tag: 'v1',
    platforms: ['linux/amd64', 'linux/arm64'],
    layers: 2,
    layerBytes: 64 * 1024,
  });
  await pushLayout(p('layout'), plain, 'src/app', { tag: 'v1' });
}, 120_000);
afterAll(async () => {
  await Promise.all([mtls?.stop(), plain?.stop()]);
  await tmp?.cleanup();
});

const data = Buffer.from('mtls blob');
const desc = { mediaType: 'application/octet-stream', digest: sha256(data), size: data.length };

/** A certs.d root holding `hostDir()` as `<root>/127.0.0.1:PORT/`, with `edit` applied to that copy. */
async function certsRoot(name: string, edit?: (dir: string) => Promise<void>): Promise<string> {
  const root = p(name);
  await cp(hostDir(), join(root, mtls.host), { recursive: true });
  await edit?.(join(root, mtls.host));
  return root;
}

describe('registry client certificates (containers-certs.d)', () => {
  it('without the client certificate the registry refuses the connection with a clear error', async () => {
    const root = await certsRoot('ca-only', async (d) => {
      await Promise.all(['client.cert', 'client.key'].map((f) => run('rm', [join(d, f)])));
    });
    const repo = new RegistryRepository(mtls.host, 'mtls/a', {
      authFiles: [],
      certsDirs: [root],
      retry: { attempts: 1 },
    });
    const err = await repo.headBlob(desc.digest).then(
      () => undefined,
      (e: unknown) => e,
    );
    await repo.close();
    expect(err).toMatchObject({
      code: 'ERR_NETWORK',
      message: expect.stringMatching(/client certificate/),
      hint: expect.stringMatching(/\.cert.*\.key/),
    });
  });

  it('presents NAME.cert + NAME.key from the first certs.d root holding HOST:PORT/, and the CA from its *.crt', async () => {
    const first = await certsRoot('first');
    const repo = new RegistryRepository(mtls.host, 'mtls/a', {
      authFiles: [],
      certsDirs: [p('no-such-root'), first, p('ca-only')],
    });
    expect(await repo.pushBlob(desc, async () => Readable.from([data]))).toBe('uploaded');
    expect(await repo.headBlob(desc.digest)).toEqual({ size: data.length });
    await repo.close();
    // containers/image uses ONE directory: the first existing one wins even when it lacks the client pair.
    const caOnlyFirst = new RegistryRepository(mtls.host, 'mtls/a', {
      authFiles: [],
      certsDirs: [p('ca-only'), first],
      retry: { attempts: 1 },
    });
    await expect(caOnlyFirst.headBlob(desc.digest)).rejects.toMatchObject({ code: 'ERR_NETWORK' });
    await caOnlyFirst.close();
  });

  it('searches ~/.config/containers/certs.d of HOME by default', async () => {
    const home = p('home');
    await cp(hostDir(), join(home, '.config', 'containers', 'certs.d', mtls.host), { recursive: true });
    const repo = new RegistryRepository(mtls.host, 'mtls/a', { authFiles: [], env: { HOME: home } });
    expect(await repo.headBlob(desc.digest)).toEqual({ size: data.length });
    await repo.close();
  });

  it("finds Docker Hub's certificates under registry-1.docker.io/, as containers/image and Docker name it", async () => {
    const root = p('hub-certs');
    await cp(hostDir(), join(root, 'registry-1.docker.io'), { recursive: true });
    const c = await loadRegistryCerts({ certsDirs: [p('no-such-root'), root] }, 'index.docker.io');
    expect(c.cas).toHaveLength(1);
    expect(c.client?.certFile).toBe(join(root, 'registry-1.docker.io', 'client.cert'));
    expect(c.dirs).toEqual([join(root, 'registry-1.docker.io')]);
  });

  it('refuses a half pair, a key of another certificate, an invalid or unreadable file: ERR_CONFIG naming the file, no key bytes', async () => {
    const keyPem = await readFile(p('client.key'), 'utf8');
    const cases: Array<[string, (d: string) => Promise<void>, RegExp]> = [
      [
        'no-key',
        (d) => run('rm', [join(d, 'client.key')]).then(() => {}),
        /client\.cert: client certificate without its key client\.key/,
      ],
      [
        'no-cert',
        (d) => run('mv', [join(d, 'client.cert'), join(d, 'client.crt.bak')]).then(() => {}),
        /client\.key: client key without its certificate client\.cert/,
      ],
      [
        'wrong-key',
        (d) => cp(p('srv.key'), join(d, 'client.key')),
        /client\.key: is not the private key of the client certificate .*client\.cert/,
      ],
      [
        'bad-key',
        (d) => writeFile(join(d, 'client.key'), keyPem.replace(/\n[\s\S]*\n(?=-----END)/, '\nAAAAAAAAAAAAAAAA\n')),
        /client\.key: not a valid unencrypted PEM private key/,
      ],
      [
        'bad-ca',
        (d) =>
          writeFile(join(d, 'ca.crt'), '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n'),
        /ca\.crt: not a valid PEM certificate/,
      ],
      ['empty-ca', (d) => writeFile(join(d, 'ca.crt'), 'hello\n'), /ca\.crt: no PEM certificate/],
      ['dangling', (d) => symlink(join(d, 'gone.pem'), join(d, 'extra.crt')), /extra\.crt: cannot read: ENOENT/],
    ];
    for (const [name, edit, msg] of cases) {
      const root = await certsRoot(`bad-${name}`, edit);
      const err = await loadRegistryCerts({ certsDirs: [root] }, mtls.host).then(
        () => undefined,
        (e: unknown) => e as Error & { code: string; hint?: string },
      );
      expect(err, name).toMatchObject({ code: 'ERR_CONFIG', message: expect.stringMatching(msg) });
      expect(err!.message).toContain(join(root, mtls.host));
      expect(`${err!.message}${err!.hint}`).not.toMatch(/PRIVATE KEY|MII/);
    }
    // A non-existent --cert-dir is an error too (it was asked for); its HOST:PORT sub-directory is optional.
    await expect(loadRegistryCerts({ certsDir: p('missing') }, mtls.host)).rejects.toMatchObject({
      code: 'ERR_CONFIG',
      message: expect.stringContaining(p('missing')),
    });
  });

  const cli = (args: string[], env: NodeJS.ProcessEnv) =>
    run(process.execPath, [join(repoRoot, 'bin', 'canvos-lite.js'), ...args], {
      env: { PATH: process.env.PATH, ...env },
      timeoutMs: 60_000,
    });

  it('copy --cert-dir (skopeo semantics: the directory itself) pushes to the mTLS registry; skopeo reads it back', async () => {
    const dst = `docker://${mtls.host}/copied/app:v1`;
    const home = p('empty-home');
    await mkdir(home, { recursive: true });
    // The CA alone: TLS verifies the registry, but the registry wants a client certificate.
    await mkdir(p('cadir'));
    await cp(p('ca.crt'), p('cadir', 'ca.crt'));
    const denied = await cli(
      ['copy', '--src-insecure', '--cert-dir', p('cadir'), `docker://${plain.host}/src/app:v1`, dst],
      { HOME: home },
    );
    expect(denied.code).toBe(10);
    expect(denied.stderr).toMatch(/client certificate/);
    expect(denied.stderr).toMatch(/^hint: .*certs\.d/m);
    const ok = await cli(
      ['copy', '--src-insecure', '--cert-dir', hostDir(), `docker://${plain.host}/src/app:v1`, dst],
      { HOME: home },
    );
    expect(
      ok.stderr
        .split('\n')
        .filter((l) => !/^copied /.test(l))
        .join('\n')
        .trim(),
    ).toBe('');
    expect(ok.code).toBe(0);
    const want = sha256(await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${plain.host}/src/app:v1`]));
    expect(sha256(await skopeo(['inspect', '--raw', '--cert-dir', hostDir(), dst]))).toBe(want);
    // A half pair is a configuration error (exit 3) naming the file, before any connection.
    await mkdir(p('halfdir'));
    await cp(p('client.crt'), p('halfdir', 'client.cert'));
    const half = await cli(
      ['copy', '--src-insecure', '--cert-dir', p('halfdir'), `docker://${plain.host}/src/app:v1`, dst],
      { HOME: home },
    );
    expect(half.code).toBe(3);
    expect(half.stderr).toContain(
      `canvos-lite: ${p('halfdir', 'client.cert')}: client certificate without its key client.key\nhint: `,
    );
    await skopeo(['copy', '--src-cert-dir', hostDir(), dst, `oci:${p('readback')}:v1`]);
  });

  it('rootless: an unprivileged user mirrors with the pair from its own ~/.config/containers/certs.d', async () => {
    const home = unprivilegedTempDir('canvos-mtls-home-');
    const dir = join(home, '.config', 'containers', 'certs.d', mtls.host);
    await cp(hostDir(), dir, { recursive: true });
    await run('chown', ['-R', (await run('stat', ['-c', '%u:%g', home])).stdout.trim(), home]);
    await chmod(join(dir, 'client.key'), 0o600);
    const argv = asUnprivileged([
      'env',
      `HOME=${home}`,
      `PATH=${process.env.PATH}`,
      process.execPath,
      join(repoRoot, 'bin', 'canvos-lite.js'),
      'mirror',
      'push',
      `${plain.host}/src/app:v1`,
      '--to',
      `${mtls.host}/rootless`,
      '--src-insecure',
      '--json',
    ]);
    const r = await run(argv[0]!, argv.slice(1), { timeoutMs: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const want = sha256(await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${plain.host}/src/app:v1`]));
    expect(
      sha256(
        await skopeo([
          'inspect',
          '--raw',
          '--cert-dir',
          hostDir(),
          `docker://${mtls.host}/rootless/${plain.host.replace(':', '-')}/src/app:v1`,
        ]),
      ),
    ).toBe(want);
    await run('rm', ['-rf', home]);
  });
});
