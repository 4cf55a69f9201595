/**
 * Small helpers shared by the command modules: usage errors that point at the command's --help, and
 * USER:PASSWORD credential flags (whose value is never echoed).
 */
import { CanvosError } from '../errors.js';
import type { BlobPartsOptions } from '../registry/blob-parts.js';

/** An ERR_USAGE error whose hint names `canvos-lite <command> --help`. */
export function usageError(command: string, message: string): CanvosError {
  return new CanvosError('ERR_USAGE', message, { hint: `run canvos-lite ${command} --help for the options` });
}

/** Parse a `USER:PASSWORD` flag value; the error never contains the value (it holds a password). */
export function parseCreds(command: string, v: string | undefined, flag: string): { username: string; password: string } | undefined {
  if (v === undefined) return undefined;
  const i = v.indexOf(':');
  if (i <= 0) throw usageError(command, `${flag} must be USER:PASSWORD`);
  return { username: v.slice(0, i), password: v.slice(i + 1) };
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
  return `${'--blob-parts N'.padEnd(width)}streams per slow blob of 2 MiB+, split by Range (default 6; 1 = one GET per blob, for proxies that mishandle Range)`;
}

/** Parse `--blob-parts N` (1–16) into the registry option: 1 turns ranged reads off. */
export function parseBlobParts(command: string, v: string | undefined): BlobPartsOptions | false | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 16) throw usageError(command, `--blob-parts must be an integer from 1 to 16, not ${JSON.stringify(v)}`);
  return n === 1 ? false : { parallel: n };
}
