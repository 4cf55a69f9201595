/**
 * The steps of a provider build before anything is written (see build.ts): open the base and the source images
 * and plan the images for the base, build the planned layers once, and assemble each image's config and manifest.
 * @internal
 */
import { join, resolve } from 'node:path';
import type { BlobCache } from '../cache/blob-cache.js';
import { dockerfileWatchFiles, type DockerfileBuild } from '../dockerfile/build.js';
import type { ProgressFn } from '../image/types.js';
import { buildLayer, type BuildLayerOptions, type BuiltLayer } from '../layers/build.js';
import type { RegistryTransportOptions } from '../transports/registry/registry-image.js';
import { throwIfAborted } from '../util/abort.js';
import { assembleImage, type AppendedLayer, type AssembledImage } from './assemble.js';
import { scanBase, type BaseScan } from './base-scan.js';
import { resolveBaseImage } from './derive.js';
import { openImage, type OpenedImage } from './image-reader.js';
import { layerBuildSpec } from './layer-specs.js';
import { loadLuetAuth, luetAuthError, registryOptionsFor } from './luet-auth.js';
import { planProviderImages } from './provider-plan.js';
import type { BuildPlan, PlannedLayer, ProviderImagePlan } from './plan-types.js';
import type { BuildConfig, WarningHandler } from './resolve.js';

/** The build options the steps read (a subset of BuildProviderOptions). */
export interface BuildStepOptions {
  versions: readonly string[];
  projectDir?: string | undefined;
  registry?: RegistryTransportOptions | undefined;
  signal?: AbortSignal | undefined;
}

/** A planned layer as built (null: nothing to add), with its history text. */
export type BuiltPlanned = (BuiltLayer & { createdBy: string }) | null;

/** One image ready to be written: its plan, its appended layers (with their files) and its exact bytes. */
export interface AssembledProviderImage {
  plan: ProviderImagePlan;
  appended: Array<{ name: string; layer: AppendedLayer; path: string }>;
  image: AssembledImage;
}

/** The build's state shared by its steps. */
export interface BuildContext {
  config: BuildConfig;
  opts: BuildStepOptions;
  cache: BlobCache;
  work: string;
  epoch: number;
  progress: ProgressFn;
  warn: WarningHandler;
  /** Every image opened so far (closed at the end). */
  opened: OpenedImage[];
}

/** Open the base (and scan the files the build edits), plan the images for it, and open every source image. */
export async function openInputs(
  ctx: BuildContext,
  scanRequest: { files: string[]; listDirs: string[] },
): Promise<{
  base: OpenedImage;
  scan: BaseScan;
  plan: BuildPlan;
  images: Map<string, OpenedImage>;
  watchFiles: string[];
}> {
  const { config, opts, progress, warn } = ctx;
  const open = { registry: opts.registry, cache: ctx.cache, signal: opts.signal };
  const baseRef = resolveBaseImage(config);
  progress({ phase: 'resolve', item: baseRef, transferred: 0 });
  const base = await openImage(baseRef, config.arch, open);
  ctx.opened.push(base);
  progress({ phase: 'scan-base', item: baseRef, transferred: 0, total: base.layers.reduce((n, l) => n + l.size, 0) });
  // The files canvos-lite edits (and the Dockerfile's --chown reads); kept current through its layers.
  const watchFiles = dockerfileWatchFiles(scanRequest.files);
  const scan = await scanBase(
    base.openers,
    { files: watchFiles, listDirs: scanRequest.listDirs },
    { signal: opts.signal },
  );
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
    ctx.opened.push(img);
    images.set(ref, img);
  }
  return { base, scan, plan, images, watchFiles };
}

/** Build every planned layer once (shared layers first), in the base's layer media type; `onBuilt` sees each. */
export async function buildPlannedLayers(
  ctx: BuildContext,
  plan: BuildPlan,
  layerCtx: Parameters<typeof layerBuildSpec>[1],
  layerFormat: Pick<BuildLayerOptions, 'compression' | 'level' | 'mediaType' | 'parentMeta'>,
  onBuilt?: (layer: PlannedLayer, built: BuiltLayer) => void,
): Promise<Map<PlannedLayer, BuiltPlanned>> {
  const { progress } = ctx;
  const signal = ctx.opts.signal;
  const built = new Map<PlannedLayer, BuiltPlanned>();
  const build = async (layer: PlannedLayer): Promise<void> => {
    if (built.has(layer)) return;
    throwIfAborted(signal);
    const s = await layerBuildSpec(layer, layerCtx);
    if (!s) {
      built.set(layer, null);
      return;
    }
    const b = await buildLayer(s.spec, {
      dir: join(ctx.work, 'layers'),
      sourceDateEpoch: ctx.epoch,
      ...layerFormat,
      download: ctx.opts.registry,
      signal,
      onProgress: (p) => {
        progress({
          phase: 'build-layer',
          item: layer.name,
          transferred: p.transferred,
          total: p.total,
          percent: p.percent,
        });
      },
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
    onBuilt?.(layer, b);
  };
  for (const layer of plan.sharedLayers) await build(layer);
  for (const img of plan.images) for (const layer of img.layers) await build(layer);
  return built;
}

/** Each planned image's config and manifest: the base, then the Dockerfile's layers, then its own. */
export function assembleProviderImages(
  plan: BuildPlan,
  base: OpenedImage,
  built: ReadonlyMap<PlannedLayer, BuiltPlanned>,
  df: DockerfileBuild | undefined,
  epoch: number,
): AssembledProviderImage[] {
  const created = epoch > 0 ? new Date(epoch * 1000).toISOString().replace(/\.000Z$/, 'Z') : undefined;
  return plan.images.map((p) => {
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
}
