/**
 * certs/ as CanvOS installs it, compared with the real tools: Debian's update-ca-certificates (run against a temp
 * root with its --certsconf/--certsdir/--localcertsdir/--etccertsdir options, openssl rehash included) and
 * `openssl x509 -subject_hash`; p11-kit's picking rules for openSUSE/RHEL anchors.
 */
import { cp, mkdir, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LayerEntrySpec } from '../../src/layers/spec.js';
import { caCertsEntries, debianPemName } from '../../src/provider/ca-certs.js';
import { certificatesOf, subjectHash } from '../../src/provider/x509-name.js';
import { run, tmpDir } from '../helpers/tools.js';

let tmp: Awaited<ReturnType<typeof tmpDir>>;
let certs: string;
const ENV = { ...process.env, LC_ALL: 'C' };

async function sh(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args, { env: ENV });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function makeCert(file: string, subject: string, form: 'PEM' | 'DER' = 'PEM'): Promise<void> {
  const key = `${file}.key`;
  await sh('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    key,
    '-out',
    file,
    '-subj',
    subject,
    '-days',
    '3650',
    '-utf8',
    '-multivalue-rdn',
    '-outform',
    form,
  ]);
}

/** Run Debian's update-ca-certificates against `root` (no hooks). */
async function updateCaCertificates(root: string): Promise<void> {
  await sh('update-ca-certificates', [
    '--certsconf',
    join(root, 'etc/ca-certificates.conf'),
    '--certsdir',
    join(root, 'usr/share/ca-certificates'),
    '--localcertsdir',
    join(root, 'usr/local/share/ca-certificates'),
    '--etccertsdir',
    join(root, 'etc/ssl/certs'),
    '--hooksdir',
    join(root, 'no-hooks'),
  ]);
}

async function links(dir: string, root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const n of await readdir(dir)) {
    const t = await readlink(join(dir, n)).catch(() => undefined);
    if (t !== undefined) out.set(n, t.startsWith(root) ? t.slice(root.length) : t);
  }
  return out;
}

beforeAll(async () => {
  tmp = await tmpDir('canvos-ca-certs-');
  certs = join(tmp.path, 'certs');
  await mkdir(join(certs, 'sub'), { recursive: true });
  await makeCert(join(certs, 'corp-proxy.crt'), '/CN=Corp Proxy CA/O=ACME  Corp/C=US');
  await makeCert(join(certs, 'Corp (Root), CA.crt'), '/CN=  MiXeD   Case  /OU=Unit+O=Org');
  await makeCert(join(certs, 'sub/nested.crt'), '/CN=Ünïcödé CA/O=Straße');
  await makeCert(join(tmp.path, 'b1.pem'), '/CN=Bundle One');
  await makeCert(join(tmp.path, 'b2.pem'), '/CN=Bundle Two');
  await writeFile(
    join(certs, 'two-in-one.crt'),
    Buffer.concat([await readFile(join(tmp.path, 'b1.pem')), await readFile(join(tmp.path, 'b2.pem'))]),
  );
  await makeCert(join(certs, 'binary.crt'), '/CN=DER Cert', 'DER');
  await makeCert(join(certs, 'proxy.pem'), '/CN=Named Pem');
  await writeFile(join(certs, 'README.md'), 'put your CA certificates here\n');
  await writeFile(join(certs, '.keep'), ''); // an empty placeholder: copied, never warned about
  await run('sh', ['-c', `rm -f ${certs}/*.key ${certs}/sub/*.key`]);
}, 60_000);
afterAll(async () => tmp?.cleanup());

describe('certs/ for ubuntu: identical to update-ca-certificates', () => {
  it('OpenSSL subject hashes of odd names (spaces, case, multi-valued RDN, UTF-8) match openssl x509 -subject_hash', async () => {
    for (const f of ['corp-proxy.crt', 'Corp (Root), CA.crt', 'sub/nested.crt']) {
      const der = certificatesOf(await readFile(join(certs, f)))[0]!;
      expect(subjectHash(der), f).toBe(
        (await sh('openssl', ['x509', '-in', join(certs, f), '-noout', '-subject_hash'])).trim(),
      );
    }
  });

  it('the same bundle bytes, .pem links and <hash>.N links; the files the tool skips are warned about', async () => {
    const root = join(tmp.path, 'root');
    await mkdir(join(root, 'usr/share/ca-certificates/mozilla'), { recursive: true });
    await mkdir(join(root, 'usr/local/share/ca-certificates'), { recursive: true });
    await mkdir(join(root, 'etc/ssl/certs'), { recursive: true });
    await makeCert(join(root, 'usr/share/ca-certificates/mozilla/Base_Root_CA.crt'), '/CN=Base Root CA');
    await writeFile(join(root, 'etc/ca-certificates.conf'), 'mozilla/Base_Root_CA.crt\n');
    await updateCaCertificates(root); // the base image's state
    const baseBundle = await readFile(join(root, 'etc/ssl/certs/ca-certificates.crt'));
    const baseNames = await readdir(join(root, 'etc/ssl/certs'));
    const baseLinks = await links(join(root, 'etc/ssl/certs'), root);

    await cp(`${certs}/.`, join(root, 'usr/local/share/ca-certificates'), { recursive: true }); // cp -a /certs/. anchors/
    await updateCaCertificates(root);
    const wantBundle = await readFile(join(root, 'etc/ssl/certs/ca-certificates.crt'));
    const wantLinks = await links(join(root, 'etc/ssl/certs'), root);

    const warnings: string[] = [];
    const scan = {
      files: new Map([['etc/ssl/certs/ca-certificates.crt', { content: baseBundle, mode: 0o644, uid: 0, gid: 0 }]]),
      children: new Map([['etc/ssl/certs', baseNames]]),
    };
    const entries = await caCertsEntries(certs, 'ubuntu', scan, (code, m) => warnings.push(`${code} ${m}`));
    const bundle = entries.find(
      (e): e is Extract<LayerEntrySpec, { type: 'file' }> =>
        e.type === 'file' && e.path === '/etc/ssl/certs/ca-certificates.crt',
    );
    expect(Buffer.from((bundle?.source as { inline: Buffer }).inline)).toEqual(wantBundle);
    const got = new Map(baseLinks);
    for (const e of entries) if (e.type === 'symlink') got.set(e.path.slice('/etc/ssl/certs/'.length), e.target);
    expect(Object.fromEntries([...got].sort())).toEqual(Object.fromEntries([...wantLinks].sort()));
    expect(got.get(debianPemName('Corp (Root), CA.crt'))).toBe('/usr/local/share/ca-certificates/Corp (Root), CA.crt');
    expect(entries[0]).toEqual({ type: 'tree', path: '/usr/local/share/ca-certificates', host: certs });
    expect(warnings.map((w) => w.split(' ')[0])).toEqual(['W_CERT_IGNORED', 'W_CERT_IGNORED', 'W_CERT_NOT_PEM']);
    expect(warnings[0]).toContain(
      'README.md is copied to /usr/local/share/ca-certificates but not trusted: update-ca-certificates only reads *.crt files',
    );
    expect(warnings[2]).toContain('binary.crt is not PEM');
  });
});

describe('certs/ for opensuse-leap and rhel: what p11-kit picks from the anchors directory', () => {
  it('every top-level file holding PEM or DER certificates, any name; sub-directories and other files warned', async () => {
    const names = (await readdir(certs)).sort();
    for (const [distro, bundlePath] of [
      ['opensuse-leap', '/var/lib/ca-certificates/ca-bundle.pem'],
      ['rhel', '/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem'],
    ] as const) {
      const warnings: string[] = [];
      const base = Buffer.from('# Base\n-----BEGIN CERTIFICATE-----\nBASE\n-----END CERTIFICATE-----\n');
      const scan = {
        files: new Map([[bundlePath.slice(1), { content: base, mode: 0o444, uid: 0, gid: 0 }]]),
        children: new Map(),
      };
      // RHEL extracts email/objsign bundles too: updated when the base has them, never invented.
      if (distro === 'rhel')
        scan.files.set('etc/pki/ca-trust/extracted/pem/email-ca-bundle.pem', {
          content: base,
          mode: 0o444,
          uid: 0,
          gid: 0,
        });
      const entries = await caCertsEntries(certs, distro, scan, (code, m) => warnings.push(`${code} ${m}`));
      const bundle = entries.find(
        (e): e is Extract<LayerEntrySpec, { type: 'file' }> => e.type === 'file' && e.path === bundlePath,
      )!;
      expect(bundle.mode).toBe(0o444);
      const text = Buffer.from((bundle.source as { inline: Buffer }).inline).toString('utf8');
      expect(text.startsWith(base.toString())).toBe(true);
      // Labels in byte order of the file names: Corp (Root), CA.crt, binary.crt (DER), corp-proxy.crt, proxy.pem, two certs of two-in-one.crt.
      expect([...text.matchAll(/^# (.*)$/gm)].map((m) => m[1])).toEqual([
        'Base',
        '  MiXeD   Case  ',
        'DER Cert',
        'Corp Proxy CA',
        'Named Pem',
        'Bundle One',
        'Bundle Two',
      ]);
      const der = certificatesOf(await readFile(join(certs, 'binary.crt')))[0]!;
      expect(text).toContain(der.toString('base64').slice(0, 64));
      expect(warnings).toEqual([
        expect.stringMatching(
          /^W_CERT_IGNORED .*\/certs\/sub\/ is copied to .* but p11-kit reads only the files directly in the anchors directory$/,
        ),
        expect.stringMatching(/^W_CERT_IGNORED .*README\.md .* holds no PEM or DER certificate/),
      ]);
      expect(names).toContain('README.md');
      const bundles = entries.filter((e) => e.type === 'file').map((e) => (e as { path: string }).path);
      expect(bundles).toEqual(
        distro === 'rhel' ? [bundlePath, '/etc/pki/ca-trust/extracted/pem/email-ca-bundle.pem'] : [bundlePath],
      );
    }
  });

  it('sles: CanvOS installs no certificates (its Dockerfile has no sles branch): nothing added, a warning', async () => {
    const warnings: string[] = [];
    expect(
      await caCertsEntries(certs, 'sles', { files: new Map(), children: new Map() }, (code) => warnings.push(code)),
    ).toEqual([]);
    expect(warnings).toEqual(['W_CERTS_NOT_INSTALLED']);
  });
});
