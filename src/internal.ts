/**
 * `canvos-lite/internal`: every module's exports (the stable API of index.ts included), for tools that need the
 * building blocks: format writers (squashfs, FAT, ext4, GPT), the registry client, tar and EFI helpers, schemas.
 * UNSTABLE: names and signatures may change in any release, without notice.
 * @packageDocumentation
 */
export * from './index.js';
export { FS_ERRNO_HINTS } from './error-map.js';
export { INPUT_LIMITS } from './text-input.js';
export { VERSION } from './version.js';
export * from './image/index.js';
export * from './util/run-tool.js';
export * from './layers/index.js';
export * from './registry/index.js';
export * from './copy/index.js';
export * from './provider/index.js';
export * from './mirror/index.js';
export * from './iso/index.js';
export * from './exec/index.js';
export * from './dockerfile/index.js';
export * from './disk/index.js';
export * from './artifact/index.js';
export * from './uki/index.js';
