/**
 * Authenticode signing of EFI binaries (the UKI, systemd-boot) with the db key: by default with the TypeScript
 * signer (authenticode.ts: no signing time, so signatures are reproducible), or through sbsign from sbsigntool as
 * ukify and enki do.
 */
import { spawn } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { copyFile, readFile } from 'node:fs/promises';
import { CanvosError } from '../errors.js';
import { authenticodeSign, prepareForSigning } from './authenticode.js';
import { certDer } from './x509.js';

/** Options of {@link signEfi}. */
export interface SignEfiOptions {
  /** PEM private key (secure-boot/private-keys/db.key). */
  key: string;
  /** PEM certificate (secure-boot/public-keys/db.pem). */
  cert: string;
  /** 'builtin' (TypeScript) or 'sbsign'. Default: 'builtin'. */
  signer?: 'builtin' | 'sbsign';
  signal?: AbortSignal;
}

function runTool(cmd: string, args: string[], signal?: AbortSignal): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(signal ? { signal } : {}) });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out = (out + b.toString()).slice(-4000)));
    child.stderr.on('data', (b: Buffer) => (out = (out + b.toString()).slice(-4000)));
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({ code, out });
    });
  });
}

/** Signs `input` into `output` (an existing signature is replaced). */
export async function signEfi(input: string, output: string, opts: SignEfiOptions): Promise<void> {
  if ((opts.signer ?? 'builtin') === 'builtin') {
    let key;
    let cert;
    try {
      key = createPrivateKey(await readFile(opts.key));
      cert = certDer(await readFile(opts.cert));
    } catch (e) {
      throw new CanvosError(
        'ERR_CONFIG',
        `cannot read the signing key pair ${opts.key} / ${opts.cert} (${(e as Error).message})`,
        { cause: e, hint: 'run canvos-lite uki genkey, or check the secure-boot directory' },
      );
    }
    opts.signal?.throwIfAborted();
    await copyFile(input, output);
    await prepareForSigning(output);
    try {
      await authenticodeSign(output, key, cert);
    } catch (e) {
      throw new CanvosError('ERR_CONFIG', `${input}: cannot sign (${(e as Error).message})`, {
        cause: e,
        hint: 'the input must be a PE32+ EFI binary',
      });
    }
    return;
  }
  const r = await runTool(
    'sbsign',
    ['--key', opts.key, '--cert', opts.cert, '--output', output, input],
    opts.signal,
  ).catch((e: unknown) => {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new CanvosError('ERR_CONFIG', 'sbsign not found; it signs EFI binaries for Secure Boot', {
        cause: e,
        hint: 'install sbsigntool (Debian/Ubuntu: apt-get install sbsigntool)',
      });
    }
    throw e;
  });
  if (r.code !== 0) {
    const last = r.out.trim().split('\n').pop() ?? '';
    throw new CanvosError('ERR_CONFIG', `sbsign failed on ${input}: ${last}`, {
      hint: `check that ${opts.key} and ${opts.cert} are the db key pair`,
      details: { output: r.out },
    });
  }
}
