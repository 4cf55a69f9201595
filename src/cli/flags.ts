/**
 * Small helpers shared by the command modules: usage errors that point at the command's --help, and
 * USER:PASSWORD credential flags (whose value is never echoed).
 */
import { access, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { CanvosError, redactText } from '../errors.js';
import type { DiskFormat } from '../disk/convert.js';
import { parsePlatform, type Platform } from '../image/platform.js';
import { echo } from '../util/echo.js';
import type { BlobPartsOptions } from '../registry/blob-parts.js';
import { setToolTimeouts } from '../util/run-tool.js';

/**
 * `check()`, a library check of a flag's value, with its CanvosError refused as a usage error (exit 2, like every
 * other bad flag value) that keeps the library's hint (its range); `message` replaces the library's message.
 */
export function asUsageError<T>(check: () => T, message?: string): T {
  try {
    return check();
  } catch (e) {
    if (e instanceof CanvosError) throw new CanvosError('ERR_USAGE', message ?? e.message, { hint: e.hint });
    throw e;
  }
}

/** An ERR_USAGE error whose hint names `canvos-lite <command> --help`. */
export function usageError(command: string, message: string): CanvosError {
  return new CanvosError('ERR_USAGE', message, { hint: `run canvos-lite ${command} --help for the options` });
}

/** Parse a `USER:PASSWORD` flag value; the error never contains the value (it holds a password). */
export function parseCreds(
  command: string,
  v: string | undefined,
  flag: string,
): { username: string; password: string } | undefined {
  if (v === undefined) return undefined;
  const i = v.indexOf(':');
  if (i <= 0) throw usageError(command, `${flag} must be USER:PASSWORD`);
  return { username: v.slice(0, i), password: v.slice(i + 1) };
}

/** Parse an integer flag from 1 to `max`; undefined when not given. */
export function parseIntFlag(command: string, v: string | undefined, flag: string, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max)
    throw usageError(command, `${flag} must be an integer from 1 to ${max}, not ${JSON.stringify(v)}`);
  return n;
}

/** `--platform OS/ARCH[,OS/ARCH]` values (repeatable, comma-separated) as platforms. */
export function parsePlatformFlags(given: readonly string[] | undefined): Platform[] {
  // An empty value (`--platform ""`, `a,,b`) is an error from parsePlatform, not silently "every platform".
  return (given ?? []).flatMap((p) => p.split(',')).map(parsePlatform);
}

/** `--format` / `--disk-format` values (repeatable, comma-separated) as conversion formats; `raw` is implied. */
export function parseDiskFormats(command: string, given: readonly string[]): DiskFormat[] {
  const out = new Set<DiskFormat>();
  for (const f of given
    .flatMap((g) => g.split(','))
    .map((x) => x.trim())
    .filter(Boolean)) {
    if (f === 'raw') continue;
    if (f !== 'qcow2' && f !== 'vhd' && f !== 'raw.gz')
      throw usageError(command, `the disk format must be raw, raw.gz, qcow2 or vhd, not ${JSON.stringify(f)}`);
    out.add(f);
  }
  return [...out];
}

/**
 * Check `--output oci:DIR` of build / build-all: a `:TAG` after the directory is refused (every image gets its
 * provider tag), so `oci:out:bad tag` is not silently a directory named `out:bad tag`.
 */
export function checkOciOutput(command: string, v: string | undefined): void {
  if (v === undefined) return;
  if (!/^oci:.+/.test(v)) throw usageError(command, `--output must be oci:DIR, not ${echo(v)}`);
  if (/:[^/]*$/.test(v.slice(4)))
    throw usageError(
      command,
      `--output ${echo(v)} names a tag: give oci:DIR only (each image is tagged <distribution>-<version>-<PE_VERSION>)`,
    );
}

/** parseArgs options for the source/destination registry flags shared by copy and mirror. */
export const SRC_DEST_REGISTRY_OPTIONS = {
  'src-creds': { type: 'string' },
  'dest-creds': { type: 'string' },
  authfile: { type: 'string' },
  'src-insecure': { type: 'boolean' },
  'dest-insecure': { type: 'boolean' },
  'cert-dir': { type: 'string' },
  'blob-parts': { type: 'string' },
} as const;

/** Help line for --blob-parts (copy and mirror), the option name padded to `width`. */
export function blobPartsHelp(width: number): string {
  return `${'--blob-parts N'.padEnd(width)}streams per slow blob of 2 MiB+, split by Range (default 8; 1 = one GET per blob, for proxies that mishandle Range)`;
}

/** Parse `--blob-parts N` (1–16) into the registry option: 1 turns ranged reads off. */
export function parseBlobParts(command: string, v: string | undefined): BlobPartsOptions | false | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 16)
    throw usageError(command, `--blob-parts must be an integer from 1 to 16, not ${JSON.stringify(v)}`);
  return n === 1 ? false : { parallel: n };
}

/** parseArgs option of `--timeout SECONDS`, accepted by every command that reaches the network. */
export const TIMEOUT_OPTION = { timeout: { type: 'string' } } as const;

/** Help line for --timeout, the option name padded to `width`. */
export function timeoutHelp(width: number): string {
  return `${'--timeout SECONDS'.padEnd(width)}network timeout for connecting, response headers and body stalls, and for credential helpers (default 30; retries of one request stop after twice that); also stops a spawned tool (xorriso, mke2fs, …) silent that long (default 120)`;
}

/** Parse `--timeout SECONDS` (1–3600, decimals allowed) into milliseconds. */
export function parseTimeout(command: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+(\.\d+)?$/.test(v) || !(n >= 1 && n <= 3600))
    throw usageError(
      command,
      `--timeout must be a number of seconds from 1 to 3600, not ${JSON.stringify(v.slice(0, 40))}`,
    );
  const ms = Math.round(n * 1000);
  // Spawned tools (xorriso, mke2fs, …) are stopped after this long without output or progress.
  setToolTimeouts({ idleMs: ms });
  return ms;
}

/**
 * Check the registry-access paths as skopeo does, before any work: `--authfile` must be a readable file (a missing or
 * dangling one is an error, not silently ignored) and `--cert-dir` a readable directory.
 */
export async function checkAccessPaths(
  command: string,
  values: { authfile?: string | undefined; 'cert-dir'?: string | undefined },
  cwd: string,
): Promise<void> {
  const check = async (flag: string, p: string | undefined, dir: boolean): Promise<void> => {
    if (p === undefined) return;
    const abs = resolve(cwd, p);
    const st = await stat(abs).catch((e: unknown) => e as NodeJS.ErrnoException);
    const what = dir ? 'a directory' : 'a file';
    const bad =
      st instanceof Error
        ? st.code === 'ENOENT'
          ? 'does not exist (or is a dangling link)'
          : `cannot be read (${st.code ?? st.message})`
        : dir !== st.isDirectory()
          ? `is not ${what}`
          : await access(abs, 4).then(
              () => undefined,
              (e: unknown) => `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
            );
    if (bad)
      throw new CanvosError('ERR_USAGE', `${flag} ${p} ${bad}`, {
        hint: `give ${flag} ${what} that exists, or leave it out (run canvos-lite ${command} --help)`,
      });
  };
  await check('--authfile', values.authfile, false);
  await check('--cert-dir', values['cert-dir'], true);
  if (values['cert-dir'] !== undefined) await checkCertDir(resolve(cwd, values['cert-dir']));
}

/**
 * Read every certificate of a `--cert-dir` (its own files and each `HOST[:PORT]/` sub-directory) before any work,
 * so that a garbage file is exit 3 naming it in every command, not a per-image failure after outputs were started.
 */
async function checkCertDir(dir: string): Promise<void> {
  const { readdir } = await import('node:fs/promises');
  const { loadRegistryCerts } = await import('../registry/certs-d.js');
  const hosts = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  // A name no sub-directory has checks the directory's own files.
  for (const host of [...hosts, 'canvos-lite.invalid']) await loadRegistryCerts({ certsDir: dir }, host);
}

/** Warnings of one code printed before the rest are only counted (an 80k-key file must not flood stderr). */
const WARNINGS_PER_CODE = 100;

/**
 * The CLI's `onWarning` sink: `warning: MESSAGE [CODE]` on stderr, secrets masked, cut to one line of at most 600
 * characters; after 100 warnings of one code (more than every CanvOS argument can give) the rest are counted and summarised by `flush()` (called at exit).
 */
export function warningSink(stderr: NodeJS.WritableStream): {
  warn: (code: string, msg: string) => void;
  flush: () => void;
} {
  const counts = new Map<string, number>();
  return {
    warn(code, msg) {
      const n = (counts.get(code) ?? 0) + 1;
      counts.set(code, n);
      if (n > WARNINGS_PER_CODE) return;
      const line = redactText(msg.replace(/\s*\n\s*/g, ' '));
      stderr.write(`warning: ${line.length > 600 ? `${line.slice(0, 600)}…` : line} [${code}]\n`);
    },
    flush() {
      for (const [code, n] of counts)
        if (n > WARNINGS_PER_CODE)
          stderr.write(`warning: ${n - WARNINGS_PER_CODE} more warnings [${code}] not shown\n`);
      counts.clear();
    },
  };
}
