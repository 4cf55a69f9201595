/**
 * buildProviderImages: CanvOS's `build-provider-images` without Docker. Pulls the base image's manifest and config
 * for ARCH (its layers are reused as blobs, never unpacked), reads the few base files it edits in one streaming
 * pass, builds the shared layers once and one k8s layer per version, and writes one image per version to a
 * registry (blobs first, base layers HEAD/mounted, manifest last) or to an OCI layout. Everything is built before
 * anything is written, so a failing download or a missing file leaves the destination untouched.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { openDestination } from '../copy/transports.js';
import type { ImageDestination, ProgressFn } from '../copy/types.js';
import { abortError, CanvosError } from '../errors.js';
import { buildLayer, sourceDateEpochFromEnv, type BuiltLayer } from '../layers/build.js';
import {
  buildDockerfileLayers,
  dockerfileWatchFiles,
  prepareProjectDockerfile,
  type DockerfileBuild,
} from '../dockerfile/build.js';
import type { Executor } from '../dockerfile/exec-api.js';
import { compressor } from '../native/load.js';
import { BlobCache } from '../oci/cache.js';
import type { Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/schemas.js';
import type { RegistryTransportOptions } from '../registry/transport.js';
import { assembleImage, layerMediaTypeFor, type AppendedLayer } from './assemble.js';
import { scanBase } from './base-scan.js';
import { baseScanRequest, planProviderImages } from './provider-plan.js';
import type { BuildPlan, PlannedLayer } from './plan-types.js';
import { cachedBlobPath, openImage, type OpenedImage } from './image-reader.js';
import { layerBuildSpec } from './layer-specs.js';
import { loadLuetAuth, luetAuthError, registryOptionsFor } from './luet-auth.js';
import { resolveBaseImage } from './derive.js';
import type { BuildConfig, WarningHandler } from './resolve.js';
import { canvosExecSteps } from './exec-steps.js';
import type { TwoNodeSources } from './two-node.js';

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

/** Blobs written at once per image. */
const BLOB_CONCURRENCY = 3;

/** Build and write the provider images of `config` (see the file header). */
export async function buildProviderImages(
  config: BuildConfig,
  opts: BuildProviderOptions,
): Promise<BuildProviderResult> {
  const warn = opts.onWarning ?? (() => {});
  const progress = opts.onProgress ?? (() => {});
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
  // zstd without libzstd (native addon) or Node >= 22.15 fails here, not after the base was read.
  if (opts.layerCompression === 'zstd') await compressor().zstd(Buffer.alloc(1), 3);
  const cache = new BlobCache({ dir: opts.cacheDir });
  const open = { registry: opts.registry, cache, signal };
  const opened: OpenedImage[] = [];
  const work = opts.workDir ?? (await mkdtemp(join(tmpdir(), 'canvos-provider-')));
  const epoch = opts.sourceDateEpoch ?? sourceDateEpochFromEnv();
  try {
    const baseRef = resolveBaseImage(config);
    progress({ phase: 'resolve', item: baseRef, transferred: 0 });
    const base = await openImage(baseRef, config.arch, open);
    opened.push(base);
    progress({ phase: 'scan-base', item: baseRef, transferred: 0, total: base.layers.reduce((n, l) => n + l.size, 0) });
    // The files canvos-lite edits (and the Dockerfile's --chown reads); kept current through its layers.
    const watchFiles = dockerfileWatchFiles(scanRequest.files);
    const scan = await scanBase(base.openers, { files: watchFiles, listDirs: scanRequest.listDirs }, { signal });
    const supportsSysext = scan.systemdVersion !== undefined && scan.systemdVersion >= 255;
    const plan = planProviderImages(config, opts.versions, {
      projectDir: opts.projectDir,
      supportsSystemdExtensions: supportsSysext,
      onWarning: warn,
    });
    if (!plan.bundled)
      warn(
        'W_SYSEXT',
        `the base has systemd ${scan.systemdVersion}: k8s and the agent provider are not bundled (Stylus installs them as system extensions); set BUNDLE_K8S_AND_AGENT_PROVIDER=true to bundle them`,
      );

    const projectDir = resolve(opts.projectDir ?? process.cwd());
    const luetAuth = await loadLuetAuth(projectDir, config, warn);
    const images = new Map<string, OpenedImage>();
    for (const ref of plan.sourceImages) {
      progress({ phase: 'resolve', item: ref, transferred: 0 });
      const img = await openImage(ref, config.arch, {
        ...open,
        registry: registryOptionsFor(config, ref, opts.registry, luetAuth),
      }).catch((e: unknown) => {
        throw luetAuthError(config, ref, e, luetAuth, projectDir);
      });
      opened.push(img);
      images.set(ref, img);
    }
    const ctx = { config, scan, images, onWarning: warn, signal };
    const compression = opts.layerCompression ?? 'gzip';
    const mediaType = layerMediaTypeFor(base.manifest.mediaType, compression);
    const parentMeta = (p: string) => scan.dirs.get(p);
    // The Dockerfile's layers come right after the base (CanvOS: base-image = FROM DOCKERFILE), shared by all images.
    let df: DockerfileBuild | undefined;
    if (dockerfile) {
      progress({ phase: 'dockerfile', item: 'Dockerfile', transferred: 0 });
      const layerOpts = { compression, mediaType, sourceDateEpoch: epoch };
      df = await buildDockerfileLayers(dockerfile.df, {
        ...dockerfile.options,
        ...layerOpts,
        base,
        scan,
        watchFiles,
        cache,
        workDir: work,
        signal,
        onWarning: warn,
        onLog: opts.onLog,
      });
    }
    const built = new Map<PlannedLayer, (BuiltLayer & { createdBy: string }) | null>();
    const build = async (layer: PlannedLayer): Promise<void> => {
      if (built.has(layer)) return;
      signal?.throwIfAborted();
      const s = await layerBuildSpec(layer, ctx);
      if (!s) return void built.set(layer, null);
      const b = await buildLayer(s.spec, {
        dir: join(work, 'layers'),
        sourceDateEpoch: epoch,
        compression,
        mediaType,
        parentMeta,
        signal,
        onProgress: (p) =>
          progress({
            phase: 'build-layer',
            item: layer.name,
            transferred: p.transferred,
            total: p.total,
            percent: p.percent,
          }),
      });
      s.verify();
      progress({
        phase: 'build-layer',
        item: layer.name,
        transferred: b.uncompressedSize,
        total: b.uncompressedSize,
        percent: 100,
        status: 'built',
        itemSize: b.size,
      });
      built.set(layer, { ...b, createdBy: `canvos-lite provider ${layer.name}: ${layer.description}` });
    };
    for (const layer of plan.sharedLayers) await build(layer);
    for (const img of plan.images) for (const layer of img.layers) await build(layer);

    const created = epoch > 0 ? new Date(epoch * 1000).toISOString().replace(/\.000Z$/, 'Z') : undefined;
    const assembled = plan.images.map((p) => {
      const own = p.layers.flatMap((l) => {
        const b = built.get(l);
        return b
          ? [
              {
                name: l.name,
                layer: {
                  digest: b.digest,
                  size: b.size,
                  diffId: b.diffId,
                  mediaType: b.mediaType,
                  createdBy: b.createdBy,
                } satisfies AppendedLayer,
                path: b.path,
              },
            ]
          : [];
      });
      const fromDockerfile = (df?.history ?? []).flatMap((h) =>
        h.layer ? [{ name: h.name, layer: h.layer satisfies AppendedLayer, path: h.layer.path }] : [],
      );
      const appended = [...fromDockerfile, ...own];
      const history = df
        ? [
            ...df.history.map((h) => ({ createdBy: h.createdBy, emptyLayer: !h.layer })),
            ...own.map((a) => ({ createdBy: a.layer.createdBy })),
          ]
        : undefined;
      return {
        plan: p,
        appended,
        image: assembleImage(
          base,
          appended.map((a) => a.layer),
          { created, history, runtimeConfig: df?.config },
        ),
      };
    });

    // Write phase: only now does anything leave this machine.
    const results: BuiltProviderImage[] = [];
    const files = new Map<string, string>(
      assembled.flatMap((a) => a.appended.map((x) => [x.layer.digest, x.path] as [string, string])),
    );
    for (const a of assembled) {
      signal?.throwIfAborted();
      const dest = 'push' in opts.output ? `docker://${a.plan.imageRef}` : `oci:${opts.output.ociDir}:${a.plan.tag}`;
      const d = openDestination(dest, { registry: opts.registry });
      try {
        await writeImage(d, a.image, base, files, cache, { signal, progress, item: dest });
        await d.putManifest(a.image.manifest, a.plan.tag, { signal });
        await d.commit({ signal });
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
    return {
      plan,
      baseImage: baseRef,
      baseManifestDigest: base.manifest.digest,
      systemdVersion: scan.systemdVersion,
      images: results,
      dockerfileRuns: df?.executed ?? 0,
    };
  } catch (e) {
    if (signal?.aborted && !CanvosError.is(e)) throw abortError(signal);
    throw e;
  } finally {
    await Promise.all(opened.map((o) => o.source.close().catch(() => {})));
    if (!opts.workDir) await rm(work, { recursive: true, force: true });
  }
}

/** Put every blob of an assembled image: base layers (HEAD, mount, else streamed from the cache/source), new layers, config. @internal (also used by uki/provider.ts) */
export async function writeImage(
  d: ImageDestination,
  image: ReturnType<typeof assembleImage>,
  base: OpenedImage,
  files: ReadonlyMap<string, string>,
  cache: BlobCache,
  o: { signal?: AbortSignal | undefined; progress: ProgressFn; item: string },
): Promise<void> {
  const baseDigests = new Set(base.layers.map((l) => l.digest));
  const queue = [...image.layers];
  // A few blobs at once (the registry client bounds requests per host too); the manifest is written by the caller.
  const worker = async (): Promise<void> => {
    for (let desc = queue.shift(); desc; desc = queue.shift()) {
      const d0 = desc;
      const file = files.get(d0.digest);
      const openBlob = file
        ? async () => createReadStream(file)
        : async () => createReadStream(await cachedBlobPath(base.source, d0, cache, o.signal));
      const status = await d.putBlob(d0, openBlob, {
        signal: o.signal,
        mountFrom: baseDigests.has(d0.digest) ? base.source.mountOrigin : undefined,
      });
      o.progress({
        phase: 'write-blob',
        item: d0.digest,
        transferred: d0.size,
        total: d0.size,
        status,
        itemSize: d0.size,
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(BLOB_CONCURRENCY, queue.length) }, worker));
  const cfg = image.config;
  await d.putBlob(
    { mediaType: cfg.mediaType, digest: cfg.digest, size: cfg.bytes.length },
    async () => Readable.from([cfg.bytes]),
    { signal: o.signal },
  );
}
