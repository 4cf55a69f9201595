/**
 * `uki genkey`: Secure Boot keys in CanvOS's secure-boot/ layout (Earthfile uki-genkey / uki-byok, osbuilder-enki
 * genkey): private-keys/{PK,KEK,db}.key + tpm2-pcr-private.pem, public-keys/{PK,KEK,db}.pem, and
 * enrollment/{PK,KEK,db}.{der,esl,auth} (+ dbx.{esl,auth} when an exported dbx is given). KEK and db lists
 * also carry exported firmware keys (secure-boot/exported-keys/{KEK,db}) and, only when the user supplies them,
 * Microsoft's certificates; PK signs PK and KEK, KEK signs db and dbx.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CanvosError } from '../errors.js';
import { sourceDateEpochFromEnv } from '../util/source-date.js';
import { signVariable, type SecureBootVar } from './auth.js';
import { EFI_CERT_X509, MICROSOFT_OWNER, decodeEsl, encodeEsl, type EfiSignature } from './esl.js';
import { certDer, selfSignedCert, toPem } from './x509.js';

/** Options of {@link genkey}. */
export interface GenkeyOptions {
  /** The secure-boot directory (CanvOS: ./secure-boot). */
  dir: string;
  /** Common name of the certificates (CanvOS MY_ORG). Default: 'ACME Corp'. */
  org?: string;
  /** Certificate validity (CanvOS EXPIRATION_IN_DAYS). Default: 5475 (15 years). */
  expirationDays?: number;
  /**
   * Microsoft's certificates to add to KEK and db (CanvOS INCLUDE_MS_SECUREBOOT_KEYS=true): a directory with
   * KEK/ and db/ subdirectories of PEM or DER certificates (sbctl's layout). None are shipped with canvos-lite.
   * Exactly one of this and `skipMicrosoft` is required. Default: none.
   */
  microsoftKeysDir?: string;
  /** Leave Microsoft's certificates out (INCLUDE_MS_SECUREBOOT_KEYS=false). Default: false. */
  skipMicrosoft?: boolean;
  /**
   * Bring your own keys (UKI_BRING_YOUR_OWN_KEYS=true): read private-keys/{PK,KEK,db}.key and
   * public-keys/{PK,KEK,db}.pem instead of generating them; only enrollment/ is written. Default: false.
   */
  byok?: boolean;
  /** Extra db certificates, e.g. Spectro Cloud's system-extension certificate (ENROLL_SPECTRO_EXTENSION_CERT). */
  extraDbCerts?: string[];
  /** Timestamp of the .auth files. Default: SOURCE_DATE_EPOCH from `env`, else now. */
  timestamp?: Date;
  /** Replace existing generated keys. Default: false (refuses, keys lost can brick enrolled machines). */
  force?: boolean;
  /** Default: process.env. */
  env?: NodeJS.ProcessEnv;
  onWarning?: (code: string, message: string) => void;
}

/** What {@link genkey} wrote. */
export interface GenkeyResult {
  /** Paths written, relative to `dir`. */
  files: string[];
  /** The signature owner GUID of our own certificates. */
  owner: string;
  /** Number of certificates in KEK and db (ours + exported + Microsoft + extra). */
  counts: { KEK: number; db: number };
}

const KEYS = ['PK', 'KEK', 'db'] as const;
type KeyName = (typeof KEYS)[number];

interface Pair {
  key: KeyObject;
  cert: Buffer;
}

async function readCertsIn(dir: string): Promise<Buffer[]> {
  if (!existsSync(dir)) return [];
  const names = (await readdir(dir)).filter((n) => /\.(der|cer|crt|pem)$/i.test(n)).sort();
  return Promise.all(names.map(async (n) => parseCert(join(dir, n))));
}

async function parseCert(path: string): Promise<Buffer> {
  try {
    return certDer(await readFile(path));
  } catch (e) {
    throw new CanvosError('ERR_CONFIG', `${path}: not an X.509 certificate (PEM or DER)`, {
      cause: e,
      hint: 'pass certificate files (.pem, .der, .crt)',
    });
  }
}

async function loadPair(dir: string, name: KeyName): Promise<Pair> {
  const keyPath = join(dir, 'private-keys', `${name}.key`);
  const certPath = join(dir, 'public-keys', `${name}.pem`);
  for (const p of [keyPath, certPath]) {
    if (!existsSync(p))
      throw new CanvosError('ERR_CONFIG', `bring-your-own-keys: ${p} is missing`, {
        hint: 'put PK, KEK and db key pairs in secure-boot/private-keys/<name>.key and secure-boot/public-keys/<name>.pem',
      });
  }
  try {
    return { key: createPrivateKey(await readFile(keyPath)), cert: certDer(await readFile(certPath)) };
  } catch (e) {
    throw new CanvosError('ERR_CONFIG', `bring-your-own-keys: cannot read ${name} key pair (${(e as Error).message})`, {
      cause: e,
      hint: `${keyPath} must be a PEM private key and ${certPath} a certificate`,
    });
  }
}

async function exportedList(dir: string, name: string): Promise<EfiSignature[]> {
  const p = join(dir, 'exported-keys', name);
  if (!existsSync(p)) return [];
  try {
    return decodeEsl(await readFile(p));
  } catch (e) {
    throw new CanvosError('ERR_CONFIG', `${p}: not an EFI signature list (${(e as Error).message})`, {
      cause: e,
      hint: 'export it with efi-readvar -v <var> -o <file> on the target machine',
    });
  }
}

/** SOURCE_DATE_EPOCH as a date when set (a malformed value throws ERR_CONFIG), else undefined. */
function sourceDate(env: NodeJS.ProcessEnv): Date | undefined {
  return env.SOURCE_DATE_EPOCH ? new Date(sourceDateEpochFromEnv(env) * 1000) : undefined;
}

/** Generates (or, with `byok`, loads) the Secure Boot keys and writes CanvOS's secure-boot/ layout. */
export async function genkey(opts: GenkeyOptions): Promise<GenkeyResult> {
  const { dir, org = 'ACME Corp', expirationDays = 5475, byok = false, env = process.env } = opts;
  if (!Number.isInteger(expirationDays) || expirationDays < 1)
    throw new CanvosError('ERR_CONFIG', `expiration in days must be a positive integer, got ${expirationDays}`, {
      hint: 'CanvOS default: EXPIRATION_IN_DAYS=5475',
    });
  if (opts.microsoftKeysDir && opts.skipMicrosoft)
    throw new CanvosError('ERR_USAGE', 'Microsoft keys both included and skipped', {
      hint: 'give only one of --microsoft-keys and --skip-microsoft-keys',
    });
  if (!opts.microsoftKeysDir && !opts.skipMicrosoft) {
    throw new CanvosError(
      'ERR_CONFIG',
      'Microsoft Secure Boot certificates requested (INCLUDE_MS_SECUREBOOT_KEYS=true) but none given; canvos-lite ships none',
      {
        hint: 'pass --microsoft-keys DIR (DIR/KEK/*.der, DIR/db/*.der) or --skip-microsoft-keys (without them, option ROMs such as GPU firmware may not load)',
      },
    );
  }
  if (!byok && !opts.force && existsSync(join(dir, 'private-keys', 'PK.key'))) {
    throw new CanvosError(
      'ERR_CONFIG',
      `${join(dir, 'private-keys', 'PK.key')} exists; refusing to replace Secure Boot keys`,
      {
        hint: 'machines enrolled with the old keys only boot images signed by them; use --byok to re-sign enrollment files with them, or --force',
      },
    );
  }
  const timestamp = opts.timestamp ?? sourceDate(env) ?? new Date();
  const files: string[] = [];
  const put = async (rel: string, data: Buffer | string, mode: number): Promise<void> => {
    await writeFile(join(dir, rel), data, { mode });
    await chmod(join(dir, rel), mode);
    files.push(rel);
  };
  for (const d of ['enrollment', 'private-keys', 'public-keys'])
    await mkdir(join(dir, d), { recursive: true, mode: d === 'private-keys' ? 0o700 : 0o755 });

  const pairs = {} as Record<KeyName, Pair>;
  for (const name of KEYS) {
    if (byok) {
      pairs[name] = await loadPair(dir, name);
      continue;
    }
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const cert = selfSignedCert(privateKey, publicKey, { commonName: org, days: expirationDays, notBefore: timestamp });
    pairs[name] = { key: privateKey, cert };
    await put(`private-keys/${name}.key`, privateKey.export({ type: 'pkcs8', format: 'pem' }), 0o600);
    await put(`public-keys/${name}.pem`, toPem(cert), 0o644);
  }
  if (!byok) {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await put('private-keys/tpm2-pcr-private.pem', privateKey.export({ type: 'pkcs8', format: 'pem' }), 0o600);
  } else if (!existsSync(join(dir, 'private-keys', 'tpm2-pcr-private.pem'))) {
    opts.onWarning?.(
      'UKI_NO_PCR_KEY',
      `bring-your-own-keys: ${join(dir, 'private-keys', 'tpm2-pcr-private.pem')} is missing; UKIs built with these keys carry no signed PCR policy`,
    );
  }

  const owner = randomUUID();
  const own = (name: KeyName): EfiSignature => ({ type: EFI_CERT_X509, owner, data: pairs[name].cert });
  const ms = async (sub: 'KEK' | 'db'): Promise<EfiSignature[]> => {
    if (!opts.microsoftKeysDir) return [];
    const certs = await readCertsIn(join(opts.microsoftKeysDir, sub));
    if (certs.length === 0)
      throw new CanvosError('ERR_CONFIG', `${join(opts.microsoftKeysDir, sub)}: no certificates (.der, .pem, .crt)`, {
        hint: 'put Microsoft KEK CA certificates in KEK/ and the UEFI CA / Windows PCA certificates in db/',
      });
    return certs.map((data) => ({ type: EFI_CERT_X509, owner: MICROSOFT_OWNER, data }));
  };
  const extra: EfiSignature[] = [];
  for (const p of opts.extraDbCerts ?? []) extra.push({ type: EFI_CERT_X509, owner, data: await parseCert(p) });
  const lists: Record<SecureBootVar, EfiSignature[]> = {
    PK: [own('PK')],
    KEK: [own('KEK'), ...(await ms('KEK')), ...(await exportedList(dir, 'KEK'))],
    db: [own('db'), ...(await ms('db')), ...extra, ...(await exportedList(dir, 'db'))],
    dbx: await exportedList(dir, 'dbx'),
  };
  const signer: Record<SecureBootVar, KeyName> = { PK: 'PK', KEK: 'PK', db: 'KEK', dbx: 'KEK' };
  for (const name of ['PK', 'KEK', 'db', 'dbx'] as const) {
    if (name === 'dbx' && lists.dbx.length === 0) continue;
    const esl = encodeEsl(lists[name]);
    const s = pairs[signer[name]];
    await put(`enrollment/${name}.esl`, esl, 0o644);
    await put(`enrollment/${name}.auth`, signVariable({ name, data: esl, key: s.key, cert: s.cert, timestamp }), 0o644);
    if (name !== 'dbx') await put(`enrollment/${name}.der`, pairs[name].cert, 0o644);
  }
  return { files, owner, counts: { KEK: lists.KEK.length, db: lists.db.length } };
}

/** Reads a PEM public key from a private key file (for the .pcrpkey section). @internal */
export async function publicPemOf(privateKeyPath: string): Promise<string> {
  return createPublicKey(createPrivateKey(await readFile(privateKeyPath))).export({
    type: 'spki',
    format: 'pem',
  }) as string;
}
