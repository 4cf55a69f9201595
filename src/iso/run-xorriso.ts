/**
 * Runs xorriso through runTool (src/util/run-tool.ts: own process group, idle and total time bounds, abort): a
 * missing binary becomes ERR_XORRISO_MISSING (with the apt hint), a non-zero exit an XorrisoError carrying the
 * stderr tail. Progress comes from xorriso's `UPDATE : … % done` lines on stderr; the growing output file
 * (`-outdev` / `-o`) also counts as progress for the idle bound.
 */
import { XorrisoError } from '../errors.js';
import { runTool, type ToolTimeouts } from '../util/run-tool.js';
import { writeSparse } from './sparse-write.js';

/** Progress of {@link runXorriso}, in percent of the ISO written. */
export interface XorrisoProgress {
  phase: 'xorriso';
  percent: number;
}

/** Options of {@link runXorriso}. */
export interface RunXorrisoOptions extends ToolTimeouts {
  /** Program to run. Default: env CANVOS_XORRISO, else 'xorriso' looked up on PATH. */
  xorriso?: string | undefined;
  /** Environment of the child. Default: process.env. */
  env?: NodeJS.ProcessEnv | undefined;
  signal?: AbortSignal | undefined;
  /**
   * Host file that receives xorriso's stdout (args say `-outdev stdio:/dev/fd/1`), all-zero 4 KiB blocks left as
   * holes. Default: none (stdout is returned).
   */
  stdoutTo?: string | undefined;
  onProgress?: ((p: XorrisoProgress) => void) | undefined;
}

/** Runs `xorriso args…`; resolves with its stdout (empty with `stdoutTo`) when it exits 0. */
export async function runXorriso(args: readonly string[], opts: RunXorrisoOptions = {}): Promise<string> {
  const env = opts.env ?? process.env;
  const bin = opts.xorriso ?? env.CANVOS_XORRISO ?? 'xorriso';
  const outAt = args.findIndex((a) => a === '-outdev' || a === '-o');
  const out = opts.stdoutTo ?? (outAt >= 0 ? args[outAt + 1] : undefined);
  const sinkTo = opts.stdoutTo;
  return runTool(bin, args, {
    name: 'xorriso',
    code: 'ERR_XORRISO_EXIT',
    missingCode: 'ERR_XORRISO_MISSING',
    missingHint:
      'install it (Debian/Ubuntu: apt-get install xorriso; Fedora: dnf install xorriso) or set CANVOS_XORRISO',
    env,
    signal: opts.signal,
    idleMs: opts.idleMs,
    totalMs: opts.totalMs,
    watch: out === undefined ? undefined : [out],
    stdoutSink:
      sinkTo === undefined
        ? undefined
        : async (s) => {
            await writeSparse(s, sinkTo, opts.signal);
          },
    onStderrLine: (line) => {
      const m = /UPDATE\s*:\s*([\d.]+)% done/.exec(line);
      if (m) opts.onProgress?.({ phase: 'xorriso', percent: Number(m[1]) });
    },
    exitError: (r) => new XorrisoError(r.code, r.signal, [bin, ...args], r.stderrTail),
  });
}
