/**
 * `spectro-luet-auth.yaml`: the credentials CanvOS appends to luet's repository config for SPECTRO_LUET_REPO
 * (`auth: {username, password, serveraddress}`, Earthfile 403–404). canvos-lite pulls the k8s packages as images
 * from that repository, so the same file authenticates those pulls. Its values are never echoed.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { CanvosError } from '../errors.js';
import type { Credentials } from '../registry/credentials.js';
import { normalizeRegistry } from '../registry/reference.js';
import type { RegistryTransportOptions } from '../transports/registry/registry-image.js';
import type { BuildConfig, WarningHandler } from './resolve.js';

/** The file name CanvOS reads, in the project directory. */
export const LUET_AUTH_FILE = 'spectro-luet-auth.yaml';

/** Credentials read from spectro-luet-auth.yaml. */
export interface LuetAuth {
  /** Path of the file (for messages). */
  file: string;
  credentials: Credentials;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** Read `<projectDir>/spectro-luet-auth.yaml`; undefined when absent. Malformed content is ERR_CONFIG (values never shown). */
export async function loadLuetAuth(
  projectDir: string,
  c: Pick<BuildConfig, 'spectroLuetRepo'>,
  onWarning?: WarningHandler,
): Promise<LuetAuth | undefined> {
  const file = join(projectDir, LUET_AUTH_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CanvosError('ERR_CONFIG', `cannot read ${file}: ${(e as Error).message}`, {
      hint: 'make the file readable, or remove it',
    });
  }
  const bad = (what: string): CanvosError =>
    new CanvosError('ERR_CONFIG', `${file}: ${what}`, {
      hint: 'write it as CanvOS documents: auth: {username: USER, password: PASSWORD, serveraddress: REGISTRY}',
    });
  let doc: unknown;
  try {
    doc = parse(text);
  } catch {
    throw bad('not valid YAML'); // the parser's message may quote the secret
  }
  const auth = (doc as { auth?: unknown } | null)?.auth;
  if (typeof auth !== 'object' || auth === null) throw bad('no auth: mapping');
  const a = auth as Record<string, unknown>;
  let username = str(a.username);
  let password = str(a.password);
  const encoded = str(a.auth);
  if (!username && encoded) {
    const plain = Buffer.from(encoded, 'base64').toString('utf8');
    const i = plain.indexOf(':');
    if (i <= 0) throw bad('auth.auth is not base64 of USER:PASSWORD');
    username = plain.slice(0, i);
    password = plain.slice(i + 1);
  }
  const credentials: Credentials = {
    username,
    password,
    identityToken: str(a.identitytoken),
    registryToken: str(a.registrytoken),
  };
  if (!(username && password) && !credentials.identityToken && !credentials.registryToken)
    throw bad('auth: needs username and password (or auth, identitytoken, registrytoken)');
  const server = str(a.serveraddress);
  const luetRegistry = luetRegistryOf(c);
  if (server && normalizeRegistry(server.replace(/^https?:\/\//, '').replace(/\/.*$/, '')) !== luetRegistry) {
    onWarning?.(
      'W_LUET_AUTH_SERVER',
      `${file}: serveraddress ${server} is not the registry of SPECTRO_LUET_REPO (${luetRegistry}); the credentials are used for SPECTRO_LUET_REPO, as luet does`,
    );
  }
  return { file, credentials };
}

function luetRegistryOf(c: Pick<BuildConfig, 'spectroLuetRepo'>): string {
  return normalizeRegistry(c.spectroLuetRepo.split('/')[0] ?? '');
}

/** True when `ref` is an image of the luet repository (SPECTRO_LUET_REPO/luet-repo-…), which the file authenticates. */
export function isLuetImage(c: Pick<BuildConfig, 'spectroLuetRepo'>, ref: string): boolean {
  return ref.replace(/^docker:\/\//, '').startsWith(`${c.spectroLuetRepo}/`);
}

/** Registry options for pulling `ref`: the luet credentials for luet images, else `base` unchanged. */
export function registryOptionsFor(
  c: Pick<BuildConfig, 'spectroLuetRepo'>,
  ref: string,
  base: RegistryTransportOptions | undefined,
  auth: LuetAuth | undefined,
): RegistryTransportOptions | undefined {
  if (!auth || !isLuetImage(c, ref)) return base;
  return { ...base, credentials: auth.credentials };
}

/** An authentication failure on a luet image, with a hint naming spectro-luet-auth.yaml. Other errors pass through. */
export function luetAuthError(
  c: Pick<BuildConfig, 'spectroLuetRepo'>,
  ref: string,
  e: unknown,
  auth: LuetAuth | undefined,
  projectDir: string,
): unknown {
  if (!CanvosError.is(e) || e.code !== 'ERR_REGISTRY_AUTH' || !isLuetImage(c, ref)) return e;
  const hint = auth
    ? `check the credentials in ${auth.file} (used for SPECTRO_LUET_REPO=${c.spectroLuetRepo})`
    : `put the credentials of SPECTRO_LUET_REPO in ${join(projectDir, LUET_AUTH_FILE)} (auth: {username, password, serveraddress}), as for CanvOS, or log in to ${luetRegistryOf(c)}`;
  return new CanvosError('ERR_REGISTRY_AUTH', e.message, { hint, cause: e });
}
