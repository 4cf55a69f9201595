/**
 * The provider-image plan: CanvOS's `base-image` + `provider-image` steps that are expressible as appended layers
 * (canvos.md §1.4–1.5, §6.1), one image per K8S_VERSION. Everything except the k8s layer is shared across
 * versions and built once. Steps that need to execute code in the image (apt, dracut, drivers…) are not planned:
 * they belong in BASE_IMAGE, and a warning says so when the configuration asks for one.
 */
import { resolve } from 'node:path';
import { CanvosError } from '../errors.js';
import { baseK8sVersion, providerImagePath, providerTag, resolveBaseImage } from './derive.js';
import type { BuildPlan, PlannedLayer, ProviderImagePlan } from './plan-types.js';
import { CA_PATHS, ETC_CERTS_DIR } from './ca-certs.js';
import { applyInventory } from './inventory.js';
import {
  agentProviderLayer,
  finalizeLayer,
  k8sLayer,
  osConfigLayer,
  overlayLayer,
  stylusLayer,
} from './plan-layers.js';
import { twoNodeScripts } from './two-node.js';
import { formatLoc, type BuildConfig, type WarningHandler } from './resolve.js';

/** Options of {@link planProviderImages}. */
export interface ProviderPlanOptions {
  /** Directory holding `overlay/`, `certs/`, `cloudconfigs/` and relative EDGE_CUSTOM_CONFIG. Default: process.cwd(). */
  projectDir?: string | undefined;
  /**
   * Whether the base image's systemd is ≥ 255 (it then receives k8s and the agent provider as signed system
   * extensions, so they are not bundled). Default: false (bundle), unless known from the base image.
   */
  supportsSystemdExtensions?: boolean | undefined;
  onWarning?: WarningHandler | undefined;
  /** The build step the plan is for: provider images, or the installer ISO's rootfs (inventory rules). Default: 'provider'. */
  scope?: 'provider' | 'iso' | undefined;
}

export { CA_PATHS } from './ca-certs.js';

export { BUNDLED_SENTINEL, PROVIDERS_DIR } from './plan-layers.js';

/**
 * Plan one provider image per version. Throws ERR_CONFIG for configurations whose image shape canvos-lite cannot
 * produce (TWO_NODE off ubuntu|opensuse-leap/amd64) and for a missing BASE_IMAGE where CanvOS has no default.
 */
export function planProviderImages(
  c: BuildConfig,
  versions: readonly string[],
  opts: ProviderPlanOptions = {},
): BuildPlan {
  // Refusals and no-effect warnings come from the CanvOS inventory, so they match README's table.
  applyInventory(c, ['base', opts.scope ?? 'provider'], opts.onWarning);
  // TWO_NODE runs through the rootless executor (two-node.ts); only the OS/arch CanvOS cannot serve are refused here.
  if (c.twoNode) twoNodeScripts(c);
  if (versions.length === 0)
    throw new CanvosError('ERR_CONFIG', 'no Kubernetes version to build', {
      hint: 'set K8S_VERSION or list versions in k8s_version.json',
    });
  const unique = [...new Set(versions)];
  for (const name of ['IMAGE_PATH', 'BASE_K8S_VERSION'] as const) {
    const set = name === 'IMAGE_PATH' ? c.imagePath : c.baseK8sVersion;
    if (set && unique.length > 1) {
      const at = formatLoc(c.origins[name]);
      throw new CanvosError(
        'ERR_CONFIG',
        `${at ? `${at}: ` : ''}${name} is set, but ${unique.length} Kubernetes versions would all use it`,
        {
          hint: `remove ${name} (it is derived per version), or set K8S_VERSION to build one version`,
        },
      );
    }
  }

  const dir = resolve(opts.projectDir ?? process.cwd());
  const host = (p: string): string => resolve(dir, p);
  const baseImage = resolveBaseImage(c);
  const bundled = c.bundleK8sAndAgentProvider || opts.supportsSystemdExtensions !== true;

  const sourceImages = new Set<string>();
  const shared: PlannedLayer[] = [osConfigLayer(c, host, baseImage), overlayLayer(host)];
  if (bundled) shared.push(agentProviderLayer(c, sourceImages));
  shared.push(stylusLayer(c, host, sourceImages), finalizeLayer(c, sourceImages));

  const images: ProviderImagePlan[] = unique.map((version) => {
    const layers = [...shared];
    if (bundled) layers.push(k8sLayer(c, version, sourceImages));
    return {
      k8sDistribution: c.k8sDistribution,
      k8sVersion: version,
      baseK8sVersion: baseK8sVersion(c, version),
      tag: providerTag(c, version),
      imageRef: providerImagePath(c, version),
      arch: c.arch,
      baseImage,
      layers,
    };
  });
  return { baseImage, bundled, sourceImages: [...sourceImages], sharedLayers: shared, images };
}

/**
 * What the base scan must collect for `layers`: the files their edits read and the directories their whiteouts
 * list. Derived from the plan, so a new edit or whiteout cannot be forgotten by the scan.
 */
export function baseScanRequest(layers: readonly PlannedLayer[]): { files: string[]; listDirs: string[] } {
  const files = new Set<string>();
  const listDirs = new Set<string>();
  for (const l of layers) {
    for (const it of l.items) {
      if (it.source.kind === 'base-edit') files.add(it.source.path);
      else if (it.source.kind === 'ca-certs') {
        const ca = CA_PATHS[it.source.distro];
        for (const f of [ca.bundle, ...(ca.extraBundles ?? [])]) files.add(f);
        listDirs.add(ETC_CERTS_DIR);
      } else if (it.source.kind === 'base-match') listDirs.add(it.source.dir);
    }
  }
  return { files: [...files], listDirs: [...listDirs] };
}
