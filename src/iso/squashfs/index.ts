/**
 * Public surface of the pure-TypeScript squashfs 4.0 writer (rootfs.squashfs of the installer ISO).
 */
export { writeSquashfs } from './write.js';
export type { SquashfsOptions, SquashfsProgress, SquashfsResult } from './write.js';
export type { SquashfsCompression } from './compressor.js';
export { DEFAULT_SQUASHFS_LEVEL, MAX_SQUASHFS_LEVEL, squashfsLevel } from './compressor.js';
export { walkDirectory } from './walk.js';
export type { WalkOptions } from './walk.js';
