/**
 * `canvos-lite uki`: Trusted Boot. `uki genkey` writes Secure Boot keys in CanvOS's secure-boot/ layout
 * (Earthfile +uki-genkey / +uki-byok); `uki iso` (uki-iso.ts) the signed UKI installer ISO (+build-uki-iso).
 * Messages go to stderr; stdout gets the list of files / the ISO path (or --json).
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { genkey } from '../../uki/genkey.js';
import { commandOutput, JSON_OPTION } from '../flag-sets.js';
import { usageError as usageErrorFor } from '../flags.js';
import type { CliIo, CommandModule } from '../types.js';
import { UKI_ISO_USAGE, ukiIsoCmd } from './uki-iso.js';
import { UKI_PROVIDER_USAGE, ukiProviderCmd } from './uki-provider.js';

const usage = `usage: canvos-lite uki genkey [--dir DIR] [--org NAME] [--expiration-in-days N]
                              (--microsoft-keys DIR | --skip-microsoft-keys) [--byok] [--extension-cert FILE]... [--force] [--json]

genkey: PK, KEK and db key pairs and the TPM PCR signing key in CanvOS's secure-boot/ layout:
  private-keys/{PK,KEK,db}.key, private-keys/tpm2-pcr-private.pem, public-keys/{PK,KEK,db}.pem,
  enrollment/{PK,KEK,db}.{der,esl,auth} (PK signs PK and KEK, KEK signs db). Certificates in
  DIR/exported-keys/{KEK,db,dbx} (EFI signature lists exported from a machine) are appended.
  --dir DIR                 the secure-boot directory (default ./secure-boot)
  --org NAME                certificate common name, CanvOS MY_ORG (default "ACME Corp")
  --expiration-in-days N    certificate validity, CanvOS EXPIRATION_IN_DAYS (default 5475)
  --microsoft-keys DIR      add Microsoft's certificates from DIR/KEK/ and DIR/db/ (INCLUDE_MS_SECUREBOOT_KEYS=true;
                            canvos-lite ships none)
  --skip-microsoft-keys     leave them out (INCLUDE_MS_SECUREBOOT_KEYS=false)
  --byok                    bring your own keys (UKI_BRING_YOUR_OWN_KEYS=true): sign enrollment/ with the existing
                            private-keys/ and public-keys/ instead of generating keys
  --extension-cert FILE     add a certificate to db (ENROLL_SPECTRO_EXTENSION_CERT: Spectro Cloud's sysext cert)
  --force                   replace existing keys (machines enrolled with the old ones will refuse new images)
  --json                    print only a JSON result on stdout
The .auth timestamp is SOURCE_DATE_EPOCH when set.`;

const usageError = (message: string) => usageErrorFor('uki', message);

async function genkeyCmd(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      dir: { type: 'string' },
      org: { type: 'string' },
      'expiration-in-days': { type: 'string' },
      'microsoft-keys': { type: 'string' },
      'skip-microsoft-keys': { type: 'boolean' },
      byok: { type: 'boolean' },
      'extension-cert': { type: 'string', multiple: true },
      force: { type: 'boolean' },
      ...JSON_OPTION,
    },
  });
  if (positionals.length > 0) throw usageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const days = values['expiration-in-days'];
  if (days !== undefined && !/^[1-9]\d*$/.test(days))
    throw usageError(`--expiration-in-days must be a positive integer, not ${JSON.stringify(days)}`);
  const dir = resolve(io.cwd, values.dir ?? 'secure-boot');
  const out = commandOutput(io, values.json);
  const r = await genkey({
    dir,
    ...(values.org !== undefined ? { org: values.org } : {}),
    ...(days !== undefined ? { expirationDays: Number(days) } : {}),
    ...(values['microsoft-keys'] !== undefined ? { microsoftKeysDir: resolve(io.cwd, values['microsoft-keys']) } : {}),
    skipMicrosoft: values['skip-microsoft-keys'] === true,
    byok: values.byok === true,
    extraDbCerts: (values['extension-cert'] ?? []).map((p) => resolve(io.cwd, p)),
    force: values.force === true,
    env: io.env,
    onWarning: out.warn,
  });
  out.flush();
  out.say(
    `secure-boot keys in ${dir} (KEK: ${r.counts.KEK} certificates, db: ${r.counts.db}); keep private-keys/PK.key and KEK.key offline`,
  );
  out.result(
    { dir, ...r },
    r.files.map((f) => `${dir}/${f}`),
  );
  return 0;
}

const SUB: Record<string, (argv: string[], io: CliIo) => Promise<number>> = {
  genkey: genkeyCmd,
  iso: ukiIsoCmd,
  provider: ukiProviderCmd,
};

async function run(argv: string[], io: CliIo): Promise<number> {
  const sub = argv[0];
  const fn = sub ? SUB[sub] : undefined;
  if (!fn)
    throw usageError(
      sub ? `unknown subcommand ${JSON.stringify(sub)}` : `a subcommand is required: ${Object.keys(SUB).join(', ')}`,
    );
  return fn(argv.slice(1), io);
}

const mod: CommandModule = {
  summary: 'canvos-lite uki: Trusted Boot (Secure Boot keys, signed UKI ISO and IS_UKI provider images)',
  usage: `${usage}\n\n${UKI_ISO_USAGE}\n\n${UKI_PROVIDER_USAGE}`,
  run,
};
export default mod;
