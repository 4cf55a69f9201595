/**
 * Public API of the provider area: CanvOS build configuration (`.arg`, canvos.yaml, k8s_version.json), the values
 * CanvOS derives from it, the OS file edits, the pack snippet, and the provider-image plan.
 */
export { ARG_NAMES, RETIRED_ARGS, canonicalArgName, type ArgName } from './args.js';
export {
  ARG_INFO,
  BuildArgsSchema,
  K8sSourceSchema,
  DEFAULT_K8S_IMAGE_PATTERN,
  FIPS_PUB_REPO,
  OS_DISTRIBUTIONS,
  K8S_DISTRIBUTIONS,
  UBUNTU_VERSIONS,
  type ArgInfo,
  type BuildArgs,
  type BuildArgsInput,
  type K8sSource,
} from './schema.js';
export {
  resolveBuildConfig,
  formatLoc,
  type BuildConfig,
  type ConfigEntry,
  type ResolveOptions,
  type SourceLocation,
  type WarningHandler,
} from './resolve.js';
export { parseArgEntries, parseArgText, loadArgFile, type ArgFileOptions } from './arg-file.js';
export {
  parseConfigEntries,
  parseConfigYaml,
  loadConfigFile,
  type ConfigFileOptions,
  type ConfigYamlEntries,
} from './config-file.js';
export { loadBuildConfig, type LoadConfigOptions } from './load.js';
export { gitDescribePeVersion, withPeVersionDefault } from './pe-version.js';
export {
  INVENTORY,
  applyInventory,
  argEntry,
  isNonDefault,
  inventoryMarkdown,
  type InventoryEntry,
  type InventoryRule,
  type InventoryScope,
  type InventoryStatus,
  type InventoryIssue,
} from './inventory.js';
export {
  K8sVersionsSchema,
  parseK8sVersions,
  loadK8sVersions,
  selectK8sVersions,
  type K8sVersions,
} from './k8s-versions.js';
export {
  resolveBaseImage,
  isJetsonBase,
  stylusImage,
  stylusPackageImage,
  providerImage,
  baseK8sVersion,
  luetArch,
  binType,
  thirdPartyBinaryPath,
  k8sSource,
  imageTag,
  providerTag,
  providerImagePath,
} from './derive.js';
export {
  editKairosRelease,
  editBootargs,
  kairosImageLabel,
  kairosName,
  CGROUP_V2_ARG,
  NOUVEAU_ARGS,
} from './os-edits.js';
export { packSnippet, systemUriTemplate } from './pack-snippet.js';
export {
  planProviderImages,
  CA_PATHS,
  PROVIDERS_DIR,
  BUNDLED_SENTINEL,
  type ProviderPlanOptions,
} from './provider-plan.js';
export type { BuildPlan, PlannedItem, PlannedLayer, PlannedSource, ProviderImagePlan } from './plan-types.js';
export {
  buildProviderImages,
  type BuildProviderOptions,
  type BuildProviderResult,
  type BuiltProviderImage,
} from './build.js';
export { describeProviderBuild, type DryRunOptions, type DryRunReport, type ImageSizeInfo } from './dry-run.js';
export { assembleImage, type AppendedLayer, type AssembledImage } from './assemble.js';
export { scanBase, resolveInBase, type BaseScan, type BaseFile } from './base-scan.js';
export { openImage, type OpenedImage, type OpenImageOptions } from './image-reader.js';
export { twoNodeScripts, twoNodeSourcesFromEnv, type TwoNodeSources } from './two-node.js';
export {
  openInstallerRootfs,
  planInstallerLayers,
  type InstallerRootfs,
  type InstallerRootfsOptions,
} from './installer.js';
export {
  buildInstallerIso,
  installerIsoInputs,
  projectContentDirs,
  type InstallerIsoInputs,
  type InstallerIsoOptions,
  type InstallerIsoResult,
} from './installer-iso.js';
