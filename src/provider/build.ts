/**
 * buildProviderImages: CanvOS's `build-provider-images` without Docker. Pulls the base image's manifest and config
 * for ARCH (its layers are reused as blobs, never unpacked), reads the few base files it edits in one streaming
 * pass, builds the shared layers once and one k8s layer per version, and writes one image per version to a
 * registry or an OCI layout through the copy engine (push-image.ts: blobs first, largest first, base layers
 * HEAD/mounted, manifest last). Each new layer's blob is uploaded (or stored in the OCI layout being staged) as
 * soon as it is built (early-upload.ts), but manifests and tags are written only once every layer is built and
 * every blob confirmed, so a failing download or a missing file leaves no tag and no manifest (at most
 * unreferenced blobs; no new layout).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDestination } from '../transports/resolve-location.js';
import type { ProgressFn } from '../image/types.js';
import { sourceDateEpochFromEnv } from '../layers/build.js';
import { compressionLevel } from '../layers/compress.js';
import { buildDockerfileLayers, prepareProjectDockerfile, type DockerfileBuild } from '../dockerfile/build.js';
import type { Executor } from '../dockerfile/exec-api.js';
import { compressor } from '../native/load.js';
import { BlobCache } from '../cache/blob-cache.js';
import type { Digest } from '../image/digest.js';
import type { Descriptor } from '../image/schemas.js';
import {
  assembleProviderImages,
  buildPlannedLayers,
  openInputs,
  type AssembledProviderImage,
  type BuildContext,
} from './build-steps.js';
import { layerMediaTypeFor } from './assemble.js';
import { baseScanRequest, planProviderImages } from './provider-plan.js';
import type { BuildPlan, ProviderImagePlan } from './plan-types.js';
import { EarlyUploads, repositoryOf } from './early-upload.js';
import { pushAssembledImage } from './push-image.js';
import { type OpenedImage } from './image-reader.js';
import type { RegistryTransportOptions } from '../transports/registry/registry-image.js';
import { resolveBaseImage } from './derive.js';
import type { BuildConfig, WarningHandler } from './resolve.js';
import { canvosExecSteps } from './exec-steps.js';
import type { TwoNodeSources } from './two-node.js';
import { abortedOr, throwIfAborted } from '../util/abort.js';

/** Options of {@link buildProviderImages}. */
export interface BuildProviderOptions {
  /** The Kubernetes versions to build (see selectK8sVersions). */
  versions: readonly string[];
  /** Where the images go: push each to its IMAGE_PATH, or write them all into an OCI layout directory (tagged). */
  output: { push: true } | { ociDir: string };
  /** Directory holding overlay/, certs/, cloudconfigs/. Default: process.cwd(). */
  projectDir?: string | undefined;
  /** Registry connection/auth options for pulls and pushes. Default: {}. */
  registry?: RegistryTransportOptions | undefined;
  /** Blob cache directory. Default: BlobCache's default (`$CANVOS_CACHE_DIR`, XDG cache). */
  cacheDir?: string | undefined;
  /** Scratch directory for built layers (removed afterwards). Default: a new directory under os.tmpdir(). */
  workDir?: string | undefined;
  /** Clamp for all mtimes and the images' `created`. Default: env SOURCE_DATE_EPOCH, else 0. */
  sourceDateEpoch?: number | undefined;
  /**
   * Compression of the appended layers. `zstd` (`application/vnd.oci.image.layer.v1.tar+zstd`, level 3) needs an
   * OCI base manifest and the native addon (or Node >= 22.15); the base's own layers are reused as they are.
   * Default: `gzip`.
   */
  layerCompression?: 'gzip' | 'zstd' | undefined;
  /**
   * Level of the appended layers' compression: gzip 1 (fastest) to 9 (smallest), zstd 1 to 19. It changes the
   * compressed bytes, so the layer and manifest digests (not the diff_ids); same level + same inputs + same
   * SOURCE_DATE_EPOCH give the same digests. Anything else fails with ERR_CONFIG before any pull.
   * Default: 1 for gzip (chosen by measurement, see DEFAULT_GZIP_LEVEL), 3 for zstd.
   */
  compressionLevel?: number | undefined;
  /** The RUN executor. Default: canvos-lite's rootless executor, used when the Dockerfile has a RUN or a CanvOS exec step (kernel headers, TWO_NODE) is on. */
  executor?: Executor | undefined;
  /** Download locations of the TWO_NODE steps (PGDG repository and key, kine). Default: CanvOS's. */
  twoNodeSources?: TwoNodeSources | undefined;
  signal?: AbortSignal | undefined;
  onProgress?: ProgressFn | undefined;
  onWarning?: WarningHandler | undefined;
  /** Dockerfile step lines and RUN output. Default: none. */
  onLog?: ((line: string) => void) | undefined;
}

/** One image written. */
export interface BuiltProviderImage {
  k8sVersion: string;
  tag: string;
  /** Where it was written: `docker://ref` or `oci:DIR:tag`. */
  destination: string;
  manifestDigest: Digest;
  configDigest: Digest;
  /** All layers of the image, base first. */
  layers: Descriptor[];
  /** Names of the appended layers, in order (`Dockerfile:LINE` for the Dockerfile's). */
  appended: string[];
}

/** What {@link buildProviderImages} did. */
export interface BuildProviderResult {
  plan: BuildPlan;
  baseImage: string;
  baseManifestDigest: Digest;
  /** systemd major version found in the base, if any (≥ 255: k8s is delivered as sysext, not bundled). */
  systemdVersion: number | undefined;
  images: BuiltProviderImage[];
  /** RUN instructions of the project Dockerfile executed in this build (0: none, or all cached). */
  dockerfileRuns: number;
}

/** Write each image through the copy engine, one after the other (each: blobs, then its tagged manifest). */
async function writeProviderImages(
  ctx: BuildContext,
  opts: BuildProviderOptions,
  assembled: readonly AssembledProviderImage[],
  base: OpenedImage,
  early: EarlyUploads,
): Promise<BuiltProviderImage[]> {
  const { progress } = ctx;
  const signal = opts.signal;
  const results: BuiltProviderImage[] = [];
  const files = new Map<string, string>(
    assembled.flatMap((a) => a.appended.map((x) => [x.layer.digest, x.path] as [string, string])),
  );
  for (const a of assembled) {
    throwIfAborted(signal);
    const dest = 'push' in opts.output ? `docker://${a.plan.imageRef}` : `oci:${opts.output.ociDir}:${a.plan.tag}`;
    // The layout the blobs were staged in is the first image's destination.
    const staged = 'ociDir' in opts.output && results.length === 0 ? early.take(opts.output.ociDir) : undefined;
    const d = staged ?? openDestination(dest, { registry: opts.registry });
    try {
      await pushAssembledImage(
        d,
        a.image,
        { base, files, cache: ctx.cache },
        { tag: a.plan.tag, signal, onProgress: progress },
      );
    } finally {
      await d.close();
    }
    progress({ phase: 'write', item: dest, transferred: 0, status: 'written' });
    results.push({
      k8sVersion: a.plan.k8sVersion,
      tag: a.plan.tag,
      destination: dest,
      manifestDigest: a.image.manifest.digest,
      configDigest: a.image.config.digest,
      layers: a.image.layers,
      appended: a.appended.map((x) => x.name),
    });
  }
  return results;
}

/** Build and write the provider images of `config` (see the file header). */
export async function buildProviderImages(
  config: BuildConfig,
  opts: BuildProviderOptions,
): Promise<BuildProviderResult> {
  if (config.isUki)
    opts.onWarning?.(
      'W_UKI_PLAIN_BUILD',
      'IS_UKI=true: buildProviderImages builds the plain provider images; buildConfiguredProviderImages (what canvos-lite build runs) builds the UKI provider images',
    );
  return buildProviderImagesOf(config, opts);
}

/**
 * {@link buildProviderImages} without the IS_UKI warning: the UKI build (uki/config-provider.ts) builds the plain
 * provider image first, as CanvOS's uki-provider-image does, and turns it into the UKI provider image.
 */
export async function buildProviderImagesOf(
  config: BuildConfig,
  opts: BuildProviderOptions,
): Promise<BuildProviderResult> {
  const signal = opts.signal;
  // Validate everything that needs no network first (unsupported shapes, missing BASE_IMAGE…).
  const scanRequest = baseScanRequest(
    planProviderImages(config, opts.versions, { projectDir: opts.projectDir }).sharedLayers,
  );
  const projectDir = opts.projectDir ?? process.cwd();
  // CanvOS's exec steps (kernel headers, TWO_NODE) run after the Dockerfile's, through the same executor and cache.
  const extraSteps = await canvosExecSteps(config, projectDir, opts.twoNodeSources);
  // A Dockerfile that cannot be applied (refused instruction, RUN without user namespaces) fails before any pull.
  const dockerfile = await prepareProjectDockerfile(config, resolveBaseImage(config), projectDir, {
    extraSteps,
    executor: opts.executor,
    signal: opts.signal,
  });
  const compression = opts.layerCompression ?? 'gzip';
  const level = compressionLevel(compression, opts.compressionLevel);
  // zstd without libzstd (native addon) or Node >= 22.15 fails here, not after the base was read.
  if (compression === 'zstd') await compressor().zstd(Buffer.alloc(1), 3);
  const ctx: BuildContext = {
    config,
    opts,
    cache: new BlobCache({ dir: opts.cacheDir }),
    work: opts.workDir ?? (await mkdtemp(join(tmpdir(), 'canvos-provider-'))),
    epoch: opts.sourceDateEpoch ?? sourceDateEpochFromEnv(),
    progress: opts.onProgress ?? (() => {}),
    warn: opts.onWarning ?? (() => {}),
    opened: [],
  };
  // Blobs go out as they are built: to the images' repositories, or into the layout (staged in the first image's
  // destination, which writeProviderImages takes over).
  let firstTag = '';
  const out = opts.output;
  const early = new EarlyUploads({
    registry: opts.registry,
    signal,
    onProgress: ctx.progress,
    open: 'ociDir' in out ? (dir) => openDestination(`oci:${dir}:${firstTag}`) : undefined,
  });
  try {
    const { base, scan, plan, images, watchFiles } = await openInputs(ctx, scanRequest);
    const mediaType = layerMediaTypeFor(base.manifest.mediaType, compression);
    // The Dockerfile's layers come right after the base (CanvOS: base-image = FROM DOCKERFILE), shared by all images.
    let df: DockerfileBuild | undefined;
    if (dockerfile) {
      ctx.progress({ phase: 'dockerfile', item: 'Dockerfile', transferred: 0 });
      df = await buildDockerfileLayers(dockerfile.df, {
        ...dockerfile.options,
        compression,
        level,
        mediaType,
        sourceDateEpoch: ctx.epoch,
        base,
        scan,
        watchFiles,
        cache: ctx.cache,
        workDir: ctx.work,
        signal,
        onWarning: ctx.warn,
        onLog: opts.onLog,
      });
    }
    // Registry output: each layer uploads while the next one builds; repositories get only their images' blobs.
    firstTag = plan.images[0]?.tag ?? '';
    const repos = (has: (p: ProviderImagePlan) => boolean) =>
      'ociDir' in out ? [out.ociDir] : plan.images.filter(has).map((p) => repositoryOf(p.imageRef));
    for (const l of df?.layers ?? [])
      early.add(
        l,
        repos(() => true),
      );
    const built = await buildPlannedLayers(
      ctx,
      plan,
      { config, scan, images, onWarning: ctx.warn, signal },
      { compression, level, mediaType, parentMeta: (p: string) => scan.dirs.get(p) },
      (layer, b) => {
        early.add(
          b,
          repos((p) => p.layers.includes(layer)),
        );
      },
    );
    const assembled = assembleProviderImages(plan, base, built, df, ctx.epoch);
    // Every new blob is confirmed before the first manifest or tag is written (push-image.ts: manifest last).
    await early.settle();
    const results = await writeProviderImages(ctx, opts, assembled, base, early);
    return {
      plan,
      baseImage: base.ref,
      baseManifestDigest: base.manifest.digest,
      systemdVersion: scan.systemdVersion,
      images: results,
      dockerfileRuns: df?.executed ?? 0,
    };
  } catch (e) {
    await early.cancel();
    throw abortedOr(signal, e);
  } finally {
    await early.close();
    await Promise.all(ctx.opened.map((o) => o.source.close().catch(() => {})));
    if (!opts.workDir) await rm(ctx.work, { recursive: true, force: true });
  }
}
