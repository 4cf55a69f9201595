/**
 * canvos-lite's stable library API: what a tool embedding canvos-lite needs to build provider images, installer
 * ISOs and disk images, copy and mirror images, push and pull artifacts, and build Trusted Boot (UKI) media, plus
 * reference/argument parsing, the error model and the progress types. Every name here is documented and stable
 * within a minor version; api/canvos-lite.api.md is the reviewed report of this surface.
 *
 * Everything else (format writers, registry client internals, tar/GPT/EFI helpers, schemas) is importable from
 * `canvos-lite/internal` (src/internal.ts), which is unstable: it may change in any release.
 * @packageDocumentation
 */

// Errors: every failure is a CanvosError with a stable code, a one-line message and a hint.
export {
  CanvosError,
  RegistryHttpError,
  XorrisoError,
  EXIT_CODES,
  redactText,
  redactUrl,
  type ErrorCode,
  type CanvosErrorOptions,
} from './errors.js';
export { toCanvosError } from './error-map.js';
export { VERSION } from './version.js';

// References, image specs (docker://, oci:, docker-archive:) and platforms.
export { parseReference, type Reference } from './registry/index.js';
export { parsePlatform, formatPlatform, MediaType, type Platform } from './image/index.js';
export {
  parseImageSpec,
  formatImageSpec,
  openSource,
  openDestination,
  copyImage,
  CopyPool,
  type ImageSpec,
  type OpenOptions,
  type CopyOptions,
  type CopyResult,
  type ImageSource,
  type ImageDestination,
  type ProgressEvent,
  type ProgressFn,
} from './copy/index.js';
export {
  OciLayout,
  BlobCache,
  BlobLocations,
  type BlobLocationsOptions,
  type RepositoryLocation,
} from './copy/index.js';
export type { RegistryTransportOptions, RegistryHttpOptions } from './registry/index.js';

// Deterministic layers from declarative specs (extra layers for provider images, test fixtures).
export {
  buildLayer,
  sourceDateEpochFromEnv,
  type BuildLayerOptions,
  type BuiltLayer,
  type LayerProgress,
  type LayerSpec,
  type LayerEntrySpec,
} from './layers/index.js';

// CanvOS configuration and provider images.
export {
  loadBuildConfig,
  loadK8sVersions,
  selectK8sVersions,
  planProviderImages,
  buildProviderImages,
  describeProviderBuild,
  packSnippet,
  buildInstallerIso,
  installerIsoInputs,
  type BuildConfig,
  type K8sVersions,
  type ProviderPlanOptions,
  type BuildProviderOptions,
  type BuildProviderResult,
  type DryRunReport,
  type InstallerIsoOptions,
} from './provider/index.js';

// ISO and disk images.
export { buildIso, type BuildIsoOptions, type BuildIsoResult, type IsoProgress } from './iso/index.js';
export { buildDisk, type BuildDiskOptions, type BuildDiskResult, type DiskFormat } from './disk/index.js';
export { buildInstallerDisk, type InstallerDiskOptions, type InstallerDiskResult } from './disk/installer-disk.js';

// Air-gap mirroring: plan, push (registry to registry), save (to a layout/archive), load (archive to registry).
export {
  loadMirrorConfig,
  resolveItems,
  itemsFromRefs,
  mirrorPlan,
  mirrorPush,
  mirrorSave,
  mirrorLoad,
  registriesYaml,
  type MirrorConfig,
  type MirrorItem,
  type MirrorOptions,
  type MirrorPlanOptions,
  type MirrorPlan,
  type PlanTarget,
  type MirrorReport,
  type MirrorFailure,
} from './mirror/index.js';

// OCI artifacts (the ISO as an artifact or an image).
export {
  pushArtifact,
  pullArtifact,
  pushIsoImage,
  type PushArtifactOptions,
  type PullArtifactOptions,
} from './artifact/index.js';

// Trusted Boot. buildConfiguredProviderImages / buildConfiguredIso are what `build` / `iso` run: they follow the
// configuration's IS_UKI (UKI provider images and the signed UKI ISO) and otherwise are buildProviderImages /
// buildInstallerIso, so a caller that honours every CanvOS argument uses these two.
export {
  buildConfiguredProviderImages,
  buildConfiguredIso,
  genkey,
  buildUkiIso,
  buildUkiIsoFromRootfs,
  buildUkiProviderImage,
  type GenkeyOptions,
  type UkiProviderOptions,
} from './uki/index.js';

// Running commands rootless.
export { openWorkspace, probeUserNamespaces } from './exec/index.js';
