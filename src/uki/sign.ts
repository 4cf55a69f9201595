/**
 * Authenticode signing of EFI binaries (the UKI, systemd-boot) with the db key, through sbsign from sbsigntool,
 * which ukify and enki use as well. Verification (sbverify) is for tests and `--verify`.
 */
import { spawn } from 'node:child_process';
import { CanvosError } from '../errors.js';

/** Options of {@link signEfi}. */
export interface SignEfiOptions {
  /** PEM private key (secure-boot/private-keys/db.key). */
  key: string;
  /** PEM certificate (secure-boot/public-keys/db.pem). */
  cert: string;
  signal?: AbortSignal;
}

function runTool(cmd: string, args: string[], signal?: AbortSignal): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(signal ? { signal } : {}) });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out = (out + b.toString()).slice(-4000)));
    child.stderr.on('data', (b: Buffer) => (out = (out + b.toString()).slice(-4000)));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

/** Signs `input` into `output` (sbsign --key --cert --output). */
export async function signEfi(input: string, output: string, opts: SignEfiOptions): Promise<void> {
  const r = await runTool('sbsign', ['--key', opts.key, '--cert', opts.cert, '--output', output, input], opts.signal).catch((e: unknown) => {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new CanvosError('ERR_CONFIG', 'sbsign not found; it signs EFI binaries for Secure Boot', { cause: e, hint: 'install sbsigntool (Debian/Ubuntu: apt-get install sbsigntool)' });
    }
    throw e;
  });
  if (r.code !== 0) {
    const last = r.out.trim().split('\n').pop() ?? '';
    throw new CanvosError('ERR_CONFIG', `sbsign failed on ${input}: ${last}`, { hint: `check that ${opts.key} and ${opts.cert} are the db key pair`, details: { output: r.out } });
  }
}
