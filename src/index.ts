/**
 * canvos-lite public API. Every name exported here is documented and stable within a minor version.
 */
export { CanvosError, RegistryHttpError, XorrisoError, EXIT_CODES, type ErrorCode, type CanvosErrorOptions } from './errors.js';
export { VERSION } from './version.js';
export * from './oci/index.js';
export * from './layers/index.js';
export * from './registry/index.js';
export * from './copy/index.js';
export * from './provider/index.js';
export * from './mirror/index.js';
export * from './iso/index.js';
export * from './uki/index.js';
