/**
 * The layers of a provider-image plan (plan.ts), one builder per CanvOS step: the OS configuration, the overlay,
 * the bundled agent provider, the Palette Edge agent (stylus) configuration, the final clean-up, and the per-version
 * k8s layer. Builders that copy from images add those images to `sourceImages`.
 */
import { CanvosError } from '../errors.js';
import { baseK8sVersion, isJetsonBase, k8sSource, providerImage, stylusImage, thirdPartyBinaryPath } from './derive.js';
import type { PlannedItem, PlannedLayer } from './plan-types.js';
import { CA_PATHS } from './ca-certs.js';
import { formatLoc, type BuildConfig } from './resolve.js';

/** Where CanvOS's provider images put the agent provider (moved from /usr/local/system/providers, PE-8315). */
export const PROVIDERS_DIR = '/system/providers';
/** Sentinel telling Stylus that k8s and the agent provider are baked in (no sysext download). */
export const BUNDLED_SENTINEL = '/etc/spectro-sysext/k8s-and-agent-provider-bundled';

/** A path of the project directory, made absolute. */
type HostPath = (p: string) => string;

/** CA certificates, /etc/kairos-release, /etc/cos/bootargs.cfg, Jetson/MAAS cloud configs, an empty machine-id. */
export function osConfigLayer(c: BuildConfig, host: HostPath, baseImage: string): PlannedLayer {
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
  return {
    name: 'os-config',
    shared: true,
    description: 'CA certificates, /etc/kairos-release, /etc/cos/bootargs.cfg, empty /etc/machine-id',
    items: osConfig,
  };
}

/** The project's overlay/files/etc, copied to /etc. */
export function overlayLayer(host: HostPath): PlannedLayer {
  return {
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
  };
}

/** The agent provider of the provider image, for a bundled build (CanvOS's systemd < 255 path). */
export function agentProviderLayer(c: BuildConfig, sourceImages: Set<string>): PlannedLayer {
  const ref = providerImage(c);
  sourceImages.add(ref);
  return {
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
  };
}

/** The Palette Edge agent (stylus) configuration, and EDGE_CUSTOM_CONFIG. */
export function stylusLayer(c: BuildConfig, host: HostPath, sourceImages: Set<string>): PlannedLayer {
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
    const at = formatLoc(c.origins.EDGE_CUSTOM_CONFIG);
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
  return {
    name: 'stylus',
    shared: true,
    description: `Palette Edge agent configuration from ${stylus}`,
    items: stylusItems,
  };
}

/** CanvOS's clean-up: SSH host keys and moduli removed, etcdctl added, an empty machine-id. */
export function finalizeLayer(c: BuildConfig, sourceImages: Set<string>): PlannedLayer {
  sourceImages.add(c.spectroThirdPartyImage);
  return {
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
  };
}

// The k8s layer is last: it is the only per-version layer, so all images share every layer below it.
export function k8sLayer(c: BuildConfig, version: string, sourceImages: Set<string>): PlannedLayer {
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
