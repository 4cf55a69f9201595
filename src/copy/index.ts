/**
 * Public surface of image copying: the transport interfaces, location parsing/opening, the copy engine, and the
 * on-disk transports (OCI layout, docker-archive) plus the local blob cache they share.
 */
export type {
  ProgressEvent,
  ProgressFn,
  OpOptions,
  RawManifest,
  ImageSource,
  ImageDestination,
  PutBlobResult,
} from '../image/types.js';
export { copyImage, CopyPool, type CopyOptions, type CopyResult } from './copy.js';
export { loadGraph, selectPlatforms, bottomUp, type ManifestNode, type Selection } from '../image/graph.js';
export {
  parseImageSpec,
  formatImageSpec,
  openSource,
  openDestination,
  TRANSPORTS,
  type TransportName,
  type ImageSpec,
  type OpenOptions,
} from '../transports/resolve-location.js';
export { OciLayout, REF_NAME_ANNOTATION, type LayoutTransportOptions } from '../transports/oci-layout/oci-layout.js';
export { layoutSource } from '../transports/oci-layout/layout-source.js';
export { layoutDestination } from '../transports/oci-layout/layout-destination.js';
export {
  BlobCache,
  defaultCacheDir,
  storeBlob,
  blobFile,
  blobSize,
  type BlobCacheOptions,
  type StoreBlobOptions,
} from '../cache/blob-cache.js';
export {
  BlobLocations,
  blobLocationsFromEnv,
  type BlobLocationsOptions,
  type RepositoryLocation,
} from '../cache/blob-locations.js';
export {
  dockerArchiveSource,
  type DockerArchiveSourceOptions,
} from '../transports/docker-archive/docker-archive-source.js';
export {
  dockerArchiveDestination,
  type DockerArchiveDestinationOptions,
} from '../transports/docker-archive/docker-archive-destination.js';
export { indexTar, resolveMember, openMember, readMember, type TarMember } from '../tar/tar-index.js';
