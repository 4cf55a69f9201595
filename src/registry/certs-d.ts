/**
 * Registry TLS material as containers-certs.d(5) lays it out: for a registry `HOST[:PORT]`, the directory
 * `<certs.d>/HOST[:PORT]/` holds CA certificates (`*.crt`) and client certificate pairs (`NAME.cert` + `NAME.key`).
 * Without an explicit directory the first existing `HOST[:PORT]/` of `~/.config/containers/certs.d`,
 * `/etc/containers/certs.d` and `/etc/docker/certs.d` is used (containers/image's order, one directory only); an
 * explicit `certsDir` is used itself, like skopeo's `--cert-dir`, plus its `HOST[:PORT]/` sub-directory. Every file
 * is read and checked up front: an unreadable or invalid one, or half of a client pair, is ERR_CONFIG naming the
 * file. Key material never appears in errors or logs.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { debuglog } from 'node:util';
import { CanvosError } from '../errors.js';
import { DOCKER_HUB_ENDPOINT } from './reference.js';

const debug = debuglog('canvos');

/** Where {@link loadRegistryCerts} looks, and what it may read (a subset of RegistryHttpOptions). */
export interface RegistryCertOptions {
  /** Directory used for every registry (`*.crt`, `*.pem`, `*.cert` + `*.key`), plus its `HOST[:PORT]/` sub-directory. Default: none. */
  certsDir?: string | undefined;
  /** Extra CA certificate files (PEM). Default: []. */
  caFiles?: string[] | undefined;
  /**
   * certs.d roots searched for `HOST[:PORT]/` when `certsDir` is not given; the first existing one is used.
   * Default: {@link defaultCertsDirs} (`~/.config/containers/certs.d`, `/etc/containers/certs.d`, `/etc/docker/certs.d`).
   */
  certsDirs?: string[] | undefined;
  /** Environment to read HOME from. Default: process.env. */
  env?: NodeJS.ProcessEnv | undefined;
}

/** CAs and the client certificate for one registry. */
export interface RegistryCerts {
  /** PEM CA certificates (added to Node's root store). */
  cas: string[];
  /** The client certificate pair (the first `NAME.cert` in name order), when one is configured. */
  client?: { cert: string; /** PEM private key: never logged. */ key: string; certFile: string } | undefined;
  /** Directories read, for debugging. */
  dirs: string[];
}

/** The certs.d roots containers/image searches, in its order. */
export function defaultCertsDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  return [
    join(env.HOME || homedir(), '.config', 'containers', 'certs.d'),
    '/etc/containers/certs.d',
    '/etc/docker/certs.d',
  ];
}

const HINT =
  'fix or remove the file; certs.d holds CA certificates as *.crt and client pairs as NAME.cert + NAME.key (PEM)';

function bad(file: string, why: string): CanvosError {
  return new CanvosError('ERR_CONFIG', `${file}: ${why}`, { hint: HINT });
}

async function readPem(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw bad(file, `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** A CA file: every PEM block must be a certificate, and there must be one. */
async function readCa(file: string): Promise<string> {
  const pem = await readPem(file);
  const blocks = pem.match(/-----BEGIN [^-]+-----[\s\S]*?-----END [^-]+-----/g) ?? [];
  if (blocks.length === 0) throw bad(file, 'no PEM certificate in the file');
  for (const b of blocks) {
    try {
      new X509Certificate(b);
    } catch (e) {
      throw bad(file, `not a valid PEM certificate (${(e as Error).message})`);
    }
  }
  return pem;
}

/** A client pair: the certificate must parse and the key must be its (unencrypted) private key. */
async function readPair(certFile: string, keyFile: string): Promise<{ cert: string; key: string; certFile: string }> {
  const cert = await readPem(certFile);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (e) {
    throw bad(certFile, `not a valid PEM client certificate (${(e as Error).message})`);
  }
  const key = await readPem(keyFile);
  let keyObject: KeyObject;
  try {
    // OpenSSL's message names the failure, never the key bytes.
    keyObject = createPrivateKey({ key, format: 'pem' });
  } catch (e) {
    throw bad(keyFile, `not a valid unencrypted PEM private key (${(e as Error).message.split('\n')[0]})`);
  }
  if (!x509.checkPrivateKey(keyObject))
    throw bad(keyFile, `is not the private key of the client certificate ${certFile}`);
  return { cert, key, certFile };
}

/** Read one directory; `explicit` directories must exist, `pem` also accepts `*.pem` CAs (`--cert-dir`). */
async function readDir(dir: string, out: RegistryCerts, explicit: boolean, pem: boolean): Promise<void> {
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (!explicit && code === 'ENOENT') return;
    throw new CanvosError('ERR_CONFIG', `cannot read certificates directory ${dir}: ${code ?? (e as Error).message}`, {
      hint: 'check the --cert-dir / certsDir option and the directory permissions',
    });
  }
  out.dirs.push(dir);
  const has = new Set(names);
  for (const n of names) {
    const file = join(dir, n);
    if (n.endsWith('.crt') || (pem && n.endsWith('.pem'))) out.cas.push(await readCa(file));
    else if (n.endsWith('.cert')) {
      const keyName = `${n.slice(0, -'.cert'.length)}.key`;
      if (!has.has(keyName)) throw bad(file, `client certificate without its key ${keyName}`);
      const pair = await readPair(file, join(dir, keyName));
      if (out.client) debug('certs.d: %s ignored, %s is used', file, out.client.certFile);
      else out.client = pair;
    } else if (n.endsWith('.key')) {
      const certName = `${n.slice(0, -'.key'.length)}.cert`;
      if (!has.has(certName))
        throw bad(file, `client key without its certificate ${certName} (CA certificates use .crt)`);
    }
  }
}

/**
 * Names of the `HOST[:PORT]/` directory for `endpoint`. Docker Hub's is `registry-1.docker.io` for containers/image
 * and Docker (the host they connect to); the host this client connects to is accepted as well.
 */
export function certsDirNames(endpoint: string): string[] {
  return endpoint === DOCKER_HUB_ENDPOINT ? ['registry-1.docker.io', endpoint] : [endpoint];
}

/** The first existing `root/HOST[:PORT]` directory; unreadable roots are skipped as containers/image does. */
async function findHostDir(roots: readonly string[], endpoint: string): Promise<string | undefined> {
  for (const dir of roots.flatMap((root) => certsDirNames(endpoint).map((n) => join(root, n)))) {
    try {
      await readdir(dir);
      return dir;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      if (code === 'EACCES' || code === 'EPERM') {
        debug('certs.d: %s not readable (%s), skipped', dir, code);
        continue;
      }
      throw new CanvosError(
        'ERR_CONFIG',
        `cannot read certificates directory ${dir}: ${code ?? (e as Error).message}`,
        { hint: 'check the directory permissions' },
      );
    }
  }
  return undefined;
}

/** Load the CAs and client certificate for the registry `endpoint` (`host[:port]`); see the file header. */
export async function loadRegistryCerts(opts: RegistryCertOptions, endpoint: string): Promise<RegistryCerts> {
  const out: RegistryCerts = { cas: [], dirs: [] };
  for (const f of opts.caFiles ?? []) out.cas.push(await readCa(f));
  if (opts.certsDir) {
    // The host directory first, so its client pair wins over one for every registry.
    for (const n of certsDirNames(endpoint)) await readDir(join(opts.certsDir, n), out, false, true);
    await readDir(opts.certsDir, out, true, true);
  } else {
    const dir = await findHostDir(opts.certsDirs ?? defaultCertsDirs(opts.env), endpoint);
    if (dir) await readDir(dir, out, true, false);
  }
  if (out.dirs.length)
    debug(
      'certs.d for %s: %s (%d CA files%s)',
      endpoint,
      out.dirs.join(', '),
      out.cas.length,
      out.client ? `, client certificate ${out.client.certFile}` : '',
    );
  return out;
}

const CLIENT_CERT_HINT =
  'registries that require client certificates need NAME.cert + NAME.key (and the CA as *.crt) in HOST:PORT/ of ~/.config/containers/certs.d, /etc/containers/certs.d or /etc/docker/certs.d, or in --cert-dir DIR';

/**
 * The error for a connection the registry refused at the TLS level because of the client certificate, or undefined.
 * Under TLS 1.2 the server's alert fails the handshake; under TLS 1.3 the handshake completes first and the server
 * then closes the connection before answering (undici: "other side closed" with nothing read), which is reported as
 * a probable cause rather than a certainty.
 */
export function clientCertError(what: string, e: unknown): CanvosError | undefined {
  const raw = (e as { code?: unknown }).code;
  const code = typeof raw === 'string' ? raw : '';
  if (
    /^ERR_SSL_.*ALERT_(BAD_CERTIFICATE|CERTIFICATE_REQUIRED|HANDSHAKE_FAILURE|UNKNOWN_CA|CERTIFICATE_EXPIRED|CERTIFICATE_REVOKED|CERTIFICATE_UNKNOWN|UNSUPPORTED_CERTIFICATE|ACCESS_DENIED)$/.test(
      code,
    )
  ) {
    return new CanvosError(
      'ERR_NETWORK',
      `${what} failed: the registry refused the TLS handshake (${code}): it requires a client certificate it accepts`,
      { cause: e, hint: CLIENT_CERT_HINT },
    );
  }
  const bytesRead = (e as { socket?: { bytesRead?: unknown } }).socket?.bytesRead;
  if (code === 'UND_ERR_SOCKET' && bytesRead === 0 && /\bhttps:\/\//.test(what)) {
    return new CanvosError(
      'ERR_NETWORK',
      `${what} failed: the registry closed the TLS connection without answering; it probably requires a client certificate (or rejected the one presented)`,
      {
        cause: e,
        hint: `${CLIENT_CERT_HINT}; otherwise check the network, proxy settings and that the registry is up`,
      },
    );
  }
  return undefined;
}
