/**
 * Runs one command inside the materialised rootfs with bwrap (from inside the executor's user namespace): its own
 * mount, pid and ipc namespaces, /proc, /dev (bwrap's: null, zero, full, random, urandom, tty bound from the host),
 * a tmpfs /tmp, the host network with the host's /etc/resolv.conf, and the CanvOS certs/ as an extra CA bundle.
 * A non-root USER is entered with the host's `chroot --userspec` (the image's /bin/sh then changes directory).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CanvosError } from '../errors.js';
import { normalizeLayerPath } from '../layers/path.js';
import { RootResolver } from './apply.js';
import { lastLine } from './probe.js';
import type { RunStep } from './types.js';

/** The serialisable part of a RunStep the agent receives. */
export type SandboxStep = Omit<RunStep, 'onOutput' | 'mtime'>;

/** A resolved identity inside the image. */
export interface Identity {
  uid: number;
  gid: number;
  groups: number[];
}

function parseDb(text: string): string[][] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('#'))
    .map((l) => l.split(':'));
}

/** Resolve `root`, `NAME`, `UID`, `NAME:GROUP`, `UID:GID` against the image's /etc/passwd and /etc/group. */
export async function resolveUser(root: string, spec: string | undefined, label: string): Promise<Identity> {
  const s = (spec ?? '').trim() || 'root';
  const [u, g] = s.split(':', 2) as [string, string | undefined];
  const passwd = parseDb(await readFile(join(root, 'etc/passwd'), 'utf8').catch(() => ''));
  const group = parseDb(await readFile(join(root, 'etc/group'), 'utf8').catch(() => ''));
  const pw = /^\d+$/.test(u) ? passwd.find((f) => f[2] === u) : passwd.find((f) => f[0] === u);
  if (!pw && !/^\d+$/.test(u)) {
    throw new CanvosError('ERR_CONFIG', `${label}: user ${JSON.stringify(u)} is not in the image's /etc/passwd`, {
      hint: 'create the user in an earlier RUN, or use a numeric UID',
    });
  }
  const uid = pw ? Number(pw[2]) : Number(u);
  let gid = pw ? Number(pw[3]) : 0;
  if (g !== undefined) {
    const gr = /^\d+$/.test(g) ? undefined : group.find((f) => f[0] === g);
    if (!gr && !/^\d+$/.test(g))
      throw new CanvosError('ERR_CONFIG', `${label}: group ${JSON.stringify(g)} is not in the image's /etc/group`, {
        hint: 'use a numeric GID',
      });
    gid = gr ? Number(gr[2]) : Number(g);
  }
  const name = pw?.[0];
  const groups =
    g === undefined && name ? group.filter((f) => (f[3] ?? '').split(',').includes(name)).map((f) => Number(f[2])) : [];
  return { uid, gid, groups: [...new Set([gid, ...groups])] };
}

/** Mount points of the sandbox in the rootfs. */
const MOUNT_POINTS = ['proc', 'dev', 'tmp', 'etc/resolv.conf'];

/**
 * Create the mount points the image lacks (once, before the first snapshot, so creating them never shows up as a
 * change) and record them in `placeholders`; snapshots skip them while they stay empty.
 */
export async function preparePlaceholders(root: string, placeholders: Set<string>): Promise<void> {
  for (const m of MOUNT_POINTS) {
    const host = join(root, m);
    if (await lstat(host).catch(() => null)) continue;
    const parent = await lstat(join(host, '..')).catch(() => null);
    if (!parent?.isDirectory()) continue;
    if (m.includes('.')) await writeFile(host, '', { mode: 0o644 });
    else await mkdir(host, { mode: 0o755 });
    placeholders.add(m);
  }
}

/** Build the combined CA bundle for certsDir (the image's bundle, if any, plus every PEM of certsDir). */
async function caBundle(root: string, certsDir: string, workDir: string): Promise<string> {
  const parts: string[] = [];
  for (const p of ['etc/ssl/certs/ca-certificates.crt', 'etc/pki/tls/certs/ca-bundle.crt']) {
    const t = await readFile(join(root, p), 'utf8').catch(() => undefined);
    if (t !== undefined) parts.push(t);
  }
  for (const n of (await readdir(certsDir)).sort()) {
    if (!/\.(pem|crt)$/i.test(n)) continue;
    parts.push(await readFile(join(certsDir, n), 'utf8'));
  }
  const out = join(workDir, 'ca-bundle.pem');
  await writeFile(out, parts.map((p) => (p.endsWith('\n') ? p : `${p}\n`)).join(''), { mode: 0o644 });
  return out;
}

/** Absolute path of a host tool (bwrap resolves argv[0] with the step's PATH, which is the image's). */
function hostTool(name: string): string {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
  for (const d of dirs) if (d.startsWith('/') && existsSync(join(d, name))) return join(d, name);
  throw new CanvosError('ERR_EXEC_UNAVAILABLE', `${name} is not installed on this host`, {
    hint: 'apt-get install coreutils',
  });
}

/** Run the step; resolves with the exit code and the last stderr line. `onOutput` gets the raw output. */
export async function runInSandbox(
  root: string,
  workDir: string,
  step: SandboxStep,
  onOutput: (chunk: Buffer, stream: 'stdout' | 'stderr') => void,
  signal?: AbortSignal,
): Promise<{ code: number; lastStderr: string }> {
  const wd = normalizeLayerPath(step.workdir || '/');
  if (wd === null || !step.workdir.startsWith('/'))
    throw new CanvosError(
      'ERR_CONFIG',
      `${step.label}: WORKDIR ${JSON.stringify(step.workdir)} must be an absolute path inside the image`,
    );
  const who = await resolveUser(root, step.user, step.label);
  const res = new RootResolver(root, false);
  const wdHost =
    wd === ''
      ? root
      : join(
          root,
          await res.dir(wd, true).catch((e: unknown) => {
            const why = e instanceof Error ? e.message : String(e);
            throw new CanvosError('ERR_CONFIG', `${step.label}: WORKDIR ${step.workdir} cannot be used: ${why}`, {
              hint: 'a path component is a file in the image',
            });
          }),
        );
  const resolvConf = await lstat(join(root, 'etc/resolv.conf')).catch(() => null);
  const env = { ...step.env };
  const binds: Array<[flag: string, host: string, inside: string]> = [];
  if (step.certsDir) {
    const bundle = await caBundle(root, step.certsDir, workDir);
    for (const k of ['SSL_CERT_FILE', 'CURL_CA_BUNDLE', 'REQUESTS_CA_BUNDLE', 'NODE_EXTRA_CA_CERTS'])
      env[k] ??= '/tmp/.canvos-ca-bundle.pem';
    binds.push(['--ro-bind', bundle, '/tmp/.canvos-ca-bundle.pem']);
  }
  const asRoot = who.uid === 0 && who.gid === 0;
  // Root runs with the image as / (bwrap pivots into it); another user enters it with chroot --userspec, so bwrap
  // keeps the agent's view as / and mounts proc/dev/tmp inside the rootfs.
  const at = (p: string): string => (asRoot ? p : join(root, p));
  const bwrap = hostTool('bwrap');
  const argv = ['--die-with-parent', '--unshare-pid', '--unshare-ipc', '--new-session'];
  argv.push(...(asRoot ? ['--bind', root, '/'] : ['--bind', '/', '/']));
  argv.push('--proc', at('/proc'), '--dev', at('/dev'), '--perms', '1777', '--tmpfs', at('/tmp'));
  const etcDir = await lstat(join(root, 'etc')).catch(() => null);
  if (existsSync('/etc/resolv.conf') && etcDir?.isDirectory() && !resolvConf?.isSymbolicLink())
    argv.push('--ro-bind', '/etc/resolv.conf', at('/etc/resolv.conf'));
  for (const [flag, host, inside] of binds) argv.push(flag, host, at(inside));
  if (asRoot) {
    argv.push('--chdir', `/${wd}`, '--', ...step.argv);
  } else {
    const spec = `--userspec=${who.uid}:${who.gid}`;
    const groups = `--groups=${who.groups.join(',')}`;
    // chroot always starts in /; the image's sh changes to the work dir (exec form in an image without sh: '/' only).
    const enter = wd === '' ? [] : ['/bin/sh', '-c', 'cd "$1" && shift && exec "$@"', 'sh', `/${wd}`];
    argv.push('--chdir', wdHost, '--', hostTool('chroot'), spec, groups, root, ...enter, ...step.argv);
  }
  return new Promise((resolve, reject) => {
    const child = spawn(bwrap, argv, {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(signal ? { signal } : {}),
    });
    let tail = '';
    child.stdout.on('data', (b: Buffer) => {
      onOutput(b, 'stdout');
    });
    child.stderr.on('data', (b: Buffer) => {
      tail = (tail + b.toString('utf8')).slice(-4096);
      onOutput(b, 'stderr');
    });
    child.on('error', (e) => {
      reject(
        signal?.aborted
          ? e
          : new CanvosError('ERR_EXEC_UNAVAILABLE', `${step.label}: cannot start bwrap: ${e.message}`, {
              hint: 'apt-get install bubblewrap',
            }),
      );
    });
    child.on('close', (code, sig) => {
      resolve({ code: code ?? 128 + (sig === 'SIGKILL' ? 9 : 15), lastStderr: lastLine(tail) });
    });
  });
}
