/**
 * UKI assembly and signing against the reference tools: objdump reads our PE section table, objcopy dumps each
 * section back byte for byte, sbverify accepts the sbsign'ed UKI with our db certificate and refuses it with
 * another certificate or after one flipped byte.
 */
import { existsSync } from 'node:fs';
import { createPrivateKey } from 'node:crypto';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CanvosError } from '../../src/errors.js';
import { authenticodeHash, authenticodeSign } from '../../src/uki/authenticode.js';
import { genkey, publicPemOf } from '../../src/uki/genkey.js';
import { signEfi } from '../../src/uki/sign.js';
import { buildUki, DEFAULT_STUB } from '../../src/uki/uki.js';
import { prepareBootFixture, type BootFixture } from '../helpers/boot-fixture.js';
import { run, tmpDir } from '../helpers/tools.js';

const ready = existsSync(DEFAULT_STUB) && existsSync('/usr/bin/sbsign');
let tmp: { path: string; cleanup(): Promise<void> };
let fx: BootFixture;
let sb: string;
beforeAll(async () => {
  tmp = await tmpDir('canvos-uki-');
  sb = join(tmp.path, 'secure-boot');
  await genkey({ dir: sb, skipMicrosoft: true });
  fx = await prepareBootFixture();
}, 600_000);
afterAll(async () => tmp.cleanup());

describe.skipIf(!ready)('UKI', () => {
  const osrel = 'NAME="Kairos"\nID=kairos\nVERSION_ID="v0.0.0-test"\n';
  const cmdline = 'console=ttyS0 root=live:CDLABEL=UKI_ISO_INSTALL rd.neednet=0';
  let unsigned: string;
  let signed: string;

  it('assembles the stub with .osrel .cmdline .uname .pcrpkey .initrd .linux that objcopy reads back', async () => {
    unsigned = join(tmp.path, 'uki.unsigned.efi');
    const pcr = await publicPemOf(join(sb, 'private-keys', 'tpm2-pcr-private.pem'));
    await buildUki(unsigned, {
      kernel: fx.kernel,
      initrds: [fx.initrd, fx.initrd],
      cmdline,
      osRelease: osrel,
      uname: fx.kver,
      pcrPublicKey: pcr,
    });
    const h = await run('objdump', ['-h', unsigned]);
    expect(h.code, h.stderr).toBe(0);
    const names = [...h.stdout.matchAll(/^\s+\d+\s+(\S+)/gm)].map((m) => m[1]);
    expect(names.slice(-6)).toEqual(['.osrel', '.cmdline', '.uname', '.pcrpkey', '.initrd', '.linux']);
    expect(names).toContain('.sdmagic');
    const want: Record<string, Buffer> = {
      '.osrel': Buffer.from(osrel),
      '.cmdline': Buffer.from(cmdline),
      '.uname': Buffer.from(fx.kver),
      '.pcrpkey': Buffer.from(pcr),
      '.initrd': Buffer.concat([await readFile(fx.initrd), await readFile(fx.initrd)]),
      '.linux': await readFile(fx.kernel),
    };
    for (const [name, data] of Object.entries(want)) {
      const out = join(tmp.path, `dump${name}`);
      const r = await run('objcopy', ['--dump-section', `${name}=${out}`, unsigned, join(tmp.path, 'scratch.efi')]);
      expect(r.code, r.stderr).toBe(0);
      // objcopy dumps the raw (file-aligned) size; the section's own bytes come first, zero padding after
      const got = await readFile(out);
      expect(got.subarray(0, data.length).equals(data), name).toBe(true);
      expect(
        got.subarray(data.length).every((b) => b === 0),
        name,
      ).toBe(true);
    }
  });

  it('sbsign with the db key: sbverify accepts it with db.pem, refuses another certificate and a flipped byte', async () => {
    signed = join(tmp.path, 'uki.efi');
    await signEfi(unsigned, signed, {
      key: join(sb, 'private-keys', 'db.key'),
      cert: join(sb, 'public-keys', 'db.pem'),
      signer: 'sbsign',
    });
    const ok = await run('sbverify', ['--cert', join(sb, 'public-keys', 'db.pem'), signed]);
    expect(ok.code, ok.stderr + ok.stdout).toBe(0);
    expect(ok.stdout + ok.stderr).toContain('Signature verification OK');
    const other = await run('sbverify', ['--cert', join(sb, 'public-keys', 'KEK.pem'), signed]);
    expect(other.code).not.toBe(0);
    const bytes = await readFile(signed);
    bytes.writeUInt8((bytes[0x5000] as number) ^ 0xff, 0x5000);
    await writeFile(join(tmp.path, 'flipped.efi'), bytes);
    const flipped = await run('sbverify', ['--cert', join(sb, 'public-keys', 'db.pem'), join(tmp.path, 'flipped.efi')]);
    expect(flipped.code).not.toBe(0);
  });

  it('the TypeScript Authenticode signer: sbverify accepts with db.pem, refuses another certificate and a flipped byte', async () => {
    const ts = join(tmp.path, 'uki.ts-signed.efi');
    await copyFile(unsigned, ts);
    await authenticodeSign(
      ts,
      createPrivateKey(await readFile(join(sb, 'private-keys', 'db.key'))),
      await readFile(join(sb, 'enrollment', 'db.der')),
    );
    const ok = await run('sbverify', ['--cert', join(sb, 'public-keys', 'db.pem'), ts]);
    expect(ok.code, ok.stderr + ok.stdout).toBe(0);
    expect(ok.stdout + ok.stderr).toContain('Signature verification OK');
    // our image hash is the one sbsign put into its signature (sbsign adds signingTime, so no byte identity)
    const { hash } = await authenticodeHash(unsigned);
    expect((await readFile(signed)).includes(Buffer.concat([Buffer.from([0x04, 0x20]), hash]))).toBe(true);
    expect((await run('sbverify', ['--cert', join(sb, 'public-keys', 'KEK.pem'), ts])).code).not.toBe(0);
    const bytes = await readFile(ts);
    bytes.writeUInt8((bytes[0x5000] as number) ^ 0xff, 0x5000);
    await writeFile(join(tmp.path, 'ts-flipped.efi'), bytes);
    expect(
      (await run('sbverify', ['--cert', join(sb, 'public-keys', 'db.pem'), join(tmp.path, 'ts-flipped.efi')])).code,
    ).not.toBe(0);
    await expect(
      authenticodeSign(ts, createPrivateKey(await readFile(join(sb, 'private-keys', 'db.key'))), Buffer.alloc(0)),
    ).rejects.toThrow(/already signed/);
  });

  it('a missing stub or kernel is a one-line configuration error', async () => {
    const e = await buildUki(join(tmp.path, 'x.efi'), {
      kernel: fx.kernel,
      initrds: [],
      cmdline: '',
      osRelease: '',
      stub: join(tmp.path, 'nope.stub'),
    }).catch((x: unknown) => x);
    expect(CanvosError.is(e) && e.exitCode).toBe(3);
    expect((e as Error).message).toContain('nope.stub');
    const k = await buildUki(join(tmp.path, 'x.efi'), {
      kernel: join(tmp.path, 'vmlinuz'),
      initrds: [],
      cmdline: '',
      osRelease: '',
    }).catch((x: unknown) => x);
    expect(CanvosError.is(k) && k.exitCode).toBe(3);
    expect((k as Error).message).toMatch(/vmlinuz: cannot read/);
  });
});
