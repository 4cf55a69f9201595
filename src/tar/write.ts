/**
 * Serialises planned entries into a ustar/PAX byte stream (an async iterable of Buffers), reading file content
 * lazily from the host or spool files, so memory stays flat however large the layer is.
 * A host file whose size changed since it was planned fails the build rather than writing a corrupt archive.
 */
import { createReadStream } from 'node:fs';
import { CanvosError } from '../errors.js';
import type { FsEntry } from './entry.js';
import type { PlannedEntry } from './header.js';
import { END_OF_ARCHIVE, encodeHeader, padding } from './header.js';
import { throwIfAborted } from '../util/abort.js';

/** @internal Tar bytes for already planned (sorted, normalised) entries. */
export async function* tarBytes(entries: readonly PlannedEntry[], signal?: AbortSignal): AsyncGenerator<Buffer> {
  for (const e of entries) {
    throwIfAborted(signal);
    const { data, ...fields } = e;
    yield encodeHeader(fields);
    if (e.type !== 'file' || e.size === 0) continue;
    if (!data) throw new CanvosError('ERR_INTERNAL', `layer entry ${e.path} has no content source`);
    if ('buf' in data) {
      yield data.buf;
    } else {
      let n = 0;
      for await (const chunk of createReadStream(data.file, { highWaterMark: 256 * 1024 })) {
        const c = chunk as Buffer;
        n += c.length;
        if (n > e.size) break;
        yield c;
      }
      if (n !== e.size) {
        throw new CanvosError(
          'ERR_CONFIG',
          `layer file ${e.path}: ${data.file} changed size while the layer was built (${e.size} → ${n}+ bytes)`,
          {
            hint: 'do not modify input files during a build',
          },
        );
      }
    }
    const pad = padding(e.size);
    if (pad) yield Buffer.alloc(pad);
  }
  yield END_OF_ARCHIVE;
}

/**
 * Serialise an FsEntry stream as-is (no sorting, no parents added, mtimes untouched), e.g. a merged rootfs for
 * tar2sqfs. Each file's `content` is consumed in turn; a content stream shorter or longer than `size` fails.
 */
export async function* entriesToTar(entries: AsyncIterable<FsEntry>, signal?: AbortSignal): AsyncGenerator<Buffer> {
  for await (const e of entries) {
    throwIfAborted(signal);
    if (e.path === '') {
      e.content?.resume();
      continue; // the root has no tar name of its own
    }
    const { content, ...fields } = e;
    yield encodeHeader(fields);
    if (e.type !== 'file') continue;
    let n = 0;
    for await (const chunk of content ?? []) {
      n += (chunk as Buffer).length;
      if (n > e.size) break;
      yield chunk as Buffer;
    }
    if (n !== e.size)
      throw new CanvosError('ERR_INTERNAL', `entry ${e.path}: content has ${n} bytes, header says ${e.size}`);
    const pad = padding(e.size);
    if (pad) yield Buffer.alloc(pad);
  }
  yield END_OF_ARCHIVE;
}
