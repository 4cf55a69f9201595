/**
 * The flag sets several commands share, each as one parseArgs definition, one help text and one function that turns
 * the parsed values into library options:
 * - {@link JSON_OPTION}: `--json` (stdout gets only the JSON result; phases and summaries are not printed);
 * - {@link REGISTRY_OPTIONS}: one registry (`--creds`, `--authfile`, `--insecure`, `--cert-dir`, `--timeout`);
 * - {@link BASE_IMAGE_OPTIONS}: the registry of an image named by `--base` (`--insecure`, `--timeout`);
 * - {@link SRC_DEST_REGISTRY_OPTIONS} (flags.ts) with `--timeout`: source and destination registries (copy, mirror);
 * - the project configuration (CONFIG_OPTIONS, config-options.ts).
 * `--debug` and `--help` are global (main.ts).
 */
import { blobLocationsFromEnv, type BlobLocations } from '../cache/blob-locations.js';
import { parseImageSpec } from '../transports/resolve-location.js';
import type { RegistryTransportOptions } from '../transports/registry/registry-image.js';
import {
  checkAccessPaths,
  parseBlobParts,
  parseCreds,
  parseTimeout,
  SRC_DEST_REGISTRY_OPTIONS,
  TIMEOUT_OPTION,
  timeoutHelp,
  warningSink,
} from './flags.js';
import type { CliIo } from './types.js';

/** parseArgs option of `--json`. */
export const JSON_OPTION = { json: { type: 'boolean' } } as const;

/** How a command reports: phases on stderr unless --json, warnings always (`warning: MSG [CODE]`). */
export interface CommandOutput {
  /** A phase or summary line on stderr; nothing under --json. */
  say: (line: string) => void;
  /** The `onWarning` sink of the library calls. */
  warn: (code: string, msg: string) => void;
  /** Prints the warnings that were only counted; call once when the command ends. */
  flush: () => void;
  /** The result: `json` as one JSON line under --json, else `lines` (each ended by a newline). */
  result: (json: unknown, lines: readonly string[]) => void;
}

/** The {@link CommandOutput} of a command run with `--json` given or not. */
export function commandOutput(io: CliIo, json: boolean | undefined): CommandOutput {
  const sink = warningSink(io.stderr);
  return {
    say: (line) => {
      if (!json) io.stderr.write(`${line}\n`);
    },
    warn: sink.warn,
    flush: sink.flush,
    result: (value, lines) => {
      io.stdout.write(json ? `${JSON.stringify(value)}\n` : lines.map((l) => `${l}\n`).join(''));
    },
  };
}

/**
 * The blob-location cache of a command (`CANVOS_BLOB_LOCATIONS=0` turns it off), under `cacheDir` (`--cache-dir`) or
 * the blob cache's default; a cache it cannot write is one `W_BLOB_LOCATIONS_READONLY` warning.
 */
export function cliBlobLocations(io: CliIo, cacheDir?: string): BlobLocations | undefined {
  return blobLocationsFromEnv(io.env, cacheDir, (code, msg) => {
    warningSink(io.stderr).warn(code, msg);
  });
}

/** The registry host of each image reference that names one (docker:// or bare); layouts and archives have none. */
export function registryHosts(refs: readonly string[]): string[] {
  const hosts = refs.flatMap((r) => {
    const spec = parseImageSpec(r);
    return spec.transport === 'docker' ? [spec.ref.registry] : [];
  });
  return [...new Set(hosts)];
}

/** parseArgs options of one registry: `--creds`, `--authfile`, `--insecure`, `--cert-dir`, `--timeout`. */
export const REGISTRY_OPTIONS = {
  creds: { type: 'string' },
  authfile: { type: 'string' },
  insecure: { type: 'boolean' },
  'cert-dir': { type: 'string' },
  ...TIMEOUT_OPTION,
} as const;

/** Usage lines of {@link REGISTRY_OPTIONS}, each option name padded to `width`. */
export function registryHelp(width: number): string {
  return [
    `${'--creds USER:PASS'.padEnd(width)}registry credentials (never echoed)`,
    `${'--authfile FILE'.padEnd(width)}read credentials from this auth.json / config.json`,
    `${'--insecure'.padEnd(width)}reach the registry over plain HTTP`,
    `${'--cert-dir DIR'.padEnd(width)}extra CA certificates`,
    timeoutHelp(width),
  ].join('\n  ');
}

/** The parsed values of {@link REGISTRY_OPTIONS}. */
export interface RegistryFlagValues {
  creds?: string | undefined;
  authfile?: string | undefined;
  insecure?: boolean | undefined;
  'cert-dir'?: string | undefined;
  timeout?: string | undefined;
}

/** {@link REGISTRY_OPTIONS} as registry options; `--insecure` applies to the registries of `refs`. */
export async function registryFromFlags(
  command: string,
  values: RegistryFlagValues,
  refs: readonly string[],
  io: CliIo,
): Promise<RegistryTransportOptions> {
  const timeoutMs = parseTimeout(command, values.timeout);
  await checkAccessPaths(command, values, io.cwd);
  return {
    env: io.env,
    timeoutMs,
    credentials: parseCreds(command, values.creds, '--creds'),
    authFiles: values.authfile ? [values.authfile] : undefined,
    insecureRegistries: values.insecure ? registryHosts(refs) : undefined,
    certsDir: values['cert-dir'],
    blobLocations: cliBlobLocations(io),
  };
}

/** parseArgs options for the registry of an image named by `--base` (iso, disk, uki iso): `--insecure`, `--timeout`. */
export const BASE_IMAGE_OPTIONS = { insecure: { type: 'boolean' }, ...TIMEOUT_OPTION } as const;

/** {@link BASE_IMAGE_OPTIONS} as registry options; `--insecure` applies to the registries of `refs`. */
export function baseImageRegistry(
  command: string,
  values: { insecure?: boolean | undefined; timeout?: string | undefined },
  refs: readonly string[],
  io: CliIo,
): RegistryTransportOptions {
  return {
    env: io.env,
    timeoutMs: parseTimeout(command, values.timeout),
    insecureRegistries: values.insecure ? registryHosts(refs) : undefined,
    blobLocations: cliBlobLocations(io),
  };
}

/** parseArgs options of the source and destination registries (copy, mirror), `--timeout` included. */
export const SRC_DEST_OPTIONS = { ...SRC_DEST_REGISTRY_OPTIONS, ...TIMEOUT_OPTION } as const;

/** The parsed values of {@link SRC_DEST_OPTIONS}. */
export interface SrcDestFlagValues {
  'src-creds'?: string | undefined;
  'dest-creds'?: string | undefined;
  authfile?: string | undefined;
  'src-insecure'?: boolean | undefined;
  'dest-insecure'?: boolean | undefined;
  'cert-dir'?: string | undefined;
  'blob-parts'?: string | undefined;
  timeout?: string | undefined;
}

/** Registry options of each side; the hosts given are reached over plain HTTP when that side's --*-insecure is set. */
export interface SrcDestRegistries {
  source: (hosts: readonly string[]) => RegistryTransportOptions;
  destination: (hosts: readonly string[]) => RegistryTransportOptions;
}

/**
 * {@link SRC_DEST_OPTIONS} as registry options, checked before any work (values, --authfile and --cert-dir paths).
 * `extra` (e.g. `concurrency`) goes into both sides.
 */
export async function srcDestRegistries(
  command: string,
  values: SrcDestFlagValues,
  io: CliIo,
  extra: Partial<RegistryTransportOptions> = {},
): Promise<SrcDestRegistries> {
  const blobParts = parseBlobParts(command, values['blob-parts']);
  const timeoutMs = parseTimeout(command, values.timeout);
  await checkAccessPaths(command, values, io.cwd);
  const srcCreds = parseCreds(command, values['src-creds'], '--src-creds');
  const destCreds = parseCreds(command, values['dest-creds'], '--dest-creds');
  const blobLocations = cliBlobLocations(io);
  const side =
    (credentials: typeof srcCreds, insecure: boolean) =>
    (hosts: readonly string[]): RegistryTransportOptions => ({
      env: io.env,
      timeoutMs,
      blobParts,
      ...extra,
      credentials,
      authFiles: values.authfile ? [values.authfile] : undefined,
      insecureRegistries: insecure ? [...hosts] : undefined,
      certsDir: values['cert-dir'],
      blobLocations,
    });
  return {
    source: side(srcCreds, values['src-insecure'] === true),
    destination: side(destCreds, values['dest-insecure'] === true),
  };
}
