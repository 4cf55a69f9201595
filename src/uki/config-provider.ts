/**
 * IS_UKI=true through the configuration (`.arg` / canvos.yaml), as CanvOS's build-provider-images does with
 * `TARGET=uki-provider-image` (canvos.md §1.3, §1.6): one provider image per Kubernetes version is built as usual
 * (its rootfs becomes the UKI) into a scratch OCI layout, then each is turned into the UKI provider image (carrier +
 * /trusted-boot + kairos-agent, luet, stylus files, overlay etc files, /k8s when bundled) written under the
 * provider image's own name and tag, so the pack snippet is CanvOS's. Keys come from the project's secure-boot/.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CanvosError } from '../errors.js';
import { throwIfAborted } from '../util/abort.js';
import { sourceDateEpochFromEnv } from '../layers/build.js';
import { BlobCache } from '../cache/blob-cache.js';
import { buildProviderImagesOf, type BuildProviderOptions, type BuildProviderResult } from '../provider/build.js';
import type { BuildConfig } from '../provider/resolve.js';
import { buildUkiProviderImage } from './provider.js';

/** The files `build`/`iso` read from the project's secure-boot/ directory (CanvOS secure-boot-dirs, 716–729). */
export const UKI_KEY_FILES = [
  'private-keys/db.key',
  'public-keys/db.pem',
  ...['PK', 'KEK', 'db'].flatMap((k) => [`enrollment/${k}.auth`, `enrollment/${k}.der`]),
];

/** The project's secure-boot/ directory; exit 3 naming it when a key file is missing. */
export function projectKeysDir(projectDir: string): string {
  const dir = join(resolve(projectDir), 'secure-boot');
  const missing = UKI_KEY_FILES.filter((f) => !existsSync(join(dir, f)));
  if (missing.length > 0)
    throw new CanvosError(
      'ERR_CONFIG',
      `IS_UKI=true needs the Secure Boot keys in ${dir}, which lacks ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ` (+${missing.length - 3} more)` : ''}`,
      {
        hint: `create them with canvos-lite uki genkey --dir ${dir} (CanvOS +uki-genkey; --byok for your own keys)`,
      },
    );
  return dir;
}

/** CanvOS's +ubuntu target, the UKI provider image's carrier: `$SPECTRO_PUB_REPO/third-party/ubuntu[-fips]:22.04`. */
export function ukiCarrierImage(c: Pick<BuildConfig, 'spectroPubRepo' | 'fipsEnabled'>): string {
  return `${c.spectroPubRepo}/third-party/ubuntu${c.fipsEnabled ? '-fips' : ''}:22.04`;
}

/**
 * Builds the UKI provider images of `config` (IS_UKI=true) to `opts.output`; the result lists the final images
 * (the intermediate provider images only live in a scratch directory).
 */
export async function buildUkiProviderImages(
  config: BuildConfig,
  opts: BuildProviderOptions,
): Promise<BuildProviderResult> {
  const projectDir = resolve(opts.projectDir ?? process.cwd());
  const keysDir = projectKeysDir(projectDir);
  const work = await mkdtemp(join(opts.workDir ?? tmpdir(), 'canvos-uki-build-'));
  try {
    const inner = await buildProviderImagesOf(config, {
      ...opts,
      output: { ociDir: join(work, 'provider') },
      workDir: undefined,
    });
    const carrier = ukiCarrierImage(config);
    const epoch = opts.sourceDateEpoch ?? sourceDateEpochFromEnv();
    const cache = new BlobCache({ dir: opts.cacheDir });
    const images = [];
    for (const [i, img] of inner.images.entries()) {
      throwIfAborted(opts.signal);
      const plan = inner.plan.images[i];
      if (!plan) throw new CanvosError('ERR_INTERNAL', `no plan for provider image ${img.tag}`);
      const destination = 'push' in opts.output ? `docker://${plan.imageRef}` : `oci:${opts.output.ociDir}:${plan.tag}`;
      // the k8s layer (bundled only) is one of the appended layers, which end the layer list
      const k8sAt = img.appended.findIndex((n) => n.startsWith('k8s-'));
      const k8s = k8sAt < 0 ? undefined : img.layers[img.layers.length - img.appended.length + k8sAt]?.digest;
      opts.onProgress?.({ phase: 'uki', item: destination, transferred: 0 });
      const r = await buildUkiProviderImage({
        provider: img.destination,
        carrier,
        destination,
        keysDir,
        workDir: work,
        cache,
        ...(opts.registry ? { registry: opts.registry } : {}),
        branding: config.branding,
        overlayEtc: join(projectDir, 'overlay', 'files', 'etc'),
        ...(k8s ? { k8sLayer: k8s } : {}),
        sourceDateEpoch: epoch,
        // The UKI layer is gzip whatever --layer-compression says (a zstd level is not a gzip level).
        compressionLevel: opts.layerCompression === 'zstd' ? undefined : opts.compressionLevel,
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(opts.onWarning ? { onWarning: opts.onWarning } : {}),
      });
      images.push({
        ...img,
        destination,
        manifestDigest: r.manifestDigest as typeof img.manifestDigest,
        configDigest: r.configDigest as typeof img.configDigest,
        layers: r.layers,
        appended: ['trusted-boot'],
      });
    }
    return { ...inner, images };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** `build`'s provider images: UKI provider images with IS_UKI=true, else the plain ones. */
export function buildConfiguredProviderImages(
  config: BuildConfig,
  opts: BuildProviderOptions,
): Promise<BuildProviderResult> {
  return config.isUki ? buildUkiProviderImages(config, opts) : buildProviderImagesOf(config, opts);
}
