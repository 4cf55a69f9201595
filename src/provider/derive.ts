/**
 * Values CanvOS derives from the build arguments (Earthfile preamble, canvos.md §1.1, §1.5): the default base image,
 * the Spectro images the provider image takes files from, the luet k8s package, and the provider image's tag/path.
 * Pure functions of BuildConfig; nothing here touches the network.
 */
import { CanvosError } from '../errors.js';
import { echo } from '../text-input.js';
import { formatLoc, type BuildConfig } from './resolve.js';
import type { K8sSource } from './schema.js';

type Cfg = Omit<BuildConfig, 'origins'> & Partial<Pick<BuildConfig, 'origins'>>;

/**
 * The base image: BASE_IMAGE when set, else CanvOS's default for OS_DISTRIBUTION/OS_VERSION/ARCH/KAIROS_INIT_VERSION
 * (Earthfile 185–201): ubuntu 20/22 → `kairos-ubuntu:<20|22>.04-core-<arch>-generic-<init>`, other ubuntu versions
 * `kairos-ubuntu:<ver>-core-<arch>-generic-<init>[-uki]`, opensuse-leap → `kairos-opensuse:leap-<ver>-…`.
 * rhel, sles and FIPS builds have no public default: ERR_CONFIG.
 */
export function resolveBaseImage(c: Cfg): string {
  if (c.baseImage) return c.baseImage;
  const where = formatLoc(c.fipsEnabled ? c.origins?.FIPS_ENABLED : c.origins?.OS_DISTRIBUTION);
  const at = where ? `${where}: ` : '';
  if (c.fipsEnabled) {
    throw new CanvosError(
      'ERR_CONFIG',
      `${at}FIPS_ENABLED=true requires BASE_IMAGE: there is no public FIPS base image`,
      {
        hint: 'build one with CanvOS ubuntu-fips/, rhel-fips/ or hadron/ --fips, then set BASE_IMAGE=<that image>',
      },
    );
  }
  const tail = `${c.arch}-generic-${c.kairosInitVersion}`;
  // BASE_IMAGE_TAG (if set) replaces the derived tag for the distributions that have a default base.
  if (c.baseImageTag && (c.osDistribution === 'ubuntu' || c.osDistribution === 'opensuse-leap'))
    return `${c.kairosBaseImageUrl}/${c.baseImageTag}`;
  switch (c.osDistribution) {
    case 'ubuntu': {
      if (c.osVersion === '20' || c.osVersion === '22')
        return `${c.kairosBaseImageUrl}/kairos-ubuntu:${c.osVersion}.04-core-${tail}`;
      return `${c.kairosBaseImageUrl}/kairos-ubuntu:${c.osVersion}-core-${tail}${c.isUki ? '-uki' : ''}`;
    }
    case 'opensuse-leap':
      return `${c.kairosBaseImageUrl}/kairos-opensuse:leap-${c.osVersion}-core-${tail}`;
    default:
      throw new CanvosError(
        'ERR_CONFIG',
        `${at}OS_DISTRIBUTION=${c.osDistribution} requires BASE_IMAGE: CanvOS has no default ${c.osDistribution} base image`,
        {
          hint: `build it with CanvOS's ${c.osDistribution === 'rhel' ? 'rhel-core-images/ or rhel-fips/' : 'slem/'} scripts, then set BASE_IMAGE=<that image>`,
        },
      );
  }
}

/** CanvOS auto-detects Nvidia Jetson bases by name (Earthfile 203–205); IS_JETSON=true|false overrides it. */
export function isJetsonBase(baseImage: string, isJetson: '' | 'true' | 'false' = ''): boolean {
  return isJetson ? isJetson === 'true' : baseImage.includes('nvidia-jetson-agx-orin');
}

/** STYLUS_BASE: `$SPECTRO_PUB_REPO/edge/stylus-framework-linux-$ARCH:$PE_VERSION` unless set. */
export function stylusImage(c: Cfg): string {
  if (c.stylusBase) return c.stylusBase;
  return `${c.spectroPubRepo}/edge/stylus-framework-linux-${c.arch}:${c.peVersion}`;
}

/** STYLUS_PACKAGE_BASE: `$SPECTRO_PUB_REPO/edge/stylus-linux-$ARCH:$PE_VERSION` unless set. */
export function stylusPackageImage(c: Cfg): string {
  if (c.stylusPackageBase) return c.stylusPackageBase;
  return `${c.spectroPubRepo}/edge/stylus-linux-${c.arch}:${c.peVersion}`;
}

/** The agent provider image (PROVIDER_BASE, Earthfile `kairos-provider-image`); kubeadm-fips uses provider-kubeadm. */
export function providerImage(c: Cfg): string {
  if (c.providerBase) return c.providerBase; // PROVIDER_BASE set explicitly
  const [name, version] = ((): [string, string] => {
    switch (c.k8sDistribution) {
      case 'k3s':
        return ['k3s', c.k3sProviderVersion];
      case 'rke2':
        return ['rke2', c.rke2ProviderVersion];
      case 'kubeadm':
      case 'kubeadm-fips':
        return ['kubeadm', c.kubeadmProviderVersion];
      case 'nodeadm':
        return ['nodeadm', c.nodeadmProviderVersion];
      case 'canonical':
        return ['canonical', c.canonicalProviderVersion];
    }
  })();
  return `${c.spectroPubRepo}/edge/kairos-io/provider-${name}:${version}`;
}

/**
 * BASE_K8S_VERSION: the luet package version (`1.30.4-k3s1`, `1.30.4-rke2r1`, bare for the others). An explicit
 * BASE_K8S_VERSION wins (single-version builds only, checked by the plan); K8S_DISTRIBUTION_TAG replaces the flavor.
 */
export function baseK8sVersion(
  c: Pick<Cfg, 'k8sDistribution' | 'k3sFlavorTag' | 'rke2FlavorTag'> &
    Partial<Pick<Cfg, 'baseK8sVersion' | 'k8sDistributionTag'>>,
  version: string,
): string {
  if (c.baseK8sVersion) return c.baseK8sVersion;
  if (c.k8sDistribution === 'k3s') return `${version}-${c.k8sDistributionTag || c.k3sFlavorTag}`;
  if (c.k8sDistribution === 'rke2') return `${version}-${c.k8sDistributionTag || c.rke2FlavorTag}`;
  return version;
}

/** `amd` / `arm`, as in the luet repository names `luet-repo-<amd|arm>`. */
export function luetArch(arch: 'amd64' | 'arm64'): 'amd' | 'arm' {
  return arch === 'arm64' ? 'arm' : 'amd';
}

/** BIN_TYPE: `palette`, or `vertex` for FIPS (selects third-party binaries, Earthfile 210–216), unless set. */
export function binType(c: Pick<Cfg, 'fipsEnabled'> & Partial<Pick<Cfg, 'binType'>>): 'palette' | 'vertex' {
  if (c.binType) return c.binType;
  return c.fipsEnabled ? 'vertex' : 'palette';
}

/** Path of a third-party binary inside SPECTRO_THIRD_PARTY_IMAGE (Earthfile `download-third-party`). */
export function thirdPartyBinaryPath(c: Cfg, binary: string): string {
  return `/binaries/${binary}/latest/${binType(c)}/${c.arch}/${binary}`;
}

/**
 * Where the k8s binaries of `version` come from: the canvos.yaml `k8s:` entry, else the image named by
 * k8sImagePattern (by default the luet package image `k8s/<dist>@<BASE_K8S_VERSION>`).
 */
export function k8sSource(c: Cfg, version: string): K8sSource & { origin: 'config' | 'pattern' } {
  const configured = c.k8sSources[version];
  if (configured) return { ...configured, origin: 'config' };
  const base = baseK8sVersion(c, version);
  const image = c.k8sImagePattern
    .replaceAll('{luetRepo}', c.spectroLuetRepo)
    .replaceAll('{luetArch}', luetArch(c.arch))
    .replaceAll('{arch}', c.arch)
    .replaceAll('{dist}', c.k8sDistribution)
    .replaceAll('{baseVersion}', base.replaceAll('+', '-'))
    .replaceAll('{version}', version);
  return { image, origin: 'pattern' };
}

const TAG_RE = /^[\w][\w.-]{0,127}$/;

/** IMAGE_TAG: `$PE_VERSION-$CUSTOM_TAG`, or `$PE_VERSION` when CUSTOM_TAG is empty (Earthfile 218–222), unless set. */
export function imageTag(c: Pick<Cfg, 'peVersion' | 'customTag'> & Partial<Pick<Cfg, 'imageTag'>>): string {
  if (c.imageTag) return c.imageTag;
  return c.customTag ? `${c.peVersion}-${c.customTag}` : c.peVersion;
}

/** The provider image's tag: `K8SDIST-K8SVER-PEVER[-CUSTOMTAG]` (no trailing dash without CUSTOM_TAG). */
export function providerTag(
  c: Pick<Cfg, 'k8sDistribution' | 'peVersion' | 'customTag'> & Partial<Pick<Cfg, 'imageTag' | 'imagePath'>>,
  version: string,
): string {
  if (c.imagePath) return c.imagePath.slice(c.imagePath.lastIndexOf(':') + 1); // IMAGE_PATH set: its own tag
  const tag = `${c.k8sDistribution}-${version}-${imageTag(c)}`;
  if (!TAG_RE.test(tag)) {
    throw new CanvosError(
      'ERR_CONFIG',
      `provider image tag ${echo(tag, 60)} (${tag.length} characters) is not a valid tag (letters, digits, "_", ".", "-"; at most 128)`,
      {
        hint: 'shorten CUSTOM_TAG',
      },
    );
  }
  return tag;
}

/** IMAGE_PATH: `$IMAGE_REGISTRY/$IMAGE_REPO:<providerTag>`, e.g. `ttl.sh/ubuntu:k3s-1.27.2-v4.0.6-demo`, unless set. */
export function providerImagePath(
  c: Pick<Cfg, 'imageRegistry' | 'imageRepo' | 'k8sDistribution' | 'peVersion' | 'customTag'> &
    Partial<Pick<Cfg, 'imageTag' | 'imagePath'>>,
  version: string,
): string {
  if (c.imagePath) return c.imagePath;
  return `${c.imageRegistry}/${c.imageRepo}:${providerTag(c, version)}`;
}
