/**
 * What the host can do for the rootless RUN executor: user namespaces (and which uid mapping), bwrap, and qemu-user
 * binfmt for a foreign architecture. Each check actually tries the thing (an `unshare` that a seccomp filter or a
 * container without CAP_SYS_ADMIN refuses fails here, not halfway through a build).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { CanvosError } from '../errors.js';
import { envSwitch } from '../util/env-switch.js';

/** The one-line fix printed whenever user namespaces are unavailable. */
export const USERNS_HINT =
  'enable unprivileged user namespaces (sysctl user.max_user_namespaces / kernel.unprivileged_userns_clone), or pre-bake the change into BASE_IMAGE';

/** Result of {@link probeUserNamespaces}. */
export type UserNamespaceProbe =
  /** `full`: root plus the subordinate range of /etc/subuid,/etc/subgid; `single`: only root (the caller's id); `host-root`: running as real root, no user namespace needed. */
  { ok: true; mapping: 'full' | 'single' | 'host-root'; detail: string } | { ok: false; reason: string; hint: string };

/** Runs a command and resolves with its exit code and the last line of stderr; never rejects. */
export function tryRun(argv: readonly string[], signal?: AbortSignal): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const [cmd = '', ...args] = argv;
    const child = spawn(cmd, args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      ...(signal ? { signal } : {}),
    });
    let err = '';
    child.stderr.on('data', (b: Buffer) => {
      err = (err + b.toString('utf8')).slice(-4096);
    });
    child.on('error', (e) => {
      resolve({ code: -1, stderr: e.message });
    });
    child.on('close', (code) => {
      resolve({ code: code ?? -1, stderr: lastLine(err) });
    });
  });
}

/** The last non-empty line of some output. */
export function lastLine(s: string): string {
  const lines = s
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  return lines[lines.length - 1] ?? '';
}

function readSysctl(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** The first subordinate range granted to the current user in /etc/subuid or /etc/subgid, if any. */
function subRange(file: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const uid = String(process.getuid?.() ?? 0);
  let name = '';
  try {
    name = userInfo().username;
  } catch {
    // a uid without a passwd entry: match by number only
  }
  for (const line of text.split('\n')) {
    const [who, start, count] = line.trim().split(':');
    if ((who === name || who === uid) && Number(count) > 0) return `${start}:${count}`;
  }
  return undefined;
}

function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '/usr/bin:/bin').split(':').some((d) => d !== '' && existsSync(`${d}/${cmd}`));
}

/** The `unshare` options that enter the executor's namespaces for a mapping. */
export function unshareArgs(mapping: 'full' | 'single' | 'host-root'): string[] {
  if (mapping === 'host-root') return ['unshare', '--mount'];
  if (mapping === 'single') return ['unshare', '--user', '--mount', '--map-root-user'];
  return ['unshare', '--user', '--mount', '--map-root-user', '--map-auto'];
}

const fail = (reason: string, hint = USERNS_HINT): UserNamespaceProbe => ({ ok: false, reason, hint });

/**
 * Find out whether commands can run here in a user + mount namespace, and with which uid mapping. Honours
 * `CANVOS_EXEC_DISABLE_USERNS=1` (behaves as if unavailable, for tests and for forcing the refusal path).
 */
export async function probeUserNamespaces(opts: { signal?: AbortSignal } = {}): Promise<UserNamespaceProbe> {
  if (envSwitch('CANVOS_EXEC_DISABLE_USERNS'))
    return fail(
      `user namespaces are disabled by CANVOS_EXEC_DISABLE_USERNS=${process.env.CANVOS_EXEC_DISABLE_USERNS ?? ''}`,
    );
  for (const tool of ['unshare', 'bwrap']) {
    if (!onPath(tool))
      return fail(`${tool} is not installed`, `apt-get install ${tool === 'bwrap' ? 'bubblewrap' : 'util-linux'}`);
  }
  const root = (process.getuid?.() ?? 0) === 0;
  if (root) {
    const r = await tryRun([...unshareArgs('host-root'), 'true'], opts.signal);
    if (r.code !== 0)
      return fail(
        `cannot create a mount namespace as root (unshare --mount: ${r.stderr || `exit ${r.code}`})`,
        'run with CAP_SYS_ADMIN (e.g. a privileged container), or pre-bake the change into BASE_IMAGE',
      );
    return { ok: true, mapping: 'host-root', detail: 'running as root: mount namespace only' };
  }
  const uids = subRange('/etc/subuid');
  const gids = subRange('/etc/subgid');
  if (uids && gids && onPath('newuidmap') && onPath('newgidmap')) {
    const r = await tryRun([...unshareArgs('full'), 'true'], opts.signal);
    if (r.code === 0) return { ok: true, mapping: 'full', detail: `root plus subordinate uids ${uids}, gids ${gids}` };
  }
  const r = await tryRun([...unshareArgs('single'), 'true'], opts.signal);
  if (r.code !== 0) {
    // The attempt decides; the sysctls only explain why it failed (else: seccomp, or a container without the capability).
    const why =
      readSysctl('/proc/sys/user/max_user_namespaces') === '0'
        ? 'user namespaces are disabled (sysctl user.max_user_namespaces = 0)'
        : readSysctl('/proc/sys/kernel/unprivileged_userns_clone') === '0'
          ? 'unprivileged user namespaces are disabled (sysctl kernel.unprivileged_userns_clone = 0)'
          : 'cannot create a user namespace (blocked by seccomp or the container?)';
    return fail(`${why}: unshare --user failed: ${r.stderr || `exit ${r.code}`}`);
  }
  const why =
    !uids || !gids
      ? 'no range for this user in /etc/subuid and /etc/subgid'
      : !onPath('newuidmap')
        ? 'newuidmap/newgidmap missing (apt-get install uidmap)'
        : 'mapping the subordinate range failed';
  return { ok: true, mapping: 'single', detail: `only root is mapped (${why})` };
}

const BINFMT: Record<'amd64' | 'arm64', string> = { amd64: 'qemu-x86_64', arm64: 'qemu-aarch64' };

/** The Go-style name of the host architecture, or undefined for one the executor does not know. */
export function hostArch(): 'amd64' | 'arm64' | undefined {
  return process.arch === 'x64' ? 'amd64' : process.arch === 'arm64' ? 'arm64' : undefined;
}

/**
 * Throw ERR_EXEC_UNAVAILABLE unless binaries of `arch` can run here: natively, or through a qemu-user binfmt handler
 * registered with the F (fix-binary) flag, which is what makes the interpreter usable inside the image's root.
 * Returns a note when emulation is used.
 */
export function checkArch(arch: 'amd64' | 'arm64'): string | undefined {
  if (hostArch() === arch) return undefined;
  const name = BINFMT[arch];
  const hint = 'apt-get install qemu-user-static binfmt-support';
  if (!name)
    throw new CanvosError('ERR_EXEC_UNAVAILABLE', `cannot run ${arch} commands: unknown architecture`, {
      hint,
    });
  const entry = readSysctl(`/proc/sys/fs/binfmt_misc/${name}`);
  if (entry === undefined || !entry.split('\n').includes('enabled')) {
    throw new CanvosError(
      'ERR_EXEC_UNAVAILABLE',
      `cannot run ${arch} commands on this ${process.arch} host: no ${name} binfmt handler is registered`,
      { hint },
    );
  }
  const flags = /^flags:\s*(\S*)/m.exec(entry)?.[1] ?? '';
  if (!flags.includes('F')) {
    throw new CanvosError(
      'ERR_EXEC_UNAVAILABLE',
      `cannot run ${arch} commands: the ${name} binfmt handler lacks the F (fix-binary) flag, so it is not usable inside the image root`,
      { hint },
    );
  }
  return `${arch} commands run through ${name} (binfmt)`;
}
