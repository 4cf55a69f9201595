/**
 * The one way canvos-lite runs an external tool (xorriso, grub-mkimage, mke2fs, debugfs, qemu-img, sbsign, git, the
 * executor agent): in its own process group, so a timeout, an abort or the CLI's exit stops the tool and everything
 * it started (SIGTERM, then SIGKILL after a grace period). {@link runTool} adds an idle timeout (no output and no
 * growth of the watched files for N s), a total timeout, a bounded and redacted stderr tail for the error message,
 * and the "not installed" hint for ENOENT. Timeouts are ERR_TIMEOUT (exit 10) naming the tool and `--timeout`.
 */
import type { ChildProcess, ChildProcessWithoutNullStreams, SpawnOptions } from 'node:child_process';
import { AsyncLocalStorage } from 'node:async_hooks';
import { statSync } from 'node:fs';
import { basename } from 'node:path';
import type { Readable } from 'node:stream';
import { abortError } from '../util/abort.js';
import { CanvosError, redactText, type ErrorCode } from '../errors.js';

/** Time bounds of a spawned tool. */
export interface ToolTimeouts {
  /** Stop the tool after this long without output on stdout/stderr or growth of a watched file; 0: never. */
  idleMs?: number | undefined;
  /** Stop the tool after this long in total; 0: never. */
  totalMs?: number | undefined;
}

/** Idle bound of a tool when neither the call nor the scope sets one (the CLI's `--timeout` sets the scope's). */
export const DEFAULT_TOOL_IDLE_MS = 120_000;
/** Time between SIGTERM and SIGKILL of a stopped tool's process group. */
export const KILL_GRACE_MS = 2000;

const scope = new AsyncLocalStorage<ToolTimeouts>();

/** Run `fn` with `t` as the tool time bounds of every {@link runTool} call it makes (unless the call sets its own). */
export function withToolTimeouts<T>(t: ToolTimeouts, fn: () => T): T {
  return scope.run({ ...t }, fn);
}

/**
 * The bounds outside any {@link withToolTimeouts} scope. The CLI runs one command per process and keeps its
 * `--timeout` here (main.ts resets them before each command) instead of in a scope: an AsyncLocalStorage scope turns
 * on promise hooks that tax every promise of the process, ~15 % of a warm copy's CPU on Node 20 (bench/README).
 */
let unscoped: ToolTimeouts = {};

/** Change the time bounds of the current {@link withToolTimeouts} scope, or outside one those of the process. */
export function setToolTimeouts(t: ToolTimeouts): void {
  Object.assign(scope.getStore() ?? unscoped, t);
}

/** Forget the bounds set outside a scope (the CLI, before each command). */
export function resetToolTimeouts(): void {
  unscoped = {};
}

/** Process groups still running: killed when this process exits (a second Ctrl-C exits at once). */
const live = new Set<number>();
let exitHookInstalled = false;

function signalGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) {
    // The leader is gone; members of its group may still run.
    if (child.pid !== undefined && live.has(child.pid)) tryKill(-child.pid, sig);
    return;
  }
  if (!tryKill(-child.pid, sig)) child.kill(sig);
}

function tryKill(pid: number, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/**
 * Spawn `file args` as the leader of a new process group. {@link stopGroup} ends the whole group; groups still
 * running when this process exits are SIGKILLed.
 */
export function spawnGroup(file: string, args: readonly string[], opts: Omit<SpawnOptions, 'detached'>): ChildProcess {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const pid of live) tryKill(-pid, 'SIGKILL');
    });
  }
  // node:child_process (and the dgram/net modules it loads) only when a tool runs: the CLI's entry imports this
  // module for resetToolTimeouts, and most commands (copy, mirror) never spawn anything.
  const child = process.getBuiltinModule('node:child_process').spawn(file, args, { ...opts, detached: true });
  const pid = child.pid;
  if (pid !== undefined) {
    live.add(pid);
    // Forget the group only once it is empty: the leader's exit may leave members behind.
    child.on('exit', () => {
      if (!tryKill(-pid, 0)) live.delete(pid);
      else setTimeout(() => live.delete(pid), KILL_GRACE_MS * 2).unref();
    });
  }
  return child;
}

/** SIGTERM the group of `child`, then SIGKILL whatever is left after `graceMs`. */
export function stopGroup(child: ChildProcess, graceMs = KILL_GRACE_MS): void {
  signalGroup(child, 'SIGTERM');
  setTimeout(() => {
    if (child.pid !== undefined) tryKill(-child.pid, 'SIGKILL');
  }, graceMs).unref();
}

/** Options of {@link runTool}. */
export interface RunToolOptions extends ToolTimeouts {
  /** Code of a failed run (non-zero exit, cannot start); also of a missing program unless `missingCode` is set. */
  code: ErrorCode;
  /** Code of a missing program. Default: `code`. */
  missingCode?: ErrorCode | undefined;
  /** Hint when the program is missing, e.g. 'install e2fsprogs (apt-get install e2fsprogs)'. */
  missingHint: string;
  /** Name in messages. Default: the program's base name. */
  name?: string | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  cwd?: string | undefined;
  /** Written to stdin, which is then closed. Default: nothing. */
  input?: string | Buffer | undefined;
  /** Files whose growth counts as progress for the idle bound (a tool writing an image without printing). */
  watch?: readonly string[] | undefined;
  /**
   * Consumes stdout instead of collecting it (e.g. an image the tool writes to stdout); the run ends once the tool
   * exited and this promise settled, and a rejection stops the tool and becomes the run's error. Watch the file it
   * writes for the idle bound. Default: stdout is collected.
   */
  stdoutSink?: ((stdout: Readable) => Promise<void>) | undefined;
  /** Called with each stderr line (progress parsing). */
  onStderrLine?: ((line: string) => void) | undefined;
  /** Build the error of a non-zero exit (default: `code`, "NAME exited N: last stderr line"). */
  exitError?: ((r: ToolExit) => CanvosError) | undefined;
  signal?: AbortSignal | undefined;
}

/** How a tool ended. `stderrTail` is the last {@link STDERR_TAIL} characters, redacted. */
export interface ToolExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderrTail: string;
}

/** Characters of stderr kept for messages. */
export const STDERR_TAIL = 4096;
/** Characters of stdout kept (tools whose output is parsed print little). */
const STDOUT_MAX = 1 << 20;

/** Runs `bin args…` and resolves with its stdout when it exits 0. */
export function runTool(bin: string, args: readonly string[], opts: RunToolOptions): Promise<string> {
  return runToolRaw(bin, args, opts).then((r) => {
    if (r.code === 0) return r.stdout;
    throw opts.exitError?.(r) ?? exitError(opts.name ?? basename(bin), r, opts.code);
  });
}

/** The default error of a non-zero exit: the last stderr line. */
export function exitError(name: string, r: ToolExit, code: ErrorCode): CanvosError {
  const last = r.stderrTail.trim().split('\n').pop() ?? '';
  return new CanvosError(code, `${name} ${r.signal ? `was killed by ${r.signal}` : `exited ${r.code}`}: ${last}`, {
    details: { stderr: r.stderrTail },
  });
}

/**
 * Runs `bin args…` within the time bounds and resolves with how it ended, whatever the exit status; rejects on a
 * missing program, a timeout or an abort (after the process group is gone).
 */
export function runToolRaw(bin: string, args: readonly string[], opts: RunToolOptions): Promise<ToolExit> {
  const name = opts.name ?? basename(bin);
  const { signal } = opts;
  const ctx = scope.getStore() ?? unscoped;
  const idleMs = opts.idleMs ?? ctx.idleMs ?? DEFAULT_TOOL_IDLE_MS;
  const totalMs = opts.totalMs ?? ctx.totalMs ?? 0;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    // stdio 'pipe': the three streams exist.
    const child = spawnGroup(bin, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: 'pipe',
    }) as ChildProcessWithoutNullStreams;
    let stdout = '';
    let stderr = '';
    let pending = '';
    let failure: CanvosError | undefined;
    let sinkError: unknown;
    let lastActive = Date.now();
    let sizes = watchedSizes(opts.watch);
    const stop = (e: CanvosError): void => {
      failure ??= e;
      stopGroup(child);
    };
    const onAbort = (): void => {
      stop(abortError(signal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const timers: NodeJS.Timeout[] = [];
    if (idleMs > 0) {
      timers.push(
        setInterval(
          () => {
            const now = watchedSizes(opts.watch);
            if (now !== sizes) {
              sizes = now;
              lastActive = Date.now();
            } else if (Date.now() - lastActive >= idleMs) stop(timeoutError(name, idleMs, 'idle', stderr));
          },
          Math.min(1000, Math.max(100, idleMs / 4)),
        ),
      );
    }
    if (totalMs > 0)
      timers.push(
        setTimeout(() => {
          stop(timeoutError(name, totalMs, 'total', stderr));
        }, totalMs),
      );
    const sinkDone = opts.stdoutSink?.(child.stdout).catch((e: unknown) => {
      sinkError = e;
      child.stdout.destroy();
      stopGroup(child);
    });
    if (!sinkDone)
      child.stdout.on('data', (b: Buffer) => {
        lastActive = Date.now();
        if (stdout.length < STDOUT_MAX) stdout += b.toString('utf8');
      });
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      lastActive = Date.now();
      stderr = (stderr + s).slice(-STDERR_TAIL);
      if (!opts.onStderrLine) return;
      const lines = (pending + s).split('\n');
      pending = lines.pop() ?? '';
      for (const l of lines) opts.onStderrLine(l);
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
    const finish = (): void => {
      for (const t of timers) clearInterval(t);
      signal?.removeEventListener('abort', onAbort);
    };
    child.on('error', (e: NodeJS.ErrnoException) => {
      finish();
      if (failure) reject(failure);
      else if (e.code === 'ENOENT')
        reject(
          new CanvosError(opts.missingCode ?? opts.code, `${name} not found (${bin})`, {
            cause: e,
            hint: opts.missingHint,
          }),
        );
      else reject(new CanvosError(opts.code, `cannot run ${name} (${bin}): ${e.message}`, { cause: e }));
    });
    child.on('close', (code, sig) => {
      finish();
      void Promise.resolve(sinkDone).then(() => {
        if (failure) reject(failure);
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the sink's own error, as thrown
        else if (sinkError !== undefined) reject(sinkError);
        else resolve({ code, signal: sig, stdout, stderrTail: redactText(stderr) });
      });
    });
  });
}

function watchedSizes(paths: readonly string[] | undefined): string {
  if (!paths?.length) return '';
  return paths
    .map((p) => {
      try {
        const s = statSync(p);
        return `${s.size}:${s.mtimeMs}`;
      } catch {
        return '-';
      }
    })
    .join(',');
}

function timeoutError(name: string, ms: number, kind: 'idle' | 'total', stderr: string): CanvosError {
  const s = Math.round(ms / 100) / 10;
  const last = redactText(stderr).trim().split('\n').pop() ?? '';
  const what =
    kind === 'idle' ? `made no progress for ${s} s (no output, no file growth)` : `did not finish within ${s} s`;
  return new CanvosError('ERR_TIMEOUT', `${name} ${what} and was stopped${last ? `; last output: ${last}` : ''}`, {
    hint: `check that ${name} works on this host; if it is only slow here, raise --timeout SECONDS (library: withToolTimeouts)`,
  });
}
