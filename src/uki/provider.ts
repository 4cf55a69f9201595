/**
 * IS_UKI=true provider images as CanvOS's uki-provider-image makes them (Earthfile 337–358, 901–906): not a
 * bootable rootfs but a carrier image (CanvOS: third-party ubuntu) with /trusted-boot holding the signed EFI
 * artefacts built from the provider rootfs (enki build-uki -t container: systemd-boot, the UKI, loader entries,
 * enrolment keys), plus what CanvOS copies next to it: /usr/bin/kairos-agent, /usr/bin/luet,
 * /oem/.edge_custom_config.yaml and /etc/kairos/80_stylus.yaml from the provider image, the project's
 * overlay/files/etc, and, when k8s is bundled, the provider image's k8s layer under /k8s with the bundled
 * sentinel. The provider rootfs must have systemd >= 255.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { openDestination } from '../transports/resolve-location.js';
import { CanvosError } from '../errors.js';
import { buildLayer } from '../layers/build.js';
import { mergeLayers } from '../layers/merge.js';
import type { LayerEntrySpec } from '../layers/spec.js';
import type { BlobCache } from '../cache/blob-cache.js';
import { assembleImage, layerMediaTypeFor } from '../provider/assemble.js';
import { pushAssembledImage } from '../provider/push-image.js';
import { openImage, type OpenedImage } from '../provider/image-reader.js';
import type { RegistryHttpOptions } from '../registry/index.js';
import { BUNDLED_SENTINEL } from '../provider/provider-plan.js';
import { rootfsUkiInputs } from './rootfs-initrd.js';
import { checkUkiSystemd, ENKI_UKI_CMDLINE } from './uki-iso-image.js';
import { signedEspFiles, type BuildUkiIsoOptions } from './uki-iso.js';
import type { Descriptor } from '../image/schemas.js';

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
  /** The project's overlay/files/etc, copied to /etc (CanvOS `COPY --if-exists overlay/files/etc/ /etc/`). Default: none. */
  overlayEtc?: string;
  /**
   * Digest of the provider image's layer holding the bundled k8s package: carried under /k8s, with the bundled
   * sentinel (CanvOS with BUNDLE_K8S_AND_AGENT_PROVIDER). Default: none (k8s comes as a system extension).
   */
  k8sLayer?: string;
  /** Layer mtimes and `created`. Default: 0 (no `created` change). */
  sourceDateEpoch?: number;
  /** gzip level of the new layer, 1 to 9 (see compressionLevel): changes its digest. Default: 1. */
  compressionLevel?: number | undefined;
  onWarning?: (code: string, message: string) => void;
}

/** Result of {@link buildUkiProviderImage}. */
export interface UkiProviderResult {
  destination: string;
  manifestDigest: string;
  configDigest: string;
  /** All layers of the image, the carrier's first. */
  layers: Descriptor[];
  /** Paths added under /trusted-boot. */
  trustedBoot: string[];
  uname: string;
  systemdVersion?: number;
}

/** The provider image's k8s layer relocated under /k8s, and the bundled sentinel. */
function k8sEntries(provider: OpenedImage, digest: string | undefined, signal?: AbortSignal): LayerEntrySpec[] {
  if (!digest) return [];
  const i = provider.layers.findIndex((l) => l.digest === digest);
  const opener = provider.openers[i];
  if (!opener) throw new CanvosError('ERR_INTERNAL', `${provider.ref} has no layer ${digest}`);
  return [
    { type: 'dir', path: 'k8s', mode: 0o755 },
    {
      type: 'entries',
      source: mergeLayers([opener], { ...(signal ? { signal } : {}) }),
      map: (p) => (p === '' || p === 'var/cache' || p.startsWith('var/cache/') ? null : `k8s/${p}`),
    },
    { type: 'file', path: BUNDLED_SENTINEL.slice(1), source: { inline: '' }, mode: 0o644 },
  ];
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
    if (!inp.carried.has('usr/bin/luet'))
      opts.onWarning?.(
        'W_UKI_NO_LUET',
        `${opts.provider} has no /usr/bin/luet, so the UKI provider image carries none (CanvOS copies it for upgrades)`,
      );
    const entries: LayerEntrySpec[] = [
      ...(opts.overlayEtc && existsSync(opts.overlayEtc)
        ? [{ type: 'tree', path: 'etc', host: opts.overlayEtc, uid: 0, gid: 0 } as const]
        : []),
      ...files.map((f): LayerEntrySpec => ({
        type: 'file',
        path: `trusted-boot/${f.path}`,
        source: typeof f.source === 'string' ? { host: f.source } : { inline: f.source },
        mode: 0o644,
      })),
      ...[...inp.carried].map(([path, host]): LayerEntrySpec => ({
        type: 'file',
        path,
        source: { host },
        mode: path.startsWith('usr/bin/') ? 0o755 : 0o644,
      })),
      ...k8sEntries(provider, opts.k8sLayer, signal),
    ];
    const epoch = opts.sourceDateEpoch ?? 0;
    const layer = await buildLayer(
      { entries },
      {
        dir: join(work, 'layers'),
        sourceDateEpoch: epoch,
        compression: 'gzip',
        level: opts.compressionLevel,
        mediaType: layerMediaTypeFor(carrier.manifest.mediaType),
        ...(signal ? { signal } : {}),
      },
    );
    const created = epoch > 0 ? new Date(epoch * 1000).toISOString().replace(/\.000Z$/, 'Z') : undefined;
    const image = assembleImage(
      carrier,
      [
        {
          ...layer,
          createdBy:
            'canvos-lite uki provider: /trusted-boot (signed UKI, systemd-boot), kairos-agent, luet, stylus files',
        },
      ],
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
      configDigest: image.config.digest,
      layers: image.layers,
      trustedBoot: files.map((f) => `/trusted-boot/${f.path}`),
      uname: inp.uname,
      ...(inp.systemdVersion !== undefined ? { systemdVersion: inp.systemdVersion } : {}),
    };
  } finally {
    await Promise.all(opened.map((o) => o.source.close().catch(() => {})));
    await rm(work, { recursive: true, force: true });
  }
}
