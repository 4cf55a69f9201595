/**
 * Public API of the layers area: declarative specs → deterministic tar layers, and reading/merging/extracting
 * the layers of existing images without unpacking them to disk.
 */
export type { FsEntry, FsEntryType } from '../tar/entry.js';
export type {
  LayerSpec,
  LayerEntrySpec,
  EntryMeta,
  FileSource,
  FileSpec,
  DirSpec,
  TreeSpec,
  SymlinkSpec,
  HardlinkSpec,
  DeviceSpec,
  FifoSpec,
  WhiteoutSpec,
  OpaqueSpec,
  EntriesSpec,
} from './spec.js';
export {
  buildLayer,
  sourceDateEpochFromEnv,
  type BuildLayerOptions,
  type BuiltLayer,
  type LayerProgress,
} from './build.js';
export {
  compressChunks,
  compressionLevel,
  layerMediaType,
  DEFAULT_CHUNK_SIZE,
  DEFAULT_GZIP_LEVEL,
  DEFAULT_ZSTD_LEVEL,
  type CompressOptions,
  type LayerCompression,
} from './compress.js';
export { normalizeLayerPath, resolveLinkTarget } from './path.js';
export { readLayer, type ReadLayerOptions } from './read.js';
export { mergeLayers, type LayerOpener, type MergeOptions } from './merge.js';
export { extractFile, extractFileTo, type ExtractOptions } from './extract.js';
export { entriesToTar } from '../tar/write.js';
