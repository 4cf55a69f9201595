/**
 * Registry credentials lookup, like docker/podman/skopeo: explicit credentials, then auth files
 * (`REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`, `$DOCKER_CONFIG/config.json`, `~/.docker/config.json`),
 * with `credHelpers`/`credsStore` helpers (`docker-credential-<name> get`) and identity tokens.
 * Secrets are only ever returned to the caller, never put in errors or logs.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CanvosError } from '../errors.js';
import { DOCKER_HUB, normalizeRegistry } from './reference.js';

/** Credentials for one registry. `identityToken` is an OAuth2 refresh token (docker `identitytoken`). */
export interface Credentials {
  username?: string | undefined;
  password?: string | undefined;
  identityToken?: string | undefined;
  /** A ready-to-use bearer token (sent as is, no token exchange). */
  registryToken?: string | undefined;
}

/** Options controlling where credentials come from. */
export interface CredentialOptions {
  /** Explicit credentials; they override every file and helper. Default: none. */
  credentials?: Credentials | undefined;
  /** Auth files to read instead of the default search list. Default: the docker/podman search list. */
  authFiles?: string[] | undefined;
  /** Environment to read DOCKER_CONFIG, REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR, HOME, PATH from. Default: process.env. */
  env?: NodeJS.ProcessEnv | undefined;
  /** A credential helper that has not exited after this many ms is killed (ERR_REGISTRY_AUTH). Default: 30000. */
  timeoutMs?: number | undefined;
}

/** The key Docker uses for Docker Hub in `auths` and as the helper server URL. */
export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';

interface AuthFile {
  auths?: Record<
    string,
    { auth?: string; username?: string; password?: string; identitytoken?: string; registrytoken?: string }
  >;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

/** Default auth file search list, most specific first (podman order, then docker). */
export function defaultAuthFiles(env: NodeJS.ProcessEnv = process.env): string[] {
  const files: string[] = [];
  if (env.REGISTRY_AUTH_FILE) files.push(env.REGISTRY_AUTH_FILE);
  if (env.XDG_RUNTIME_DIR) files.push(join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  if (env.DOCKER_CONFIG) files.push(join(env.DOCKER_CONFIG, 'config.json'));
  files.push(join(env.HOME || homedir(), '.docker', 'config.json'));
  return files;
}

/** Normalise an `auths`/`credHelpers` key (scheme, path and Docker Hub aliases) to a canonical registry name. */
export function normalizeAuthKey(key: string): string {
  return normalizeRegistry(key.trim());
}

async function readAuthFile(path: string): Promise<AuthFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR')
      return undefined;
    throw new CanvosError('ERR_CONFIG', `cannot read registry auth file ${path}: ${(e as Error).message}`, {
      hint: 'check the file permissions',
    });
  }
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null ? parsed : undefined;
  } catch {
    throw new CanvosError('ERR_CONFIG', `registry auth file ${path} is not valid JSON`, {
      hint: 'fix or remove the file',
    });
  }
}

function fromAuthEntry(path: string, key: string, e: NonNullable<AuthFile['auths']>[string]): Credentials | undefined {
  let username = e.username;
  let password = e.password;
  if (e.auth) {
    const decoded = Buffer.from(e.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) {
      throw new CanvosError(
        'ERR_CONFIG',
        `registry auth file ${path}: the "auth" field for ${key} is not base64 of user:password`,
        {
          hint: 'log in again (docker login / podman login) to rewrite it',
        },
      );
    }
    username = decoded.slice(0, colon);
    password = decoded.slice(colon + 1);
  }
  const creds: Credentials = {
    username,
    password,
    identityToken: e.identitytoken || undefined,
    registryToken: e.registrytoken || undefined,
  };
  if (!creds.username && !creds.password && !creds.identityToken && !creds.registryToken) return undefined;
  return creds;
}

/** The server URL string given to a credential helper for a registry. */
function helperServerUrl(registry: string, key: string | undefined): string {
  if (key !== undefined) return key;
  return registry === DOCKER_HUB ? DOCKER_HUB_AUTH_KEY : registry;
}

/**
 * Run `docker-credential-<helper> get` with the server URL on stdin. Returns undefined when the helper says it
 * has no credentials for that server.
 */
export async function runCredentialHelper(
  helper: string,
  serverUrl: string,
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = 30_000,
): Promise<Credentials | undefined> {
  const bin = `docker-credential-${helper}`;
  const { code, stdout, stderr, spawnError, timedOut } = await new Promise<{
    code: number | null;
    stdout: string;
    stderr: string;
    spawnError?: NodeJS.ErrnoException;
    timedOut?: boolean;
  }>((resolve) => {
    // Loaded here, not at start-up: most runs use no credential helper.
    const child = process.getBuiltinModule('node:child_process').spawn(bin, ['get'], {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    // Killed when it outlives the timeout, or this process (an interrupted command must not leave it running).
    const kill = (): void => void child.kill('SIGKILL');
    const timer = setTimeout(() => {
      kill();
      resolve({ code: null, stdout: out, stderr: err, timedOut: true });
    }, timeoutMs);
    process.once('exit', kill);
    const done = (r: {
      code: number | null;
      stdout: string;
      stderr: string;
      spawnError?: NodeJS.ErrnoException;
    }): void => {
      clearTimeout(timer);
      process.off('exit', kill);
      resolve(r);
    };
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
    });
    child.on('error', (e: NodeJS.ErrnoException) => {
      done({ code: null, stdout: out, stderr: err, spawnError: e });
    });
    child.on('close', (c) => {
      done({ code: c, stdout: out, stderr: err });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(serverUrl);
  });
  if (timedOut) {
    throw new CanvosError(
      'ERR_REGISTRY_AUTH',
      `credential helper ${bin} did not answer for ${serverUrl} within ${Math.round(timeoutMs / 1000)} s and was killed`,
      {
        hint: `run "echo ${serverUrl} | ${bin} get" to see why (it may wait for a keyring unlock), or raise --timeout`,
      },
    );
  }
  if (spawnError) {
    if (spawnError.code === 'ENOENT') {
      throw new CanvosError(
        'ERR_REGISTRY_AUTH',
        `credential helper ${bin} (configured for ${serverUrl}) is not on PATH`,
        {
          hint: `install ${bin}, or remove it from credHelpers/credsStore in your docker config.json`,
        },
      );
    }
    throw new CanvosError('ERR_REGISTRY_AUTH', `credential helper ${bin} could not be run: ${spawnError.message}`, {
      hint: 'check the helper is executable',
    });
  }
  if (code !== 0) {
    const msg = `${stdout}\n${stderr}`;
    if (/credentials not found|not found in native keychain|no credentials/i.test(msg)) return undefined;
    // Helper output may echo secrets; do not include it.
    throw new CanvosError('ERR_REGISTRY_AUTH', `credential helper ${bin} failed for ${serverUrl} (exit ${code})`, {
      hint: `run "echo ${serverUrl} | ${bin} get" to see why`,
    });
  }
  let parsed: { Username?: string; Secret?: string };
  try {
    parsed = JSON.parse(stdout) as { Username?: string; Secret?: string };
  } catch {
    throw new CanvosError(
      'ERR_REGISTRY_AUTH',
      `credential helper ${bin} printed something that is not JSON for ${serverUrl}`,
      {
        hint: 'the helper must print {"Username":…,"Secret":…}',
      },
    );
  }
  if (!parsed.Secret) return undefined;
  // Docker convention: Username "<token>" means the secret is an identity (refresh) token.
  if (parsed.Username === '<token>') return { identityToken: parsed.Secret };
  return { username: parsed.Username, password: parsed.Secret };
}

/**
 * Find credentials for a canonical registry name (`docker.io`, `ghcr.io`, `localhost:5000`).
 * Order: explicit credentials; then for each auth file in order: `credHelpers[registry]`, `auths[registry]`,
 * `credsStore`. Returns undefined for anonymous access.
 */
export async function resolveCredentials(
  registry: string,
  opts: CredentialOptions = {},
): Promise<Credentials | undefined> {
  if (opts.credentials) return opts.credentials;
  const env = opts.env ?? process.env;
  const reg = normalizeRegistry(registry);
  for (const path of opts.authFiles ?? defaultAuthFiles(env)) {
    const file = await readAuthFile(path);
    if (!file) continue;
    const helperKey = Object.keys(file.credHelpers ?? {}).find((k) => normalizeAuthKey(k) === reg);
    if (helperKey !== undefined) {
      const helper = file.credHelpers?.[helperKey];
      if (helper) return runCredentialHelper(helper, helperServerUrl(reg, undefined), env, opts.timeoutMs);
    }
    const authKey = Object.keys(file.auths ?? {}).find((k) => normalizeAuthKey(k) === reg);
    const entry = authKey !== undefined ? file.auths?.[authKey] : undefined;
    if (authKey !== undefined && entry) {
      const creds = fromAuthEntry(path, authKey, entry);
      if (creds) return creds;
    }
    if (file.credsStore) {
      // With a credsStore, `auths` holds empty placeholders; the helper knows the server URL as docker wrote it.
      const creds = await runCredentialHelper(file.credsStore, helperServerUrl(reg, authKey), env, opts.timeoutMs);
      if (creds) return creds;
    }
  }
  return undefined;
}
