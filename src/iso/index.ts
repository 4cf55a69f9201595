/**
 * Public API of the iso area: the CanvOS/AuroraBoot installer ISO (buildIso) and its parts — FAT EFI image
 * writer, GRUB artefacts and menu, the files-iso overlay and local-ui.tar layer, xorriso argument builder and
 * runner — plus the squashfs writer.
 */
export {
  buildIso,
  type BuildIsoInput,
  type BuildIsoOptions,
  type BuildIsoResult,
  type FileExtractor,
  type IsoProgress,
  type SquashfsWriter,
} from './build-iso.js';
export {
  writeFatImage,
  type FatFileSpec,
  type FatImageSpec,
  type FatImageResult,
  type FatProgress,
  type WriteFatOptions,
} from './fat.js';
export type { FatType } from './fat-geometry.js';
export {
  GRUB_CHAINLOAD_CFG,
  DEBUG_CMDLINE,
  CANVOS_GRUB_TEMPLATE,
  applyGrubEdits,
  canvosGrubMenu,
  type GrubMenuOptions,
} from './grub-cfg.js';
export { GENERATED_ISO_PATHS, GRUB_MENU_PATH, scanFilesIso, type FilesIsoEntry } from './files-iso.js';
export { LOCAL_UI_DIR, checkLocalUi, localUiLayer } from './local-ui.js';
export {
  BIOS_CORE_MODULES,
  efiBootFiles,
  efiNames,
  grubCandidates,
  grubMkimageArgs,
  shimCandidates,
  writeBiosImages,
  type BiosImageOptions,
  type EfiBootOptions,
  type IsoArch,
} from './grub.js';
export { DEFAULT_CONTENT_SPLIT_BYTES, readUserData, splitFile } from './iso-overlay.js';
export { ISO_VOLUME_LABEL, xorrisoArgs, type XorrisoArgsInput } from './xorriso-args.js';
export { runXorriso, type RunXorrisoOptions, type XorrisoProgress } from './run-xorriso.js';
export * from './squashfs/index.js';
