/**
 * Shared checks of the reliability tests: run the real CLI binary (bin/canvos-lite.js over dist/, so build first:
 * `npx tsc -p tsconfig.json && node scripts/bundle.mjs`) with its own $TMPDIR, optionally send it a signal, and
 * assert what every failure must look like: the exit code, one message line plus a hint, no stack trace, no planted
 * secret, an end within the time bound, and nothing left in $TMPDIR.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, expect } from 'vitest';
import { makeOciLayout } from '../helpers/fixtures.js';
import { startFaultProxy, type FaultAction, type FaultProxy } from '../helpers/fault-proxy.js';
import { pushLayout } from '../helpers/push-layout.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { tmpDir } from '../helpers/tools.js';
import { asUnprivileged, unprivilegedTempDir } from '../helpers/unprivileged.js';

export const repo = resolve(import.meta.dirname, '..', '..');
export const bin = join(repo, 'bin', 'canvos-lite.js');

/** The outcome of one CLI run. */
export interface BinResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time in ms. */
  ms: number;
  /** The run's own $TMPDIR (check it is empty). */
  tmp: string;
  /** Ms from the kill signal (RunBinOptions.kill) to the exit, when one was sent. */
  afterSignalMs?: number;
}

/** Options of {@link runBin}. */
export interface RunBinOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Send this signal after `after` ms, or once `when` matches stderr. */
  kill?: { signal: NodeJS.Signals; after?: number; when?: RegExp };
  /** argv prefix (e.g. asUnprivileged) put in front of `node bin`. */
  wrap?: (argv: string[]) => string[];
  /** Give up (SIGKILL) after this long; the test then fails on the time bound. Default: 90 s. */
  limitMs?: number;
  /** $TMPDIR to use; default: a fresh one. */
  tmp?: string;
}

/** Every run's $TMPDIR, removed after the test file (expectCleanFailure removes those of failures at once). */
const runDirs: string[] = [];
afterAll(async () => {
  for (const d of runDirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/** Run `canvos-lite ARGS` as a child process. */
export async function runBin(args: string[], o: RunBinOptions = {}): Promise<BinResult> {
  const tmp = o.tmp ?? (await mkdtemp(join(tmpdir(), 'canvos-rel-tmp-')));
  runDirs.push(tmp);
  const argv = [process.execPath, bin, ...args];
  const full = o.wrap ? o.wrap(argv) : argv;
  // HOME (the blob cache lives under it) is not $TMPDIR, which must end empty.
  const home = await mkdtemp(join(tmpdir(), 'canvos-rel-home-'));
  const env = { PATH: process.env.PATH, HOME: home, ...o.env, TMPDIR: tmp };
  const t0 = Date.now();
  return new Promise((res, rej) => {
    const child = spawn(full[0]!, full.slice(1), { cwd: o.cwd ?? tmp, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let sent = false;
    let sentAt: number | undefined;
    const send = (): void => {
      if (!sent && o.kill) {
        sent = true;
        sentAt = Date.now();
        child.kill(o.kill.signal);
      }
    };
    // At most 4 MB of each is kept (a flood must fail the test, not exhaust its memory).
    const cap = (have: string, d: string): string => (have.length > 4e6 ? have : have + d);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout = cap(stdout, d)));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr = cap(stderr, d);
      if (o.kill?.when?.test(stderr)) send();
    });
    const kt = o.kill?.after !== undefined ? setTimeout(send, o.kill.after) : undefined;
    const limit = setTimeout(() => child.kill('SIGKILL'), o.limitMs ?? 90_000);
    child.on('error', rej);
    child.on('close', (code, signal) => {
      clearTimeout(kt);
      clearTimeout(limit);
      const ms = Date.now() - t0;
      const afterSignalMs = sentAt === undefined ? undefined : Date.now() - sentAt;
      void rm(home, { recursive: true, force: true }).then(() =>
        res({ code, signal, stdout, stderr, ms, tmp, afterSignalMs }),
      );
    });
  });
}

/** What a failed run must look like. */
export interface FailureExpectation {
  code: number;
  /** Upper bound of the run time in ms. */
  withinMs: number;
  /** A pattern the message line must match. */
  message?: RegExp;
  /** Require a `hint:` line. Default: true. */
  hint?: boolean;
  /** Strings that must appear nowhere in stdout or stderr. */
  secrets?: string[];
  /** The run used --debug: stack traces are expected. Default: false. */
  debug?: boolean;
}

/** Assert the shape of a failure (see the file header) and that $TMPDIR was left empty; removes $TMPDIR. */
export async function expectCleanFailure(r: BinResult, e: FailureExpectation): Promise<void> {
  const ctx = `exit ${r.code} after ${r.ms} ms\nstderr: ${r.stderr.slice(0, 2000)}`;
  expect(r.code, ctx).toBe(e.code);
  expect(r.ms, ctx).toBeLessThan(e.withinMs);
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('canvos-lite:') || l.startsWith('hint:'));
  const msg = lines.find((l) => l.startsWith('canvos-lite:'));
  expect(msg, ctx).toBeDefined();
  expect(msg!.length, ctx).toBeLessThan(800);
  if (e.message) expect(msg, ctx).toMatch(e.message);
  if (e.hint !== false)
    expect(
      lines.some((l) => l.startsWith('hint: ')),
      ctx,
    ).toBe(true);
  if (!e.debug) expect(r.stderr, ctx).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
  expect(r.stderr, ctx).not.toMatch(/internal error/);
  for (const s of e.secrets ?? []) {
    expect(r.stderr.includes(s), `secret in stderr: ${ctx}`).toBe(false);
    expect(r.stdout.includes(s), 'secret in stdout').toBe(false);
  }
  expect(await readdir(r.tmp), `leftovers in $TMPDIR: ${ctx}`).toEqual([]);
  await rm(r.tmp, { recursive: true, force: true });
}

/** A TCP server that accepts connections and never answers (a black-holed registry). */
export async function blackHole(): Promise<{ host: string; connections: () => number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let count = 0;
  const server: Server = createServer((s) => {
    count++;
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    s.resume();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    host: `127.0.0.1:${port}`,
    connections: () => count,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Entries of a directory, or null when it does not exist. */
export async function entries(dir: string): Promise<string[] | null> {
  return readdir(dir).then(
    (e) => e.sort(),
    () => null,
  );
}

/** A registry serving `app:v1` (one image, 2 layers of `layerBytes`) behind a fault proxy, in a temp directory. */
export interface ServedImage {
  reg: TestRegistry;
  proxy: FaultProxy;
  /** The temp directory (holds `fixture/`, the image as an OCI layout). */
  dir: string;
  stop(): Promise<void>;
}

/** Start a {@link ServedImage}. */
export async function serveImage(prefix: string, layerBytes: number): Promise<ServedImage> {
  const tmp = await tmpDir(prefix);
  const reg = await startRegistry();
  await makeOciLayout(join(tmp.path, 'fixture'), { tag: 'v1', layerBytes });
  await pushLayout(join(tmp.path, 'fixture'), reg, 'app', { ref: 'v1', tag: 'v1' });
  const proxy = await startFaultProxy(reg.url);
  return {
    reg,
    proxy,
    dir: tmp.path,
    async stop() {
      await proxy.stop();
      await reg.stop();
      await tmp.cleanup();
    },
  };
}

/**
 * Run the CLI as the unprivileged user inside a new user+mount namespace where `setup` (shell, with $M = `mnt`)
 * prepared a mount; stdout gets a last line `LEFT:<entries of $M>`.
 */
export async function inNamespace(setup: string, mnt: string, args: string[], env: string[] = []): Promise<BinResult> {
  const tmp = unprivilegedTempDir('canvos-rel-fs-tmp-');
  const script = `set -e; M="${mnt}"; ${setup}; set +e; "$@"; c=$?; echo "LEFT:$(ls -A "$M" | tr '\\n' ' ')"; exit $c`;
  return runBin(args, {
    tmp,
    wrap: (argv) =>
      asUnprivileged([
        'env',
        `TMPDIR=${tmp}`,
        `HOME=${tmp}`,
        `PATH=${process.env.PATH}`,
        ...env,
        'unshare',
        '-Urm',
        'sh',
        '-c',
        script,
        'sh',
        ...argv,
      ]),
  });
}

/** Replace the proxy's rules by one: every blob GET gets `action`. */
export function faultBlobs(proxy: FaultProxy, action: FaultAction): void {
  proxy.clearRules();
  proxy.addRule({ method: 'GET', path: /\/blobs\/sha256:/, times: Infinity, action });
}
