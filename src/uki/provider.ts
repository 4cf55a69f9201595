/**
 * IS_UKI=true provider images as CanvOS's uki-provider-image makes them (Earthfile 337–358, 901–906): not a
 * bootable rootfs but a carrier image (CanvOS: third-party ubuntu) with /trusted-boot holding the signed EFI
 * artefacts built from the provider rootfs (enki build-uki -t container: systemd-boot, the UKI, loader entries,
 * enrolment keys) and /usr/bin/kairos-agent copied from the provider image. The provider rootfs must have
 * systemd >= 255.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { openDestination } from '../transports/resolve-location.js';
import { CanvosError } from '../errors.js';
import { buildLayer } from '../layers/build.js';
import { mergeLayers } from '../layers/merge.js';
import type { FileSpec } from '../layers/spec.js';
import type { BlobCache } from '../cache/blob-cache.js';
import { assembleImage, layerMediaTypeFor } from '../provider/assemble.js';
import { pushAssembledImage } from '../provider/push-image.js';
import { openImage, type OpenedImage } from '../provider/image-reader.js';
import type { RegistryHttpOptions } from '../registry/index.js';
import { rootfsUkiInputs } from './rootfs-initrd.js';
import { checkUkiSystemd, ENKI_UKI_CMDLINE } from './uki-iso-image.js';
import { signedEspFiles, type BuildUkiIsoOptions } from './uki-iso.js';

/** Options of {@link buildUkiProviderImage}. */
export interface UkiProviderOptions extends Pick<
  BuildUkiIsoOptions,
  'keysDir' | 'version' | 'branding' | 'stub' | 'systemdBoot' | 'signal'
> {
  /** The provider image (CanvOS +provider-image output) whose rootfs becomes the UKI. */
  provider: string;
  /** The carrier image (CanvOS: $SPECTRO_PUB_REPO/third-party/ubuntu:22.04). */
  carrier: string;
  /** Destination: docker://HOST/REPO:TAG or oci:DIR:TAG. */
  destination: string;
  /** Work directory for the layer and the UKI. */
  workDir: string;
  cache: BlobCache;
  registry?: RegistryHttpOptions;
  /** Appended to enki's command line. Default: none. */
  extendCmdline?: string;
  /** Layer mtimes and `created`. Default: 0 (no `created` change). */
  sourceDateEpoch?: number;
  onWarning?: (code: string, message: string) => void;
}

/** Result of {@link buildUkiProviderImage}. */
export interface UkiProviderResult {
  destination: string;
  manifestDigest: string;
  /** Paths added under /trusted-boot. */
  trustedBoot: string[];
  uname: string;
  systemdVersion?: number;
}

/** Builds and writes the UKI provider image. */
export async function buildUkiProviderImage(opts: UkiProviderOptions): Promise<UkiProviderResult> {
  const { signal } = opts;
  const open = (ref: string): Promise<OpenedImage> =>
    openImage(ref, 'amd64', { cache: opts.cache, signal, ...(opts.registry ? { registry: opts.registry } : {}) });
  await mkdir(opts.workDir, { recursive: true });
  const work = await mkdtemp(join(opts.workDir, '.uki-provider-'));
  const opened: OpenedImage[] = [];
  try {
    const provider = await open(opts.provider);
    opened.push(provider);
    const carrier = await open(opts.carrier);
    opened.push(carrier);
    const inp = await rootfsUkiInputs(mergeLayers(provider.openers, { signal }), work, signal);
    checkUkiSystemd(inp.systemdVersion, opts.onWarning);
    if (!inp.kairosAgent)
      throw new CanvosError('ERR_CONFIG', `${opts.provider} has no /usr/bin/kairos-agent`, {
        hint: "the UKI provider image carries the provider image's kairos-agent; use a Kairos provider image",
      });
    const { files } = await signedEspFiles(
      {
        ...opts,
        outputDir: work,
        version: opts.version ?? 'norole',
        kernel: inp.kernel,
        initrds: [inp.initrd],
        osRelease: inp.osRelease,
        uname: inp.uname,
        cmdline: [ENKI_UKI_CMDLINE, opts.extendCmdline].filter(Boolean).join(' '),
      },
      work,
    );
    const entries: FileSpec[] = [
      ...files.map((f): FileSpec => ({
        type: 'file',
        path: `trusted-boot/${f.path}`,
        source: typeof f.source === 'string' ? { host: f.source } : { inline: f.source },
        mode: 0o644,
      })),
      { type: 'file', path: 'usr/bin/kairos-agent', source: { host: inp.kairosAgent }, mode: 0o755 },
    ];
    const epoch = opts.sourceDateEpoch ?? 0;
    const layer = await buildLayer(
      { entries },
      {
        dir: join(work, 'layers'),
        sourceDateEpoch: epoch,
        compression: 'gzip',
        mediaType: layerMediaTypeFor(carrier.manifest.mediaType),
        ...(signal ? { signal } : {}),
      },
    );
    const created = epoch > 0 ? new Date(epoch * 1000).toISOString().replace(/\.000Z$/, 'Z') : undefined;
    const image = assembleImage(
      carrier,
      [{ ...layer, createdBy: 'canvos-lite uki provider: /trusted-boot (signed UKI, systemd-boot) + kairos-agent' }],
      { created },
    );
    const d = openDestination(opts.destination, opts.registry ? { registry: opts.registry } : {});
    try {
      const tag = /:([\w][\w.-]{0,127})$/.exec(opts.destination)?.[1];
      const files = new Map([[layer.digest, layer.path]]);
      await pushAssembledImage(d, image, { base: carrier, files, cache: opts.cache }, { tag, signal });
    } finally {
      await d.close();
    }
    return {
      destination: opts.destination,
      manifestDigest: image.manifest.digest,
      trustedBoot: files.map((f) => `/trusted-boot/${f.path}`),
      uname: inp.uname,
      ...(inp.systemdVersion !== undefined ? { systemdVersion: inp.systemdVersion } : {}),
    };
  } finally {
    await Promise.all(opened.map((o) => o.source.close().catch(() => {})));
    await rm(work, { recursive: true, force: true });
  }
}
