/**
 * One place that turns the errors Node and its libraries throw into CanvosErrors with a documented code, so every
 * command (and library caller through {@link toCanvosError}) reports them the same way:
 * - local filesystem errnos (ENOSPC, EACCES, EROFS, …) → ERR_FILESYSTEM (exit 20) naming the path, errno and a fix;
 * - zlib/zstd/tar damage → ERR_LAYER_CORRUPT (exit 7);
 * - connection failures and timeouts that escaped the registry client → ERR_NETWORK (exit 10).
 * Anything else stays unmapped: exit 1 is for bugs.
 */
import { CanvosError, redactText } from './errors.js';

/** The local filesystem errnos mapped to ERR_FILESYSTEM, with the fix each one suggests. */
export const FS_ERRNO_HINTS: Readonly<Record<string, string>> = {
  ENOSPC: 'free space on that filesystem (or point TMPDIR / the output at a larger one) and run again',
  EDQUOT: 'your disk quota is exhausted: free space, or write elsewhere',
  EFBIG: 'the file is larger than that filesystem allows: write to another filesystem',
  EACCES: 'check the permissions of that path (and of its parent directories) for the user running canvos-lite',
  EPERM: 'check the permissions and attributes of that path for the user running canvos-lite',
  EROFS: 'that filesystem is mounted read-only: write somewhere writable',
  ENOTDIR: 'a component of that path is a file, not a directory: fix the path',
  EEXIST: 'something already exists at that path: remove it or choose another path',
  EISDIR: 'that path is a directory, but a file is needed: give a file path',
  ENOTEMPTY: 'that directory is not empty: remove it or choose another path',
  ENAMETOOLONG: 'the path (or one of its names) is too long: use a shorter path',
  EMFILE: 'too many open files: raise the limit (ulimit -n) or lower --jobs',
  ENFILE: 'the system is out of file handles: raise fs.file-max or lower --jobs',
  ELOOP: 'that path has a symbolic-link loop: fix the links',
  EXDEV: 'source and destination are on different filesystems: keep them on one',
  EIO: 'the disk reported an I/O error: check the device (dmesg)',
  ENOENT: 'that path does not exist: check it (a parent directory may be missing)',
  ETXTBSY: 'the file is in use by a running program: stop it and run again',
  EBUSY: 'the path is busy (a mount point or in use): choose another path',
};

const CORRUPT_CODES = new Set([
  'Z_DATA_ERROR',
  'Z_BUF_ERROR',
  'Z_STREAM_ERROR',
  'Z_NEED_DICT',
  'ERR_ZLIB_INITIALIZATION_FAILED',
]);
const NET_TIMEOUTS = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);
const NET_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  ...NET_TIMEOUTS,
]);

type Errno = Error & { code?: unknown; syscall?: unknown; path?: unknown; dest?: unknown; errno?: unknown };

/** The first error in the cause chain (depth ≤ 5) that matches. */
function findCause(e: unknown, pred: (x: Errno) => boolean): Errno | undefined {
  for (let cur: unknown = e, d = 0; cur && typeof cur === 'object' && d < 6; d++) {
    if (pred(cur as Errno)) return cur as Errno;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

/** An ERR_FILESYSTEM error for a Node errno error: `open /out/x.iso: ENOSPC (no space left on device)`. */
export function fsError(e: Errno, what?: string): CanvosError {
  const code = String(e.code);
  const path = typeof e.path === 'string' ? e.path : undefined;
  const dest = typeof e.dest === 'string' ? ` -> ${e.dest}` : '';
  const reason = e.message
    .replace(/^[A-Z]+: /, '')
    .replace(/,\s*\S+ .*$/, '')
    .trim();
  const op = typeof e.syscall === 'string' ? e.syscall : 'access';
  const subject = what ?? (path ? `${op} ${path}${dest}` : op);
  return new CanvosError('ERR_FILESYSTEM', `${subject}: ${code}${reason && reason !== code ? ` (${reason})` : ''}`, {
    cause: e,
    hint: FS_ERRNO_HINTS[code] ?? 'check that path',
    details: { errno: code, ...(path ? { path } : {}) },
  });
}

/**
 * Map an error that is not a CanvosError (or is ERR_INTERNAL) to the CanvosError the user should see, or undefined
 * when it is a bug. CanvosErrors are returned as they are.
 */
export function toCanvosError(e: unknown): CanvosError | undefined {
  if (CanvosError.is(e) && e.code !== 'ERR_INTERNAL') return e;
  const fs = findCause(
    e,
    (x) =>
      typeof x.code === 'string' && x.code in FS_ERRNO_HINTS && typeof x.syscall === 'string' && !NET_CODES.has(x.code),
  );
  if (fs) return fsError(fs);
  const z = findCause(
    e,
    (x) =>
      (typeof x.code === 'string' && CORRUPT_CODES.has(x.code)) ||
      /unexpected end of file|incorrect header check|invalid (block type|distance|stored block|code lengths)|zstd/i.test(
        x.message,
      ),
  );
  if (z) {
    return new CanvosError(
      'ERR_LAYER_CORRUPT',
      `compressed data is corrupt or truncated: ${z.message.split('\n')[0]}`,
      { cause: e, hint: 'the blob or file is damaged: fetch or copy it again' },
    );
  }
  const net = findCause(e, (x) => typeof x.code === 'string' && NET_CODES.has(x.code));
  if (net) {
    const code = String(net.code);
    const host = typeof (net as { host?: unknown }).host === 'string' ? ` to ${(net as { host?: string }).host}` : '';
    const msg = NET_TIMEOUTS.has(code)
      ? `network timeout${host}: no data within the time limit (${code})`
      : `network error${host}: ${redactText(net.message.split('\n')[0] ?? code)} (${code})`;
    return new CanvosError('ERR_NETWORK', msg, {
      cause: e,
      hint: 'check the network and that the server is up; raise --timeout for a slow link',
    });
  }
  return CanvosError.is(e) ? e : undefined;
}

/** Give a path-less errno error (a failed `write`) the path it was about, so its message can name it. */
export function withPath<T>(e: T, path: string): T {
  const x = e as Errno | undefined;
  if (x && typeof x === 'object' && typeof x.code === 'string' && x.code in FS_ERRNO_HINTS && x.path === undefined)
    x.path = path;
  return e;
}
