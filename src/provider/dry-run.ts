/**
 * `--dry-run`: the provider-image plan with the sizes of everything it reads, from manifests and configs only
 * (no layer is downloaded or built, nothing is written). Without scanning the base, the systemd version is not
 * known, so the plan assumes k8s is bundled unless told otherwise.
 */
import { canvosBuildArgs, evaluateProjectDockerfile, readProjectDockerfile } from '../dockerfile/build.js';
import { CanvosError, type ErrorCode } from '../errors.js';
import { BlobCache } from '../cache/blob-cache.js';
import type { RegistryTransportOptions } from '../transports/registry/registry-image.js';
import { resolve } from 'node:path';
import { openImage } from './image-reader.js';
import { loadLuetAuth, luetAuthError, registryOptionsFor } from './luet-auth.js';
import { planProviderImages } from './provider-plan.js';
import type { BuildPlan } from './plan-types.js';
import { resolveBaseImage } from './derive.js';
import type { BuildConfig, WarningHandler } from './resolve.js';
import { canvosExecSteps } from './exec-steps.js';

/** Size information of one image the build reads. */
export interface ImageSizeInfo {
  ref: string;
  /** Platform manifest digest, when resolved. */
  digest?: string | undefined;
  layers?: number | undefined;
  /** Sum of the compressed layer sizes. */
  bytes?: number | undefined;
  /** Why it could not be resolved (the build would fail on it). */
  error?: string | undefined;
  /** The CanvosError code of that failure. */
  errorCode?: ErrorCode | undefined;
}

/** What {@link describeProviderBuild} returns. */
export interface DryRunReport {
  plan: BuildPlan;
  base: ImageSizeInfo;
  sources: ImageSizeInfo[];
  /** What the project Dockerfile (and CanvOS's exec steps: kernel headers, TWO_NODE) adds on the base, in order: `Dockerfile:LINE` + history text. */
  dockerfileSteps: { name: string; createdBy: string }[];
}

/** Options of {@link describeProviderBuild}. */
export interface DryRunOptions {
  versions: readonly string[];
  /** Default: process.cwd(). */
  projectDir?: string | undefined;
  /** Default: {}. */
  registry?: RegistryTransportOptions | undefined;
  /** Blob cache for the (small) config blobs. Default: BlobCache's default. */
  cacheDir?: string | undefined;
  /** Assume the base's systemd is ≥ 255 (sysext delivery). Default: false (bundle, as for older bases). */
  supportsSystemdExtensions?: boolean | undefined;
  signal?: AbortSignal | undefined;
  onWarning?: WarningHandler | undefined;
}

/** Plan the build and look up the size of the base and every source image. Unreachable images are reported, not thrown. */
export async function describeProviderBuild(config: BuildConfig, opts: DryRunOptions): Promise<DryRunReport> {
  const plan = planProviderImages(config, opts.versions, {
    projectDir: opts.projectDir,
    supportsSystemdExtensions: opts.supportsSystemdExtensions,
    onWarning: opts.onWarning,
  });
  // The Dockerfile is evaluated (refusals surface here) but nothing is executed or checked on the host.
  const df = await readProjectDockerfile(opts.projectDir ?? process.cwd());
  const steps = df
    ? evaluateProjectDockerfile(df, canvosBuildArgs(config, resolveBaseImage(config))).steps.map((st) => ({
        name: `${df.file}:${st.ins.line}`,
        createdBy: st.createdBy,
      }))
    : [];
  for (const st of await canvosExecSteps(config, opts.projectDir ?? process.cwd()))
    steps.push({ name: st.label ?? 'CanvOS step', createdBy: st.createdBy });
  const cache = new BlobCache({ dir: opts.cacheDir });
  const projectDir = resolve(opts.projectDir ?? process.cwd());
  const luetAuth = await loadLuetAuth(projectDir, config, opts.onWarning);
  const info = async (ref: string): Promise<ImageSizeInfo> => {
    try {
      const img = await openImage(ref, config.arch, {
        registry: registryOptionsFor(config, ref, opts.registry, luetAuth),
        cache,
        signal: opts.signal,
      }).catch((e: unknown) => {
        throw luetAuthError(config, ref, e, luetAuth, projectDir);
      });
      await img.source.close();
      return {
        ref,
        digest: img.manifest.digest,
        layers: img.layers.length,
        bytes: img.layers.reduce((n, l) => n + Math.max(0, l.size), 0),
      };
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      return {
        ref,
        error: CanvosError.is(e) ? e.message : String(e),
        errorCode: CanvosError.is(e) ? e.code : 'ERR_INTERNAL',
      };
    }
  };
  // Read all at once: an unreachable registry then costs one timeout, not one per image.
  const [base, sources] = await Promise.all([info(plan.baseImage), Promise.all(plan.sourceImages.map(info))]);
  return { plan, base, sources, dockerfileSteps: steps };
}
