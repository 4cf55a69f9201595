/**
 * Authenticode signing of EFI binaries (the UKI, systemd-boot) with the db key: by default with the TypeScript
 * signer (authenticode.ts: no signing time, so signatures are reproducible), or through sbsign from sbsigntool as
 * ukify and enki do.
 */
import { createPrivateKey } from 'node:crypto';
import { copyFile, readFile } from 'node:fs/promises';
import { CanvosError } from '../errors.js';
import { authenticodeSign, prepareForSigning } from './authenticode.js';
import { certDer } from './x509.js';
import { throwIfAborted } from '../util/abort.js';
import { runTool } from '../util/run-tool.js';

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
    throwIfAborted(opts.signal);
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
  await runTool('sbsign', ['--key', opts.key, '--cert', opts.cert, '--output', output, input], {
    code: 'ERR_CONFIG',
    missingHint:
      'install sbsigntool (Debian/Ubuntu: apt-get install sbsigntool); it signs EFI binaries for Secure Boot',
    signal: opts.signal,
    watch: [output],
    exitError: (r) =>
      new CanvosError('ERR_CONFIG', `sbsign failed on ${input}: ${r.stderrTail.trim().split('\n').pop() ?? ''}`, {
        hint: `check that ${opts.key} and ${opts.cert} are the db key pair`,
        details: { output: r.stderrTail },
      }),
  });
}
