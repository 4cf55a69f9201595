/**
 * External oracles for tests: run a command and capture its output, skopeo and umoci wrappers that throw with
 * stderr on failure, and self-cleaning temp dirs. skopeo gets an empty auth file and DOCKER_CONFIG so the host's
 * credentials never leak into a test.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Result of {@link run}. `code` is the exit code, or -1 when the child was killed by a signal. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of {@link run}. */
export interface RunOptions {
  /** Full environment of the child. Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** Working directory. Default: process.cwd(). */
  cwd?: string;
  /** Text written to the child's stdin (then closed). Default: stdin closed immediately. */
  input?: string;
  /** Kill the child with SIGKILL after this many ms (the result then has code -1). Default: 120000. */
  timeoutMs?: number;
}

/** Runs `cmd args…` without a shell and resolves with its exit code and output; never rejects on a non-zero exit. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 120_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      let stderr = Buffer.concat(err).toString('utf8');
      if (timedOut) stderr += `\n[run] ${cmd} killed after ${opts.timeoutMs ?? 120_000} ms`;
      else if (signal) stderr += `\n[run] ${cmd} killed by ${signal}`;
      resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString('utf8'), stderr });
    });
    // A child that exits without reading stdin makes the write fail with EPIPE; that is not our error.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

let isolatedEnv: NodeJS.ProcessEnv | undefined;
/**
 * process.env plus an empty REGISTRY_AUTH_FILE and DOCKER_CONFIG. The directory is fixed per user and shared by
 * all test processes (its content never changes), because vitest workers are killed without an 'exit' event
 * and a per-process dir would leak.
 */
function skopeoEnv(): NodeJS.ProcessEnv {
  if (!isolatedEnv) {
    const dir = join(tmpdir(), `canvos-skopeo-noauth-${process.getuid?.() ?? 0}`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = join(dir, 'config.json');
    if (!existsSync(file)) {
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, '{"auths":{}}\n');
      renameSync(tmp, file);
    }
    isolatedEnv = { ...process.env, REGISTRY_AUTH_FILE: file, DOCKER_CONFIG: dir };
  }
  return isolatedEnv;
}

async function checked(cmd: string, args: string[], opts: RunOptions): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim().slice(-4000)}`);
  return r.stdout;
}

/**
 * Runs skopeo with exactly `args` (no implicit flags: pass `--insecure-policy`, `--dest-tls-verify=false`,
 * `--dest-creds u:p` yourself) and returns stdout; throws an Error carrying stderr on a non-zero exit.
 * Unless `opts.env` is given, the host's registry credentials are hidden behind an empty auth file.
 */
export function skopeo(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<string> {
  return checked('skopeo', args, { env: opts.env ?? skopeoEnv(), timeoutMs: opts.timeoutMs });
}

/** Runs umoci with `args` and returns stdout; throws an Error carrying stderr on a non-zero exit. */
export function umoci(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<string> {
  return checked('umoci', args, { env: opts.env, timeoutMs: opts.timeoutMs });
}

/** A fresh directory under os.tmpdir(); `cleanup()` removes it (also after umoci made parts of it read-only). */
export async function tmpDir(prefix = 'canvos-test-'): Promise<{ path: string; cleanup(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return {
    path,
    async cleanup() {
      try {
        await rm(path, { recursive: true, force: true });
      } catch {
        // Rootless unpacks can leave directories without the write bit; restore it and retry once.
        await run('chmod', ['-R', 'u+rwX', path]);
        await chmod(path, 0o700).catch(() => {});
        await rm(path, { recursive: true, force: true });
      }
    },
  };
}
