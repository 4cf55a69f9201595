/**
 * Runs xorriso as a child process: a missing binary becomes ERR_XORRISO_MISSING (with the apt hint), a non-zero
 * exit an XorrisoError carrying the stderr tail, an abort kills the child. Progress comes from xorriso's
 * `UPDATE : … % done` lines on stderr.
 */
import { spawn } from 'node:child_process';
import { CanvosError, XorrisoError, abortError } from '../errors.js';

/** Progress of {@link runXorriso}, in percent of the ISO written. */
export interface XorrisoProgress {
  phase: 'xorriso';
  percent: number;
}

/** Options of {@link runXorriso}. */
export interface RunXorrisoOptions {
  /** Program to run. Default: env CANVOS_XORRISO, else 'xorriso' looked up on PATH. */
  xorriso?: string | undefined;
  /** Environment of the child. Default: process.env. */
  env?: NodeJS.ProcessEnv | undefined;
  signal?: AbortSignal | undefined;
  onProgress?: ((p: XorrisoProgress) => void) | undefined;
}

const TAIL = 16 * 1024;

/** Runs `xorriso args…`; resolves when it exits 0. */
export function runXorriso(args: readonly string[], opts: RunXorrisoOptions = {}): Promise<void> {
  const env = opts.env ?? process.env;
  const bin = opts.xorriso ?? env.CANVOS_XORRISO ?? 'xorriso';
  const { signal } = opts;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    const child = spawn(bin, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let tail = '';
    let pending = '';
    const onAbort = (): void => {
      child.kill('SIGTERM');
      // xorriso normally stops at SIGTERM; make sure it does not linger.
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => {
      tail = (tail + s).slice(-TAIL);
      pending += s;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const m = /UPDATE\s*:\s*([\d.]+)% done/.exec(line);
        if (m) opts.onProgress?.({ phase: 'xorriso', percent: Number(m[1]) });
      }
    });
    child.on('error', (e: NodeJS.ErrnoException) => {
      signal?.removeEventListener('abort', onAbort);
      if (e.code === 'ENOENT') {
        reject(
          new CanvosError('ERR_XORRISO_MISSING', `xorriso not found (${bin})`, {
            cause: e,
            hint: 'install it (Debian/Ubuntu: apt-get install xorriso; Fedora: dnf install xorriso) or set CANVOS_XORRISO',
          }),
        );
      } else reject(new CanvosError('ERR_XORRISO_EXIT', `cannot run ${bin}: ${e.message}`, { cause: e }));
    });
    child.on('close', (code, sig) => {
      signal?.removeEventListener('abort', onAbort);
      if (signal?.aborted) {
        reject(abortError(signal));
        return;
      }
      if (code === 0) {
        resolve();
        return;
      }
      reject(new XorrisoError(code, sig, [bin, ...args], tail));
    });
  });
}
