/**
 * Captures the few rootfs files the ISO needs besides the squashfs (kernel, initrd, shim, grub, release files)
 * while the merged rootfs streams into the squashfs writer: matching files are spooled to a temp dir and
 * re-offered from there, symlinks/hardlinks are recorded so `/boot/vmlinuz → vmlinuz-<kver>` resolves later.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { FsEntry } from '../tar/entry.js';
import { throwIfAborted } from '../util/abort.js';

/** Files captured from a rootfs stream, looked up by rootfs path (no leading `/`). */
export class RootfsCapture {
  private readonly files = new Map<string, string>();
  private readonly links = new Map<string, { hard: boolean; target: string }>();
  private readonly exact: Set<string>;
  private readonly dirs: Set<string>;
  private readonly spool: string;
  private n = 0;

  /** `exact`: paths to capture; `dirs`: directories whose direct children are all captured. */
  constructor(spoolDir: string, exact: Iterable<string>, dirs: Iterable<string>) {
    this.spool = spoolDir;
    this.exact = new Set(exact);
    this.dirs = new Set(dirs);
  }

  /** Pass-through of `src` that spools the wanted files (the spool dir must exist). */
  async *wrap(src: AsyncIterable<FsEntry>, signal?: AbortSignal): AsyncGenerator<FsEntry> {
    for await (const e of src) {
      throwIfAborted(signal);
      if ((e.type === 'symlink' || e.type === 'hardlink') && e.linkname !== undefined) {
        this.links.set(e.path, { hard: e.type === 'hardlink', target: e.linkname });
      } else if (e.type === 'file' && e.content && this.wanted(e.path)) {
        const host = join(this.spool, `f${this.n++}`);
        await pipeline(e.content, createWriteStream(host), { signal });
        this.files.set(e.path, host);
        yield { ...e, content: createReadStream(host) };
        continue;
      }
      yield e;
    }
  }

  private wanted(p: string): boolean {
    return this.exact.has(p) || this.dirs.has(posix.dirname(p));
  }

  /** Names of the captured files and of the links directly in `dir`, in byte order (like Go's os.ReadDir). */
  children(dir: string): string[] {
    const names = [...this.files.keys(), ...this.links.keys()]
      .filter((p) => posix.dirname(p) === dir)
      .map((p) => posix.basename(p));
    return [...new Set(names)].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  }

  /** Host path of the regular file at `path` after following symlinks and hardlinks, if captured. */
  resolve(path: string): string | undefined {
    let p = path;
    for (let hops = 0; hops < 40; hops++) {
      const f = this.files.get(p);
      if (f !== undefined) return f;
      const l = this.links.get(p);
      if (!l) return undefined;
      // Hardlink names are rootfs-relative; symlinks are absolute or relative to their directory.
      p = l.hard
        ? l.target
        : posix.normalize(l.target.startsWith('/') ? l.target : posix.join(posix.dirname(p), l.target));
      p = p.replace(/^\/+/, '');
      if (p.startsWith('../')) return undefined;
    }
    return undefined;
  }
}
