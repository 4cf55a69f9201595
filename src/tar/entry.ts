/**
 * The filesystem entry model shared by tar layers, the merged-rootfs reader and the squashfs/ISO writers.
 */
import type { Readable } from 'node:stream';

export type FsEntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

/** One filesystem object as read from (or written to) a layer or a rootfs. */
export interface FsEntry {
  /** Normalised relative path without leading `/` or `./`, no `..` segments; the root directory is `''`. */
  path: string;
  type: FsEntryType;
  /** Permission bits including setuid/setgid/sticky (mask 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  uname?: string | undefined;
  gname?: string | undefined;
  /** Modification time, whole seconds since the epoch. */
  mtime: number;
  /** Content size in bytes (regular files; 0 otherwise). */
  size: number;
  /** Symlink target, or for hardlinks the normalised path of the link target. */
  linkname?: string | undefined;
  devmajor?: number | undefined;
  devminor?: number | undefined;
  /** Extended attributes, e.g. `security.capability`. */
  xattrs?: Record<string, Buffer> | undefined;
  /**
   * Regular files only: the content. A producer that yields entries lazily requires the consumer to read
   * this stream to the end (or call `.resume()`) before asking for the next entry.
   */
  content?: Readable | undefined;
}
