/**
 * Random access into a tar file on disk: one pass over the 512-byte headers (ustar, PAX `x`, GNU `L`/`K`) records
 * each member's data offset and size, so members can later be streamed as byte ranges of the file without
 * re-reading the archive. Used to read `docker save` archives, whose layers are large members.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { CanvosError } from '../errors.js';
import { applyPax, decodeHeader, decodePax, isZeroBlock } from './parse.js';
import { throwIfAborted } from '../util/abort.js';

/** One member of an indexed tar. */
export interface TarMember {
  /** Normalised path (no leading `./` or `/`, no trailing `/`). */
  name: string;
  /** Tar typeflag (`0` file, `1` hardlink, `2` symlink, `5` directory…). */
  type: string;
  linkname: string;
  /** Byte offset of the member's data in the file. */
  offset: number;
  size: number;
}

function normalize(name: string): string {
  return posix
    .normalize(name.replace(/^\/+/, ''))
    .replace(/^\.\/?/, '')
    .replace(/\/+$/, '');
}

/** Index every member of the tar at `path` (one sequential pass over the headers). */
export async function indexTar(path: string, signal?: AbortSignal): Promise<Map<string, TarMember>> {
  const fh = await open(path, 'r');
  const members = new Map<string, TarMember>();
  try {
    const block = Buffer.alloc(512);
    let pos = 0;
    let pax: Map<string, Buffer> | undefined;
    let longName: string | undefined;
    let longLink: string | undefined;
    for (;;) {
      throwIfAborted(signal);
      const { bytesRead } = await fh.read(block, 0, 512, pos);
      if (bytesRead < 512 || isZeroBlock(block)) break;
      const h = decodeHeader(block, `${path} at offset ${pos}`);
      const dataAt = pos + 512;
      const readData = async (): Promise<Buffer> => {
        if (h.size > 1024 * 1024)
          throw new CanvosError('ERR_LAYER_CORRUPT', `${path}: oversized tar extension header at offset ${pos}`);
        const b = Buffer.alloc(h.size);
        await fh.read(b, 0, h.size, dataAt);
        return b;
      };
      if (h.typeflag === 'x') pax = decodePax(await readData(), path);
      else if (h.typeflag === 'L') longName = (await readData()).toString('utf8').replace(/\0+$/, '');
      else if (h.typeflag === 'K') longLink = (await readData()).toString('utf8').replace(/\0+$/, '');
      else if (h.typeflag !== 'g') {
        if (pax) applyPax(h, pax);
        const name = normalize(longName ?? h.name);
        const linkname = longLink ?? h.linkname;
        members.set(name, {
          name,
          type: h.typeflag === '\0' ? '0' : h.typeflag,
          linkname,
          offset: dataAt,
          size: h.size,
        });
        pax = longName = longLink = undefined;
      }
      const dataSize =
        h.typeflag === '0' ||
        h.typeflag === '\0' ||
        h.typeflag === '7' ||
        h.typeflag === 'x' ||
        h.typeflag === 'L' ||
        h.typeflag === 'K' ||
        h.typeflag === 'g'
          ? h.size
          : 0;
      pos = dataAt + Math.ceil(dataSize / 512) * 512;
    }
  } finally {
    await fh.close();
  }
  return members;
}

/** Follow symlinks/hardlinks (docker save links duplicate layers) to the regular member holding the data. */
export function resolveMember(members: Map<string, TarMember>, name: string, what: string): TarMember {
  let cur = normalize(name);
  for (let hops = 0; hops < 16; hops++) {
    const m = members.get(cur);
    if (!m) break;
    if (m.type === '0' || m.type === '7') return m;
    if (m.type === '2') cur = normalize(posix.join(posix.dirname(cur), m.linkname));
    else if (m.type === '1') cur = normalize(m.linkname);
    else break;
  }
  throw new CanvosError('ERR_LAYOUT', `${what}: ${name} is missing from the archive`, {
    hint: 'the archive is incomplete or not a docker save archive',
  });
}

/** Stream one member's bytes from the file. */
export function openMember(path: string, m: TarMember): Readable {
  // `end` is inclusive; an empty member still needs a (zero-length) stream.
  return m.size === 0 ? Readable.from([]) : createReadStream(path, { start: m.offset, end: m.offset + m.size - 1 });
}

/** Read a small member whole (manifest.json, configs), refusing members larger than `limit`. */
export async function readMember(path: string, m: TarMember, limit = 16 * 1024 * 1024): Promise<Buffer> {
  if (m.size > limit) throw new CanvosError('ERR_LAYOUT', `${path}: ${m.name} is larger than ${limit} bytes`);
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(m.size);
    await fh.read(b, 0, m.size, m.offset);
    return b;
  } finally {
    await fh.close();
  }
}
