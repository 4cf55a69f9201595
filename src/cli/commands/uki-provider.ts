/**
 * `canvos-lite uki provider`: an IS_UKI=true provider image (CanvOS +uki-provider-image) from a provider image
 * and a carrier image. @internal (loaded by uki.ts)
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BlobCache } from '../../cache/blob-cache.js';
import { buildUkiProviderImage } from '../../uki/provider.js';
import { compressionLevelFlag } from '../provider-step.js';
import { timeoutHelp, usageError as usageErrorFor } from '../flags.js';
import { BASE_IMAGE_OPTIONS, baseImageRegistry, commandOutput, JSON_OPTION } from '../flag-sets.js';
import type { CliIo } from '../types.js';
import { sourceDateEpochFromEnv } from '../../util/source-date.js';

export const UKI_PROVIDER_USAGE = `usage: canvos-lite uki provider --provider REF --carrier REF --to DEST [--keys secure-boot]
                                [--extend-cmdline S] [--version norole] [--branding TEXT] [--compression-level N]
                                [--insecure] [--timeout SECONDS] [--json]

provider: the IS_UKI=true provider image: the carrier image (CanvOS: third-party/ubuntu:22.04) plus /trusted-boot
  (systemd-boot and a UKI of the provider image's rootfs, signed with the db key, loader entries, enrolment keys)
  and the provider image's /usr/bin/kairos-agent. The provider rootfs needs systemd >= 255.
  --provider REF   provider image (canvos-lite build output; docker://…, oci:DIR:TAG, docker-archive:FILE)
  --carrier REF    carrier image
  --to DEST        docker://HOST/REPO:TAG or oci:DIR:TAG
  --compression-level N  gzip level of the new layer, 1 (fastest) to 9 (smallest); changes its digest
  --insecure       plain HTTP for the registries of --provider, --carrier and --to
  ${timeoutHelp(18)}`;

const usageError = (m: string) => usageErrorFor('uki', m);

export async function ukiProviderCmd(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      provider: { type: 'string' },
      carrier: { type: 'string' },
      to: { type: 'string' },
      keys: { type: 'string' },
      'extend-cmdline': { type: 'string' },
      version: { type: 'string' },
      branding: { type: 'string' },
      'compression-level': { type: 'string' },
      ...BASE_IMAGE_OPTIONS,
      ...JSON_OPTION,
    },
  });
  if (positionals.length > 0) throw usageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  if (!values.provider || !values.carrier || !values.to)
    throw usageError('--provider, --carrier and --to are required');
  const out = commandOutput(io, values.json);
  const epoch = io.env.SOURCE_DATE_EPOCH ? sourceDateEpochFromEnv(io.env) : undefined;
  const r = await buildUkiProviderImage({
    provider: values.provider,
    carrier: values.carrier,
    destination: values.to,
    keysDir: resolve(io.cwd, values.keys ?? 'secure-boot'),
    workDir: resolve(io.cwd, 'build'),
    cache: new BlobCache({ env: io.env }),
    registry: baseImageRegistry('uki', values, [values.provider, values.carrier, values.to], io),
    ...(values['extend-cmdline'] !== undefined ? { extendCmdline: values['extend-cmdline'] } : {}),
    ...(values.version !== undefined ? { version: values.version } : {}),
    ...(values.branding !== undefined ? { branding: values.branding } : {}),
    compressionLevel: compressionLevelFlag('gzip', values['compression-level']),
    ...(epoch !== undefined ? { sourceDateEpoch: epoch } : {}),
    signal: io.signal,
    onWarning: out.warn,
  });
  out.flush();
  out.result(r, [`${r.destination}@${r.manifestDigest}`]);
  return 0;
}
