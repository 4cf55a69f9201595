/**
 * Public API of the disk area: the Kairos raw disk image (buildDisk; cloud and MAAS flavours) and its parts — GPT writer, ext4 images via
 * e2fsprogs, GRUB BIOS boot placement, Kairos partition files — and the qcow2 / fixed-VHD conversion.
 */
export {
  buildDisk,
  type BuildDiskInput,
  type BuildDiskOptions,
  type BuildDiskResult,
  type DiskFlavour,
  type DiskPhase,
} from './build-disk.js';
export { CONTENT_LABEL, contentBundles, writeContentImage, type DiskContent } from './content-partition.js';
export {
  FIRSTBOOT_ENTRY,
  UBUNTU_CLOUD_IMAGE_URL,
  UBUNTU_ROOTFS_LABEL,
  finishMaasImage,
  prepareUbuntuRootfs,
  type UbuntuRootfsOptions,
} from './maas.js';
export {
  buildInstallerDisk,
  diskFlavourOf,
  installerDiskInputs,
  type InstallerDiskOptions,
  type InstallerDiskResult,
} from './installer-disk.js';
export { writeDisk, layoutDisk, type DiskPart, type PlacedPart } from './assemble.js';
export {
  PART_TYPE,
  crc32,
  gptTables,
  guidBytes,
  usableRange,
  uuidV5,
  type GptInput,
  type GptPartition,
} from './gpt.js';
export { writeExt4Image, type Ext4ImageOptions } from './ext4.js';
export { DISK_CORE_MODULES, biosBootCode, placeBiosBoot, type BiosBootOptions } from './bios.js';
export {
  KAIROS,
  GRUB_RECOVERY_STUB,
  fallbackGrubCfg,
  firstBootResetYaml,
  grubEnvBlock,
  stateSizeMiB,
  type FallbackGrubOptions,
} from './kairos-files.js';
export { convertDisk, qemuImgArgs, type ConvertDiskOptions, type DiskFormat } from './convert.js';
