/**
 * Runs commands as an unprivileged user, for the tests of what canvos-lite claims to do rootless. Under root (CI) the
 * command is wrapped in `setpriv` to become the `canvostest` user that scripts/install-deps.sh creates (with a
 * subordinate uid/gid range in /etc/subuid and /etc/subgid); under any other user the command runs as it is.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The account install-deps.sh creates for rootless tests. */
export const UNPRIVILEGED_USER = 'canvostest';

/** The unprivileged identity commands run under. */
export interface Identity {
  uid: number;
  gid: number;
  name: string;
}

let cached: Identity | null | undefined;

/** The identity tests use: the current user when not root, else `canvostest`; null when root and it is missing. */
export function unprivilegedIdentity(): Identity | null {
  if (cached !== undefined) return cached;
  const uid = process.getuid?.() ?? 0;
  if (uid !== 0) {
    cached = { uid, gid: process.getgid?.() ?? uid, name: execFileSync('id', ['-un']).toString().trim() };
    return cached;
  }
  try {
    const line = execFileSync('getent', ['passwd', UNPRIVILEGED_USER]).toString().trim();
    const [, , u, g] = line.split(':');
    cached = { uid: Number(u), gid: Number(g), name: UNPRIVILEGED_USER };
  } catch {
    cached = null;
  }
  return cached;
}

/** `argv` wrapped so that it runs as the unprivileged identity (with its supplementary groups). */
export function asUnprivileged(argv: readonly string[]): string[] {
  const id = unprivilegedIdentity();
  if (!id) throw new Error(`user ${UNPRIVILEGED_USER} is missing: run scripts/install-deps.sh as root`);
  if ((process.getuid?.() ?? 0) !== 0) return [...argv];
  return ['setpriv', `--reuid=${id.uid}`, `--regid=${id.gid}`, '--init-groups', '--reset-env', '--', ...argv];
}

/** A new temp directory owned by the unprivileged identity (so its commands can write there). */
export function unprivilegedTempDir(prefix = 'canvos-unpriv-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const id = unprivilegedIdentity();
  if (id && (process.getuid?.() ?? 0) === 0) chownSync(dir, id.uid, id.gid);
  return dir;
}
