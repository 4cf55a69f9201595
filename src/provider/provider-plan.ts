/**
 * The provider-image plan: CanvOS's `base-image` + `provider-image` steps that are expressible as appended layers
 * (canvos.md §1.4–1.5, §6.1), one image per K8S_VERSION. Everything except the k8s layer is shared across
 * versions and built once. Steps that need to execute code in the image (apt, dracut, drivers…) are not planned:
 * they belong in BASE_IMAGE, and a warning says so when the configuration asks for one.
 */
import { resolve } from 'node:path';
import { CanvosError } from '../errors.js';
import {
  baseK8sVersion,
  isJetsonBase,
  k8sSource,
  providerImage,
  providerImagePath,
  providerTag,
  resolveBaseImage,
  stylusImage,
  thirdPartyBinaryPath,
} from './derive.js';
import type { BuildPlan, PlannedItem, PlannedLayer, ProviderImagePlan } from './plan-types.js';
import { CA_PATHS, ETC_CERTS_DIR } from './ca-certs.js';
import { applyInventory } from './inventory.js';
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

/** Where CanvOS's provider images put the agent provider (moved from /usr/local/system/providers, PE-8315). */
export const PROVIDERS_DIR = '/system/providers';
/** Sentinel telling Stylus that k8s and the agent provider are baked in (no sysext download). */
export const BUNDLED_SENTINEL = '/etc/spectro-sysext/k8s-and-agent-provider-bundled';

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

  const osConfig: PlannedItem[] = [
    // Dockerfile 10–25: cp -a /certs/. <anchors>/ + update-ca-certificates / update-ca-trust (see ca-certs.ts).
    {
      op: 'copy',
      source: { kind: 'ca-certs', dir: host('certs'), distro: c.osDistribution },
      target: CA_PATHS[c.osDistribution].anchors,
      optional: true,
    },
    {
      op: 'edit',
      source: { kind: 'base-edit', path: '/etc/kairos-release', edit: 'kairos-release' },
      target: '/etc/kairos-release',
      mode: 0o644,
    },
  ];
  if (!c.isUki) {
    osConfig.push({
      op: 'edit',
      source: { kind: 'base-edit', path: '/etc/cos/bootargs.cfg', edit: 'bootargs' },
      target: '/etc/cos/bootargs.cfg',
      optional: true,
    });
  }
  // Plain COPY in CanvOS (no --if-exists): a missing file fails the build there too.
  if (isJetsonBase(baseImage, c.isJetson)) {
    osConfig.push({
      op: 'copy',
      source: { kind: 'host-file', path: host('cloudconfigs/mount.yaml') },
      target: '/etc/kairos/mount.yaml',
      missingHint: `${c.isJetson === 'true' ? 'IS_JETSON=true' : 'BASE_IMAGE is an nvidia-jetson-agx-orin image'}, so CanvOS copies cloudconfigs/mount.yaml to /etc/kairos/mount.yaml: copy it from CanvOS's cloudconfigs/ (or set IS_JETSON=false)`,
    });
  }
  if (c.isUki) {
    osConfig.push({
      op: 'copy',
      source: { kind: 'host-file', path: host('cloudconfigs/80_stylus_uki.yaml') },
      target: '/etc/kairos/80_stylus_uki.yaml',
      missingHint:
        "IS_UKI=true, so CanvOS copies cloudconfigs/80_stylus_uki.yaml to /etc/kairos/: copy it from CanvOS's cloudconfigs/ (or set IS_UKI=false)",
    });
  }
  if (c.isMaas) {
    osConfig.push({
      op: 'copy',
      source: { kind: 'host-file', path: host('cloudconfigs/80_stylus_maas.yaml') },
      target: '/system/oem/80_stylus_maas.yaml',
      missingHint:
        "IS_MAAS=true, so CanvOS copies cloudconfigs/80_stylus_maas.yaml to /system/oem/: copy it from CanvOS's cloudconfigs/ (or set IS_MAAS=false)",
    });
  }
  osConfig.push(
    {
      op: 'whiteout',
      source: { kind: 'base-match', dir: '/var/lib/dbus', pattern: 'machine-id' },
      target: '/var/lib/dbus',
    },
    { op: 'create', source: { kind: 'generated', content: '' }, target: '/etc/machine-id', mode: 0o444 },
  );

  const shared: PlannedLayer[] = [
    {
      name: 'os-config',
      shared: true,
      description: 'CA certificates, /etc/kairos-release, /etc/cos/bootargs.cfg, empty /etc/machine-id',
      items: osConfig,
    },
    {
      name: 'overlay',
      shared: true,
      description: 'overlay/files/etc → /etc',
      items: [
        { op: 'copy', source: { kind: 'host-tree', path: host('overlay/files/etc') }, target: '/etc', optional: true },
        {
          op: 'copy',
          source: { kind: 'host-file', path: host('overlay/files/etc/logrotate.d/stylus.conf') },
          target: '/etc/logrotate.d/stylus.conf',
          mode: 0o644,
          optional: true,
        },
      ],
    },
  ];
  const sourceImages = new Set<string>();
  if (bundled) {
    const ref = providerImage(c);
    sourceImages.add(ref);
    shared.push({
      name: 'agent-provider',
      shared: true,
      description: `agent provider from ${ref} (agent-provider-* → ${PROVIDERS_DIR})`,
      items: [
        {
          op: 'copy',
          source: { kind: 'image', ref, path: '/', exclude: ['/usr/local/system/providers'] },
          target: '/',
        },
        {
          op: 'copy',
          source: { kind: 'image', ref, path: '/usr/local/system/providers/agent-provider-*' },
          target: PROVIDERS_DIR,
        },
        // CanvOS `rm -rf /usr/local/system/providers`: only when the base has it (the provider image's own copy is
        // excluded above); a whiteout of a path no lower layer has breaks overlayfs runtimes (issue #12).
        {
          op: 'whiteout',
          source: { kind: 'base-match', dir: '/usr/local/system', pattern: 'providers' },
          target: '/usr/local/system',
        },
        { op: 'create', source: { kind: 'generated', content: '' }, target: BUNDLED_SENTINEL, mode: 0o644 },
      ],
    });
  }
  const stylus = stylusImage(c);
  sourceImages.add(stylus);
  const stylusItems: PlannedItem[] = [
    {
      op: 'copy',
      source: { kind: 'image', ref: stylus, path: '/etc/kairos/branding' },
      target: '/etc/kairos/branding',
    },
    {
      op: 'copy',
      source: { kind: 'image', ref: stylus, path: '/etc/kairos/80_stylus.yaml' },
      target: '/etc/kairos/80_stylus.yaml',
      optional: true,
    },
    {
      op: 'copy',
      source: { kind: 'image', ref: stylus, path: '/oem/stylus_config.yaml' },
      target: '/etc/kairos/branding/stylus_config.yaml',
    },
    {
      op: 'copy',
      source: { kind: 'image', ref: stylus, path: '/etc/elemental/config.yaml' },
      target: '/etc/elemental/config.yaml',
    },
  ];
  if (c.edgeCustomConfig) {
    // CanvOS copies it only when present; the default name is often absent, a name written explicitly is warned about.
    const at = formatLoc(c.origins?.EDGE_CUSTOM_CONFIG);
    stylusItems.push({
      op: 'copy',
      source: { kind: 'host-file', path: host(c.edgeCustomConfig) },
      target: '/oem/.edge_custom_config.yaml',
      optional: true,
      ...(at && c.edgeCustomConfig !== '.edge-custom-config.yaml'
        ? {
            missingWarning: `${at}: EDGE_CUSTOM_CONFIG=${c.edgeCustomConfig}: ${host(c.edgeCustomConfig)} does not exist, so no edge custom config is added (CanvOS copies it only if it exists)`,
          }
        : {}),
    });
  }
  shared.push({
    name: 'stylus',
    shared: true,
    description: `Palette Edge agent configuration from ${stylus}`,
    items: stylusItems,
  });

  sourceImages.add(c.spectroThirdPartyImage);
  shared.push({
    name: 'finalize',
    shared: true,
    description: 'remove SSH host keys and moduli, etcdctl, empty /etc/machine-id',
    items: [
      { op: 'whiteout', source: { kind: 'base-match', dir: '/etc/ssh', pattern: 'ssh_host_*' }, target: '/etc/ssh' },
      { op: 'whiteout', source: { kind: 'base-match', dir: '/etc/ssh', pattern: 'moduli' }, target: '/etc/ssh' },
      {
        op: 'copy',
        source: { kind: 'image', ref: c.spectroThirdPartyImage, path: thirdPartyBinaryPath(c, 'etcdctl') },
        target: '/usr/bin/etcdctl',
      },
      { op: 'create', source: { kind: 'generated', content: '' }, target: '/etc/machine-id', mode: 0o444 },
    ],
  });

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

// The k8s layer is last: it is the only per-version layer, so all images share every layer below it.
function k8sLayer(c: BuildConfig, version: string, sourceImages: Set<string>): PlannedLayer {
  const src = k8sSource(c, version);
  const name = `k8s-${version}`;
  if ('image' in src) {
    sourceImages.add(src.image);
    return {
      name,
      shared: false,
      description: `k8s/${c.k8sDistribution}@${baseK8sVersion(c, version)} from ${src.image}`,
      items: [
        { op: 'copy', source: { kind: 'image', ref: src.image, path: '/', exclude: ['/var/cache'] }, target: '/' },
      ],
    };
  }
  const target = src.path ?? (c.k8sDistribution === 'k3s' ? '/usr/bin/k3s' : undefined);
  if (!target) {
    throw new CanvosError('ERR_CONFIG', `k8s "${version}": a url source for ${c.k8sDistribution} needs a target path`, {
      hint: `add path: /usr/bin/<binary> to the k8s."${version}" entry of canvos.yaml`,
    });
  }
  const mode = typeof src.mode === 'string' ? parseInt(src.mode, 8) : (src.mode ?? 0o755);
  return {
    name,
    shared: false,
    description: `k8s ${c.k8sDistribution} ${version}: ${target} from ${new URL(src.url).host}`,
    items: [
      { op: 'copy', source: { kind: 'url', url: src.url, sha256: src.sha256.replace(/^sha256:/, '') }, target, mode },
    ],
  };
}
