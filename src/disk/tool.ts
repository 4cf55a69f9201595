/**
 * Runs the external tools of the disk builder (mke2fs, debugfs, grub-mkimage, qemu-img): a missing program or a
 * non-zero exit becomes one ERR_DISK line with the stderr tail and an install hint; the AbortSignal kills the child.
 * Bare program names are also looked up in /usr/sbin and /sbin: e2fsprogs installs there, outside an ordinary
 * user's PATH on Debian, yet mke2fs and debugfs work on image files without root.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { CanvosError, abortError } from '../errors.js';

/** Options of {@link runTool}. */
export interface RunToolOptions {
  /** Shown when the program is missing, e.g. 'install e2fsprogs'. */
  hint: string;
  /** Environment of the child. Default: process.env. */
  env?: NodeJS.ProcessEnv | undefined;
  /** Written to the child's stdin. Default: nothing. */
  input?: string | undefined;
  signal?: AbortSignal | undefined;
}

/** `bin` resolved on PATH, then in /usr/sbin and /sbin; unchanged when it has a `/` or is found nowhere. */
export function findProgram(bin: string, env: NodeJS.ProcessEnv = process.env): string {
  if (bin.includes('/')) return bin;
  for (const dir of [...(env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/sbin', '/sbin']) {
    try {
      accessSync(join(dir, bin), constants.X_OK);
      return join(dir, bin);
    } catch {
      // next directory
    }
  }
  return bin;
}

/** Runs `bin args` and resolves with its stdout. */
export function runTool(bin: string, args: readonly string[], opts: RunToolOptions): Promise<string> {
  const { signal } = opts;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    const child = spawn(findProgram(bin, opts.env ?? process.env), args, {
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      signal,
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString('utf8')));
    child.stderr.on('data', (b: Buffer) => (err = (err + b.toString('utf8')).slice(-4000)));
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (signal?.aborted) reject(abortError(signal));
      else if (e.code === 'ENOENT')
        reject(new CanvosError('ERR_DISK', `${bin} not found`, { cause: e, hint: opts.hint }));
      else reject(new CanvosError('ERR_DISK', `cannot run ${bin}: ${e.message}`, { cause: e }));
    });
    child.on('close', (code) => {
      if (signal?.aborted) {
        reject(abortError(signal));
        return;
      }
      if (code === 0) {
        resolve(out);
        return;
      }
      const last = err.trim().split('\n').pop() ?? '';
      reject(new CanvosError('ERR_DISK', `${bin} exited ${code}: ${last}`, { details: { stderr: err } }));
    });
  });
}
