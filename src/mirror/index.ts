/**
 * Public surface of air-gap mirroring: mirror.yaml, item resolution (tag filters, fromBuild), destination naming,
 * plan/push/save/load, the mirror archive format, and k3s/RKE2 registries.yaml generation.
 */
export {
  parseMirrorConfig,
  loadMirrorConfig,
  hasTagOrDigest,
  MirrorConfigSchema,
  MirrorImageSchema,
  MirrorImageItemSchema,
  TagFilterSchema,
  RewriteSchema,
  ConcurrencySchema,
  FromBuildSchema,
  type MirrorConfig,
  type MirrorImageEntry,
  type TagFilter,
  type RewriteOptions,
  type ConcurrencyOptions,
  type FromBuild,
} from './config.js';
export { parseSemver, compareSemver, compileSemverRange, filterTags, DIGEST_TAG_RE, type SemVer } from './tags.js';
export {
  parseDestinationRoot,
  destinationRepository,
  destinationReference,
  planNames,
  type DestinationRoot,
} from './naming.js';
export { registriesYaml, registriesConfig, type RegistriesYamlOptions } from './registries-yaml.js';
export {
  ARCHIVE_FORMAT,
  FAT32_MAX_FILE,
  MIN_PART_SIZE,
  checkMaxPartSize,
  ArchiveManifestSchema,
  writeArchive,
  sinceBlobs,
  readArchiveManifest,
  manifestPathFor,
  type ArchiveManifest,
  type WriteArchiveOptions,
} from './archive.js';
export { MirrorArchive } from './archive-reader.js';
export { itemsFromRefs, itemsFromBuild, resolveItems, type ResolveItemsOptions } from './resolve.js';
export {
  mirrorPush,
  mirrorSave,
  mirrorLoad,
  openLoadSource,
  SOURCE_DIGEST_ANNOTATION,
  type MirrorSaveOptions,
} from './operations.js';
export { mirrorPlan, type MirrorPlan, type MirrorPlanOptions, type PlanImage, type PlanTarget } from './mirror-plan.js';
export { RegistryConnections } from './connections.js';
export { findReferrers, TagLists, type ReferrerSet } from './referrers.js';
export type { MirrorItem, MirrorOptions, MirrorFailure, MirrorImageResult, MirrorReport } from './types.js';
