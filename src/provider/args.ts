/**
 * The catalogue of CanvOS build arguments (canvos.md §2.1 `.arg.template` + §2.2 Earthfile ARGs): their canonical
 * UPPER_SNAKE names, the camelCase keys of BuildConfig, and the names CanvOS retired. The values' types, defaults and
 * checks live in schema.ts; this file only knows names, so both input forms (.arg, canvos.yaml) can share it.
 */

/** Every argument canvos-lite knows, spelled as in CanvOS's Earthfile / `.arg`. */
export const ARG_NAMES = [
  // .arg.template (§2.1)
  'CUSTOM_TAG',
  'IMAGE_REGISTRY',
  'OS_DISTRIBUTION',
  'IMAGE_REPO',
  'OS_VERSION',
  'K8S_DISTRIBUTION',
  'ISO_NAME',
  'ARCH',
  'HTTPS_PROXY',
  'HTTP_PROXY',
  'NO_PROXY',
  'UPDATE_KERNEL',
  'CLUSTERCONFIG',
  'CIS_HARDENING',
  'EDGE_CUSTOM_CONFIG',
  'FORCE_INTERACTIVE_INSTALL',
  // Earthfile inputs and versions (§2.2)
  'K8S_VERSION',
  'BASE_IMAGE',
  'PE_VERSION',
  'KAIROS_VERSION',
  'KAIROS_INIT_VERSION',
  'K3S_FLAVOR_TAG',
  'RKE2_FLAVOR_TAG',
  'K3S_PROVIDER_VERSION',
  'KUBEADM_PROVIDER_VERSION',
  'RKE2_PROVIDER_VERSION',
  'NODEADM_PROVIDER_VERSION',
  'CANONICAL_PROVIDER_VERSION',
  'ETCD_VERSION',
  'KINE_VERSION',
  'DRBD_VERSION',
  // repositories and tooling images
  'SPECTRO_PUB_REPO',
  'BUILDER_3RDPARTY_VERSION',
  'SPECTRO_THIRD_PARTY_IMAGE',
  'ALPINE_TAG',
  'ALPINE_IMG',
  'SPECTRO_LUET_REPO',
  'KAIROS_BASE_IMAGE_URL',
  'BASE_IMAGE_URL',
  'OSBUILDER_VERSION',
  'OSBUILDER_IMAGE',
  'AURORABOOT_VERSION',
  'AURORABOOT_IMAGE',
  'GOLANG_VERSION',
  // toggles
  'DISABLE_SELINUX',
  'UBUNTU_PRO_ATTACH',
  'FIPS_ENABLED',
  'TWO_NODE',
  'IS_MAAS',
  'MAAS_IMAGE_NAME',
  'IS_UKI',
  'MY_ORG',
  'EXPIRATION_IN_DAYS',
  'INCLUDE_MS_SECUREBOOT_KEYS',
  'AUTO_ENROLL_SECUREBOOT_KEYS',
  'UKI_BRING_YOUR_OWN_KEYS',
  'ENROLL_SPECTRO_EXTENSION_CERT',
  'SPECTRO_EXTENSION_CERT_IMAGE',
  'BUNDLE_K8S_AND_AGENT_PROVIDER',
  'CMDLINE',
  'BRANDING',
  'EFI_MAX_SIZE',
  'EFI_IMG_SIZE',
  'DEBUG',
  'IS_CLOUD_IMAGE',
  'REGION',
  'S3_BUCKET',
  'S3_KEY',
  // GPU drivers
  'INSTALL_NVIDIA_GPU_DRIVERS',
  'NVIDIA_DRIVER_BRANCH',
  'NVIDIA_DRIVER_TYPE',
  'NVIDIA_USE_CUDA_REPO',
  'NVIDIA_INSTALL_FABRICMANAGER',
  'NVIDIA_INSTALL_IMEX',
  'NVIDIA_INSTALL_CONTAINER_TOOLKIT',
  'NVIDIA_REBUILD_INITRD',
  'INSTALL_AMD_GPU_DRIVERS',
  'AMDGPU_DRIVER_SOURCE',
  'AMDGPU_DRIVER_RELEASE',
  'AMDGPU_ARTIFACT_PATH',
  'AMDGPU_REBUILD_INITRD',
  'AMDGPU_INSTALL_SMI',
  // Derived in the Earthfile (§2.2) but overridable like any ARG; empty means "derive as CanvOS does"
  'BASE_IMAGE_TAG',
  'IS_JETSON',
  'STYLUS_BASE',
  'STYLUS_PACKAGE_BASE',
  'BIN_TYPE',
  'CLI_IMAGE',
  'IMAGE_TAG',
  'IMAGE_PATH',
  'BASE_K8S_VERSION',
  'K8S_DISTRIBUTION_TAG',
  'PROVIDER_BASE',
] as const;

/** A known argument name. */
export type ArgName = (typeof ARG_NAMES)[number];

/**
 * Lowercase proxy variables the Earthfile derives from the uppercase ones (`ARG http_proxy=${HTTP_PROXY}`).
 * They are accepted as aliases; the uppercase spelling wins when both are given.
 */
export const ARG_ALIASES: Readonly<Record<string, ArgName>> = {
  http_proxy: 'HTTP_PROXY',
  https_proxy: 'HTTPS_PROXY',
  no_proxy: 'NO_PROXY',
};

/** Names CanvOS used to accept, with what to do instead (reported as warnings, never errors). */
export const RETIRED_ARGS: Readonly<Record<string, string>> = {
  PROXY_CERT_PATH: 'deprecated since CanvOS 4.5.15: put PEM certificates in the certs/ directory instead',
  SPECTRO_LUET_VERSION: 'removed from CanvOS in Sep 2025; the luet repository is SPECTRO_LUET_REPO/luet-repo-<amd|arm>',
  LUET_PROJECT: 'removed from CanvOS in Sep 2025; the luet repository is SPECTRO_LUET_REPO/luet-repo-<amd|arm>',
  UBUNTU_PRO_KEY: 'secrets are never read from build arguments (they leak into image history); the value was ignored',
};

/** Arguments whose value must never be echoed in errors or warnings. */
export const SECRET_ARGS: ReadonlySet<string> = new Set(['UBUNTU_PRO_KEY']);

/** Arguments whose value may carry URL userinfo (redacted when echoed). */
export const URL_ARGS: ReadonlySet<string> = new Set(['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy']);

/**
 * Prefix of Dockerfile-looking arguments in some `.arg` files (`CUSTOM_ARG_BRAND=acme`). CanvOS's Earthfile does not
 * pass them to the Dockerfile (only BASE, OS_*, the proxies and DRBD_VERSION), so they are accepted and reported as unused.
 */
export const CUSTOM_ARG_PREFIX = 'CUSTOM_ARG_';

const NAME_SET: ReadonlySet<string> = new Set(ARG_NAMES);

/** True when `name` is a known argument (exact, case-sensitive spelling). */
export function isArgName(name: string): name is ArgName {
  return NAME_SET.has(name);
}

/** `K8S_DISTRIBUTION` → `k8sDistribution`, `BUILDER_3RDPARTY_VERSION` → `builder3rdpartyVersion`. */
export function argKey(name: string): string {
  const [first = '', ...rest] = name.toLowerCase().split('_');
  return first + rest.map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join('');
}

const BY_KEY: ReadonlyMap<string, ArgName> = new Map(ARG_NAMES.map((n) => [argKey(n), n]));

/** The canonical UPPER name for a camelCase BuildConfig key (`osVersion` → `OS_VERSION`), if it is one. */
export function argNameForKey(key: string): ArgName | undefined {
  return BY_KEY.get(key);
}

/**
 * Canonicalise a key written in either form (UPPER_SNAKE as in `.arg`, camelCase as in canvos.yaml, or a lowercase
 * proxy alias). Returns undefined for unknown keys.
 */
export function canonicalArgName(key: string): ArgName | undefined {
  if (isArgName(key)) return key;
  const alias = ARG_ALIASES[key];
  if (alias) return alias;
  return argNameForKey(key);
}
