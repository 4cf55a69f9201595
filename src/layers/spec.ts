/**
 * The declarative description of a layer: a list of entries (files, directories, host trees, links, devices,
 * whiteouts, entries streamed from another image). `buildLayer` turns the same spec into the same bytes.
 * Paths are image paths (`/etc/x`, `etc/x` and `./etc/x` are the same); `..` segments are rejected.
 */
import type { FsEntry } from '../tar/entry.js';

/** Metadata shared by every explicit entry. Unset fields take the defaults below. */
export interface EntryMeta {
  /** Permission bits (0o7777 mask). Default: 0o644 for files (host files: their own bits), 0o755 for dirs, 0o777 for symlinks. */
  mode?: number;
  /** Default: 0. */
  uid?: number;
  /** Default: 0. */
  gid?: number;
  /** Default: '' (numeric ids only, like most image builders). */
  uname?: string;
  /** Default: ''. */
  gname?: string;
  /** Extended attributes written as PAX `SCHILY.xattr.<name>`, e.g. `security.capability`. Default: none. */
  xattrs?: Record<string, Buffer>;
  /** Seconds since the epoch, clamped to `sourceDateEpoch`. Default: `sourceDateEpoch`. */
  mtime?: number;
}

/**
 * Where a file's content comes from: a host file, an in-memory value, a URL verified against its sha256
 * (`sha256` is 64 hex digits, optionally prefixed `sha256:`), or an FsEntry read from another image (its
 * metadata is the default for the unset EntryMeta fields).
 */
export type FileSource =
  { host: string } | { inline: string | Buffer } | { url: string; sha256: string } | { entry: FsEntry };

/** A regular file. */
export interface FileSpec extends EntryMeta {
  type: 'file';
  path: string;
  source: FileSource;
}
/** A directory (its children are listed separately; parents are implied). */
export interface DirSpec extends EntryMeta {
  type: 'dir';
  path: string;
}
/**
 * A host directory copied recursively to `path` (the host directory's own metadata becomes `path`'s).
 * Symlinks stay symlinks, host hardlinks become tar hardlinks, sockets are skipped; host xattrs are not read
 * (Node has no xattr API) — give them with explicit `file` entries.
 */
export interface TreeSpec {
  type: 'tree';
  path: string;
  host: string;
  /** Owner for every entry. Default: 0. */
  uid?: number;
  /** Group for every entry. Default: 0. */
  gid?: number;
  /** Mode for every regular file. Default: the host file's permission bits. */
  fileMode?: number;
  /** Mode for every directory. Default: the host directory's permission bits. */
  dirMode?: number;
}
/** A symbolic link; `target` is stored verbatim (absolute targets are fine). */
export interface SymlinkSpec extends EntryMeta {
  type: 'symlink';
  path: string;
  target: string;
}
/**
 * A hard link to another regular file of the same layer (an image path). Metadata is the target's. In the archive
 * the byte-order-smallest name of a link set carries the content and the others link to it (same inode either way).
 */
export interface HardlinkSpec {
  type: 'hardlink';
  path: string;
  target: string;
}
/** A character or block device node. */
export interface DeviceSpec extends EntryMeta {
  type: 'char' | 'block';
  path: string;
  devmajor: number;
  devminor: number;
}
/** A named pipe. */
export interface FifoSpec extends EntryMeta {
  type: 'fifo';
  path: string;
}
/** Delete paths of lower layers: each becomes `<dir>/.wh.<name>` (literal paths, no globs). */
export interface WhiteoutSpec {
  type: 'whiteout';
  paths: readonly string[];
}
/** Hide everything lower layers have under `path` (`<path>/.wh..wh..opq`); the directory itself stays. */
export interface OpaqueSpec {
  type: 'opaque';
  path: string;
}
/**
 * Entries streamed from elsewhere (e.g. `mergeLayers` of another image). `map` relocates or drops each path
 * (normalised, without leading `/`); returning `null` drops the entry. Content is spooled to a temp file in the
 * build directory while the source is read, so the source's contract (consume before next) is honoured.
 */
export interface EntriesSpec {
  type: 'entries';
  source: AsyncIterable<FsEntry>;
  map?: (path: string) => string | null;
}

/** One item of a LayerSpec. */
export type LayerEntrySpec =
  | FileSpec
  | DirSpec
  | TreeSpec
  | SymlinkSpec
  | HardlinkSpec
  | DeviceSpec
  | FifoSpec
  | WhiteoutSpec
  | OpaqueSpec
  | EntriesSpec;

/**
 * A layer. When two entries produce the same path, the later one in `entries` wins (so a spec can override a
 * file of a `tree` by listing the file after it).
 */
export interface LayerSpec {
  entries: readonly LayerEntrySpec[];
}
