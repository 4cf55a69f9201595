/**
 * Public surface of the OCI distribution client: references, credentials, the per-registry transport,
 * the Repository API, and the ImageSource/ImageDestination adapters used by the copy engine.
 */
export {
  parseReference,
  makeReference,
  normalizeRegistry,
  registryEndpoint,
  DOCKER_HUB,
  DOCKER_HUB_ENDPOINT,
  type Reference,
} from './reference.js';
export { parseAuthChallenges, pickChallenge, type AuthChallenge } from './auth-challenge.js';
export {
  resolveCredentials,
  runCredentialHelper,
  defaultAuthFiles,
  normalizeAuthKey,
  DOCKER_HUB_AUTH_KEY,
  type Credentials,
  type CredentialOptions,
} from './credentials.js';
export { TokenCache, fetchBearerToken, scopeKey, type BearerToken, type TokenRequester } from './token.js';
export { RegistryAuth, repoScope } from './auth.js';
export {
  parseRetryAfter,
  backoffDelay,
  isNetworkError,
  isTimeoutError,
  DEFAULT_TIMEOUT_MS,
  RETRYABLE_STATUS,
  type RetryOptions,
} from '../http/retry.js';
export {
  RegistryHttp,
  type RegistryHttpOptions,
  type RegistryRequest,
  type RegistryResponse,
  type BodyFactory,
} from './http.js';
export {
  headBlob,
  openBlob,
  fetchBlobToFile,
  type BlobLocation,
  type BlobReadOptions,
  type FetchToFileOptions,
} from './blobs.js';
export { uploadBlob, type UploadOptions } from './upload.js';
export {
  RegistryRepository,
  nextLink,
  MANIFEST_MAX_BYTES,
  type RegistryRepositoryOptions,
  type ManifestInfo,
  type PushBlobOptions,
} from './client.js';
export {
  registrySource,
  registryDestination,
  blobMountOrigin,
  type RegistryTransportOptions,
  type RegistryImageSource,
  type RegistryImageDestination,
  type RegistryReadOptions,
  type RegistryPutBlobHints,
  type MountableSource,
  type MountOrigin,
} from '../transports/registry/registry-image.js';
export { BLOB_PARTS_DEFAULTS, type BlobPartsOptions } from './blob-parts.js';
export { ReadAheadBudget, defaultReadAheadBudget } from './blob-parts-scheduler.js';
export { loadRegistryCerts, defaultCertsDirs, type RegistryCertOptions, type RegistryCerts } from './certs-d.js';
