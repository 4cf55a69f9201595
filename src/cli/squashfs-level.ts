/**
 * `--squashfs-level N`: the gzip level of the squashfs that `iso`, `disk` and `build-all` write (rootfs.squashfs,
 * the disk's recovery.squashfs). Checked as the library checks it, but refused as a usage error (exit 2).
 */
import { asUsageError } from './flags.js';
import { DEFAULT_SQUASHFS_LEVEL, squashfsLevel } from '../iso/squashfs/compressor.js';

/** The parseArgs option. */
export const SQUASHFS_LEVEL_OPTION = { 'squashfs-level': { type: 'string' } } as const;

/** Help text of the flag (two lines, aligned for the commands' option lists). */
export const SQUASHFS_LEVEL_USAGE = `  --squashfs-level N         gzip level of the squashfs: 1..12 (libdeflate; 10..12 search hardest), default
                             ${String(DEFAULT_SQUASHFS_LEVEL.native)}; 1..9 on node:zlib (no native addon), default ${String(DEFAULT_SQUASHFS_LEVEL.js)}`;

/** `--squashfs-level` as a number (undefined when not given); a bad value is a usage error (exit 2). */
export function parseSquashfsLevel(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = /^\d+$/.test(v.trim()) ? Number(v.trim()) : NaN;
  return asUsageError(() => squashfsLevel(n), `--squashfs-level ${JSON.stringify(v)} is invalid`);
}
