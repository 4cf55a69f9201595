/**
 * `genkey` against the reference tools: openssl reads and verifies our certificates, efitools' sig-list-to-certs
 * reads our signature lists, sign-efi-sig-list writes the same .auth bytes from the same key, list and timestamp,
 * and openssl cms verifies the PKCS#7 inside each .auth over name||guid||attrs||time||data.
 */
import { createPrivateKey } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CanvosError } from '../../src/errors.js';
import { decodeEsl, EFI_CERT_X509, MICROSOFT_OWNER } from '../../src/uki/esl.js';
import { genkey } from '../../src/uki/genkey.js';
import { run, tmpDir } from '../helpers/tools.js';

const EPOCH = 1_780_000_000; // 2026-05-28T20:26:40Z
const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);
const hasEfitools = existsSync('/usr/bin/sign-efi-sig-list');

async function ok(cmd: string, args: string[], cwd?: string): Promise<string> {
  const r = await run(cmd, args, { cwd });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout + r.stderr;
}

let tmp: { path: string; cleanup(): Promise<void> };
let sb: string;
beforeAll(async () => {
  tmp = await tmpDir('canvos-uki-genkey-');
  sb = join(tmp.path, 'secure-boot');
  await genkey({
    dir: sb,
    org: 'ACME Corp',
    expirationDays: 5475,
    skipMicrosoft: true,
    env: { SOURCE_DATE_EPOCH: String(EPOCH) },
  });
});
afterAll(async () => tmp.cleanup());

describe('uki genkey layout', () => {
  it('writes the CanvOS secure-boot tree with private keys 0600', async () => {
    expect((await readdir(join(sb, 'enrollment'))).sort()).toEqual(
      ['KEK.auth', 'KEK.der', 'KEK.esl', 'PK.auth', 'PK.der', 'PK.esl', 'db.auth', 'db.der', 'db.esl'].sort(),
    );
    expect((await readdir(join(sb, 'private-keys'))).sort()).toEqual([
      'KEK.key',
      'PK.key',
      'db.key',
      'tpm2-pcr-private.pem',
    ]);
    expect((await readdir(join(sb, 'public-keys'))).sort()).toEqual(['KEK.pem', 'PK.pem', 'db.pem']);
    for (const f of await readdir(join(sb, 'private-keys')))
      expect((await stat(join(sb, 'private-keys', f))).mode & 0o777).toBe(0o600);
    expect(
      createPrivateKey(await readFile(join(sb, 'private-keys', 'tpm2-pcr-private.pem'))).asymmetricKeyDetails
        ?.modulusLength,
    ).toBe(2048);
  });

  it('certificates: openssl reads them, they are self-signed CAs for MY_ORG valid EXPIRATION_IN_DAYS', async () => {
    for (const k of ['PK', 'KEK', 'db']) {
      const pem = join(sb, 'public-keys', `${k}.pem`);
      const text = await ok('openssl', [
        'x509',
        '-in',
        pem,
        '-noout',
        '-subject',
        '-issuer',
        '-startdate',
        '-enddate',
        '-ext',
        'basicConstraints',
      ]);
      expect(text).toContain('subject=CN = ACME Corp');
      expect(text).toContain('issuer=CN = ACME Corp');
      expect(text).toContain('notBefore=May 28 20:26:40 2026 GMT');
      expect(text).toContain('notAfter=May 24 20:26:40 2041 GMT'); // 5475 days later
      expect(text).toContain('CA:TRUE');
      expect(await ok('openssl', ['verify', '-attime', String(EPOCH + 60), '-CAfile', pem, pem])).toContain('OK');
      // the key in private-keys matches the certificate
      const mod1 = await ok('openssl', ['x509', '-in', pem, '-noout', '-modulus']);
      const mod2 = await ok('openssl', ['rsa', '-in', join(sb, 'private-keys', `${k}.key`), '-noout', '-modulus']);
      expect(mod1).toBe(mod2);
      await ok('openssl', ['x509', '-in', pem, '-outform', 'DER', '-out', join(tmp.path, `${k}.x.der`)]);
      expect(await readFile(join(tmp.path, `${k}.x.der`))).toEqual(await readFile(join(sb, 'enrollment', `${k}.der`)));
    }
  });

  it.skipIf(!hasEfitools)('signature lists: efitools sig-list-to-certs extracts our certificates', async () => {
    for (const k of ['PK', 'KEK', 'db']) {
      await ok('sig-list-to-certs', [join(sb, 'enrollment', `${k}.esl`), join(tmp.path, `sl-${k}`)]);
      expect(await readFile(join(tmp.path, `sl-${k}-0.der`))).toEqual(
        await readFile(join(sb, 'enrollment', `${k}.der`)),
      );
      expect(existsSync(join(tmp.path, `sl-${k}-1.der`))).toBe(false);
    }
  });

  it.skipIf(!hasEfitools)(
    '.auth files are byte-identical to sign-efi-sig-list output (PK signs PK and KEK, KEK signs db)',
    async () => {
      const pairs = { PK: 'PK', KEK: 'PK', db: 'KEK' } as const;
      for (const [v, signer] of Object.entries(pairs)) {
        const out = join(tmp.path, `ref-${v}.auth`);
        await ok('sign-efi-sig-list', [
          '-t',
          '2026-05-28 20:26:40',
          '-c',
          join(sb, 'public-keys', `${signer}.pem`),
          '-k',
          join(sb, 'private-keys', `${signer}.key`),
          v,
          join(sb, 'enrollment', `${v}.esl`),
          out,
        ]);
        expect(await readFile(join(sb, 'enrollment', `${v}.auth`))).toEqual(await readFile(out));
      }
    },
  );

  it('openssl cms verifies the PKCS#7 of each .auth over the signed variable bundle', async () => {
    const pairs = { PK: 'PK', KEK: 'PK', db: 'KEK' } as const;
    for (const [v, signer] of Object.entries(pairs)) {
      const auth = await readFile(join(sb, 'enrollment', `${v}.auth`));
      const len = auth.readUInt32LE(16);
      // the .auth carries a bare SignedData; openssl wants it inside a ContentInfo
      const sd = auth.subarray(40, 16 + len);
      const p7 = Buffer.concat([
        Buffer.from('3082', 'hex'),
        u16(sd.length + 15),
        Buffer.from('06092a864886f70d010702a082', 'hex'),
        u16(sd.length),
        sd,
      ]);
      const esl = auth.subarray(16 + len);
      expect(esl).toEqual(await readFile(join(sb, 'enrollment', `${v}.esl`)));
      const guid = v === 'db' ? 'cbb219d73a3d9645a3bcdad00e67656f' : '61dfe48bca93d211aa0d00e098032b8c';
      const bundle = Buffer.concat([
        Buffer.from(v, 'utf16le'),
        Buffer.from(guid, 'hex'),
        Buffer.from([0x27, 0, 0, 0]),
        auth.subarray(0, 16),
        esl,
      ]);
      await writeFile(join(tmp.path, 'p7.der'), p7);
      await writeFile(join(tmp.path, 'bundle'), bundle);
      const args = [
        'cms',
        '-verify',
        '-binary',
        '-inform',
        'DER',
        '-in',
        join(tmp.path, 'p7.der'),
        '-content',
        join(tmp.path, 'bundle'),
        '-purpose',
        'any',
        '-attime',
        String(EPOCH + 60),
        '-out',
        '/dev/null',
      ];
      expect(await ok('openssl', [...args, '-CAfile', join(sb, 'public-keys', `${signer}.pem`)])).toContain(
        'Verification successful',
      );
      bundle.writeUInt8((bundle.at(-1) ?? 0) ^ 1, bundle.length - 1);
      await writeFile(join(tmp.path, 'bundle'), bundle);
      expect((await run('openssl', [...args, '-CAfile', join(sb, 'public-keys', `${signer}.pem`)])).code).not.toBe(0);
    }
  });
});

describe('uki genkey options', () => {
  it('refuses to run without a Microsoft keys decision, and refuses to replace existing keys', async () => {
    const e1 = await genkey({ dir: join(tmp.path, 'x') }).catch((e: unknown) => e);
    expect(CanvosError.is(e1) && e1.exitCode).toBe(3);
    expect((e1 as Error).message).toMatch(/Microsoft/);
    const e2 = await genkey({ dir: sb, skipMicrosoft: true }).catch((e: unknown) => e);
    expect(CanvosError.is(e2) && e2.exitCode).toBe(3);
    expect((e2 as Error).message).toMatch(/PK\.key exists/);
  });

  it('BYOK re-signs with existing keys, adds Microsoft, exported and extra certificates', async () => {
    // "Microsoft" certificates here are stand-ins made by openssl; their owner GUID must be Microsoft's
    const ms = join(tmp.path, 'ms');
    await mkdir(join(ms, 'KEK'), { recursive: true });
    await mkdir(join(ms, 'db'), { recursive: true });
    for (const [sub, n] of [
      ['KEK', 'a'],
      ['db', 'b'],
      ['db', 'c'],
    ] as const) {
      await ok('openssl', [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-subj',
        `/CN=${n}/`,
        '-keyout',
        join(tmp.path, `${n}.key`),
        '-outform',
        'DER',
        '-out',
        join(ms, sub, `${n}.der`),
        '-days',
        '30',
      ]);
    }
    await mkdir(join(sb, 'exported-keys'), { recursive: true });
    // an exported firmware db: reuse the stand-in "c" as an ESL made by efitools when present, else our own list
    const exported = hasEfitools
      ? (await ok('cert-to-efi-sig-list', [
          '-g',
          '11111111-2222-3333-4444-555555555555',
          join(ms, 'db', 'c.der'),
          join(sb, 'exported-keys', 'db'),
        ]),
        await readFile(join(sb, 'exported-keys', 'db')))
      : undefined;
    const before = await readFile(join(sb, 'private-keys', 'db.key'));
    const r = await genkey({
      dir: sb,
      byok: true,
      microsoftKeysDir: ms,
      extraDbCerts: [join(ms, 'KEK', 'a.der')],
      env: { SOURCE_DATE_EPOCH: String(EPOCH + 100) },
    });
    expect(await readFile(join(sb, 'private-keys', 'db.key'))).toEqual(before);
    expect(r.files.every((f) => f.startsWith('enrollment/'))).toBe(true);
    const db = decodeEsl(await readFile(join(sb, 'enrollment', 'db.esl')));
    expect(db.map((s) => s.owner)).toEqual([
      r.owner,
      MICROSOFT_OWNER,
      MICROSOFT_OWNER,
      r.owner,
      ...(exported ? ['11111111-2222-3333-4444-555555555555'] : []),
    ]);
    expect(db.every((s) => s.type === EFI_CERT_X509)).toBe(true);
    expect(db[1]?.data).toEqual(await readFile(join(ms, 'db', 'b.der')));
    expect(decodeEsl(await readFile(join(sb, 'enrollment', 'KEK.esl'))).map((s) => s.owner)).toEqual([
      r.owner,
      MICROSOFT_OWNER,
    ]);
    if (hasEfitools) {
      await ok('sig-list-to-certs', [join(sb, 'enrollment', 'db.esl'), join(tmp.path, 'byok-db')]);
      expect(existsSync(join(tmp.path, 'byok-db-4.der'))).toBe(true);
      await ok('sign-efi-sig-list', [
        '-t',
        '2026-05-28 20:28:20',
        '-c',
        join(sb, 'public-keys', 'KEK.pem'),
        '-k',
        join(sb, 'private-keys', 'KEK.key'),
        'db',
        join(sb, 'enrollment', 'db.esl'),
        join(tmp.path, 'byok-db.auth'),
      ]);
      expect(await readFile(join(sb, 'enrollment', 'db.auth'))).toEqual(await readFile(join(tmp.path, 'byok-db.auth')));
    }
  });

  it('BYOK without the key pairs fails naming the missing file', async () => {
    const e = await genkey({ dir: join(tmp.path, 'empty'), byok: true, skipMicrosoft: true }).catch((x: unknown) => x);
    expect(CanvosError.is(e) && e.exitCode).toBe(3);
    expect((e as Error).message).toMatch(/private-keys\/PK\.key is missing/);
  });
});
