/**
 * `.pcrsig` against systemd's own tool: for a UKI built on Debian's systemd 252 stub, the section objcopy dumps is
 * byte-identical to what `systemd-measure sign` prints for the same section files and key (systemd 252 computes the
 * policy on a TPM: swtpm stands in). Independently of swtpm, the PCR 11 values match `systemd-measure calculate`,
 * each `pol` is the hand-computed TPM2 PolicyPCR digest of them and each `sig` verifies with node:crypto.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { genkey, publicPemOf } from '../../src/uki/genkey.js';
import { DEFAULT_PHASES, measuredSections, stubVersion } from '../../src/uki/pcrsig.js';
import { buildUki, DEFAULT_STUB } from '../../src/uki/uki.js';
import { run, tmpDir } from '../helpers/tools.js';

const MEASURE = '/usr/lib/systemd/systemd-measure';
const ready = existsSync(DEFAULT_STUB) && existsSync(MEASURE);
const swtpm = existsSync('/usr/bin/swtpm') && existsSync('/usr/lib/x86_64-linux-gnu/libtss2-tcti-swtpm.so.0');
let tmp: { path: string; cleanup(): Promise<void> };
let tpm: ChildProcess | undefined;
let tpmPort = 0;
let uki = '';
let key = '';
const sections = ['.linux', '.osrel', '.cmdline', '.initrd', '.pcrpkey', '.pcrsig', '.sdmagic'];
const sec = (name: string): string => join(tmp.path, `sec${name}`);

async function ok(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const freePort = (): Promise<number> =>
  new Promise((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => {
        res(port);
      });
    });
  });

beforeAll(async () => {
  tmp = await tmpDir('canvos-pcrsig-');
  const sb = join(tmp.path, 'secure-boot');
  await genkey({ dir: sb, skipMicrosoft: true });
  key = join(sb, 'private-keys', 'tpm2-pcr-private.pem');
  await writeFile(join(tmp.path, 'kernel'), createHash('sha512').update('kernel').digest().toString('hex').repeat(300));
  await writeFile(join(tmp.path, 'initrd'), Buffer.alloc(70_001, 7));
  uki = join(tmp.path, 'uki.efi');
  await buildUki(uki, {
    kernel: join(tmp.path, 'kernel'),
    initrds: [join(tmp.path, 'initrd')],
    cmdline: 'console=ttyS0 rd.immucore.uki',
    osRelease: 'NAME="Kairos"\nID=kairos\n',
    uname: '6.8.0-test',
    pcrPublicKey: await publicPemOf(key),
    pcrPrivateKey: key,
  });
  for (const s of sections) await ok('objcopy', ['--dump-section', `${s}=${sec(s)}`, uki, join(tmp.path, 'x.efi')]);
  if (swtpm) {
    tpmPort = await freePort();
    const ctrl = tpmPort + 1; // the swtpm TCTI's control port
    tpm = spawn(
      'swtpm',
      [
        'socket',
        '--tpm2',
        '--tpmstate',
        `dir=${tmp.path}`,
        '--server',
        `type=tcp,port=${tpmPort},bindaddr=127.0.0.1`,
        '--ctrl',
        `type=tcp,port=${ctrl},bindaddr=127.0.0.1`,
        '--flags',
        'not-need-init,startup-clear',
      ],
      { stdio: 'ignore' },
    );
    await new Promise((r) => setTimeout(r, 500));
  }
}, 120_000);

afterAll(async () => {
  if (tpm?.pid) process.kill(tpm.pid);
  await tmp.cleanup();
});

const measureArgs = (): string[] => [
  `--linux=${sec('.linux')}`,
  `--osrel=${sec('.osrel')}`,
  `--cmdline=${sec('.cmdline')}`,
  `--initrd=${sec('.initrd')}`,
  `--pcrpkey=${sec('.pcrpkey')}`,
  '--bank=sha256',
  '--json=short',
];

describe.skipIf(!ready)('.pcrsig', () => {
  it('the stub is systemd 252: .uname and .sbat are not measured by it', async () => {
    expect(stubVersion(await readFile(sec('.sdmagic')))).toBe(252);
    expect(measuredSections(252)).toEqual(['.linux', '.osrel', '.cmdline', '.initrd', '.splash', '.dtb', '.pcrpkey']);
    expect(measuredSections(255)).toContain('.uname');
  });

  it("PCR 11 per phase is systemd-measure calculate's; pol is TPM2 PolicyPCR of it; sig verifies (node:crypto)", async () => {
    const calc = JSON.parse(await ok(MEASURE, ['calculate', ...measureArgs()])) as {
      sha256: { phase: string; pcr: number; hash: string }[];
    };
    expect(calc.sha256.map((e) => e.phase)).toEqual(DEFAULT_PHASES);
    const ours = JSON.parse(await readFile(sec('.pcrsig'), 'utf8')) as {
      sha256: { pcrs: number[]; pkfp: string; pol: string; sig: string }[];
    };
    const pub = createPublicKey(await readFile(key));
    const sha = (...b: Buffer[]): Buffer => b.reduce((h, x) => h.update(x), createHash('sha256')).digest();
    expect(ours.sha256).toHaveLength(calc.sha256.length);
    for (const [i, e] of ours.sha256.entries()) {
      const pcr = Buffer.from(calc.sha256[i]?.hash ?? '', 'hex');
      // TPM 2.0 Part 3 §23.7 by hand: H(0^32 || TPM_CC_PolicyPCR || {1, sha256, 3, bit 11} || H(PCR 11))
      const pol = sha(
        Buffer.alloc(32),
        Buffer.from('0000017f', 'hex'),
        Buffer.from('00000001000b03000800', 'hex'),
        sha(pcr),
      );
      expect(e.pcrs).toEqual([11]);
      expect(e.pol).toBe(pol.toString('hex'));
      expect(verify('sha256', pol, pub, Buffer.from(e.sig, 'base64'))).toBe(true);
      expect(e.pkfp).toBe(sha(pub.export({ type: 'pkcs1', format: 'der' })).toString('hex'));
    }
  });

  it.skipIf(!swtpm)('equals systemd-measure sign output byte for byte (swtpm as its TPM)', async () => {
    const r = await run(MEASURE, [
      'sign',
      `--tpm2-device=swtpm:host=127.0.0.1,port=${tpmPort}`,
      ...measureArgs(),
      `--private-key=${key}`,
      `--public-key=${sec('.pcrpkey')}`,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(await readFile(sec('.pcrsig'), 'utf8')).toBe(r.stdout);
  });
});
