/**
 * Runs the external tools of the disk builder (mke2fs, debugfs, grub-mkimage, qemu-img) through src/util/run-tool.ts:
 * a missing program or a non-zero exit becomes one ERR_DISK line with the stderr tail and an install hint; a tool
 * past its time bound is stopped (ERR_TIMEOUT); the AbortSignal kills its process group.
 * Bare program names are also looked up in /usr/sbin and /sbin: e2fsprogs installs there, outside an ordinary
 * user's PATH on Debian, yet mke2fs and debugfs work on image files without root.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join, basename } from 'node:path';
import { runTool as runToolIn } from '../util/run-tool.js';

/** Options of {@link runTool}. */
export interface RunToolOptions {
  /** Shown when the program is missing, e.g. 'install e2fsprogs'. */
  hint: string;
  /** Environment of the child. Default: process.env. */
  env?: NodeJS.ProcessEnv | undefined;
  /** Written to the child's stdin. Default: nothing. */
  input?: string | undefined;
  /** Files the tool writes: their growth counts as progress for the idle bound. */
  watch?: readonly string[] | undefined;
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

/** Runs `bin args` (through the shared runTool: process group, time bounds, abort) and resolves with its stdout. */
export function runTool(bin: string, args: readonly string[], opts: RunToolOptions): Promise<string> {
  const env = opts.env ?? process.env;
  return runToolIn(findProgram(bin, env), args, {
    name: basename(bin),
    code: 'ERR_DISK',
    missingHint: opts.hint,
    env,
    input: opts.input,
    signal: opts.signal,
    watch: opts.watch,
  });
}
