/**
 * Lays out and writes the raw disk: partitions aligned to 1 MiB from LBA 2048 (AuroraBoot's layout), 1 MiB free
 * at the end for the backup GPT, partition contents streamed from their image files into a sparse output file.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { CanvosError } from '../errors.js';
import { SECTOR, gptTables, uuidV5, type GptPartition } from './gpt.js';

const MIB = 1024 * 1024;
const MIB_SECTORS = MIB / SECTOR;

/** A partition to place: its content is a file (written at the partition start) or a buffer. */
export interface DiskPart {
  name: string;
  type: string;
  /** Filesystem label; also the name of its name-based GUID (as AuroraBoot does). */
  label: string;
  sizeMiB: number;
  attributes?: bigint | undefined;
  content?: string | Buffer | undefined;
}

/** A placed partition, as reported in the result. */
export interface PlacedPart {
  number: number;
  name: string;
  label: string;
  type: string;
  guid: string;
  firstLba: number;
  lastLba: number;
}

/** Computes the layout of `parts` on a disk of at least `minSizeMiB`. */
export function layoutDisk(parts: readonly DiskPart[], minSizeMiB = 0): { totalSectors: number; placed: PlacedPart[] } {
  let lba = 2048;
  const placed = parts.map((p, i) => {
    const first = lba;
    lba += p.sizeMiB * MIB_SECTORS;
    return {
      number: i + 1,
      name: p.name,
      label: p.label,
      type: p.type,
      guid: uuidV5(p.label),
      firstLba: first,
      lastLba: lba - 1,
    };
  });
  const totalSectors = Math.max(lba + MIB_SECTORS, minSizeMiB * MIB_SECTORS);
  return { totalSectors, placed };
}

/** Writes `out` (created, truncated): GPT + protective MBR with `bootCode`, the partitions' contents. */
export async function writeDisk(
  out: string,
  parts: readonly DiskPart[],
  opts: {
    diskGuid: string;
    minSizeMiB?: number | undefined;
    bootCode?: Buffer | undefined;
    signal?: AbortSignal | undefined;
  },
): Promise<{ totalSectors: number; placed: PlacedPart[] }> {
  const { totalSectors, placed } = layoutDisk(parts, opts.minSizeMiB);
  const gptParts: GptPartition[] = placed.map((p, i) => ({ ...p, attributes: parts[i]?.attributes }));
  const { head, tail, tailOffset } = gptTables({
    totalSectors,
    diskGuid: opts.diskGuid,
    partitions: gptParts,
    bootCode: opts.bootCode,
  });
  const fh = await open(out, 'w');
  try {
    await fh.truncate(totalSectors * SECTOR);
    await fh.write(head, 0, head.length, 0);
    await fh.write(tail, 0, tail.length, tailOffset);
    for (const [i, p] of parts.entries()) {
      const at = (placed[i]?.firstLba ?? 0) * SECTOR;
      if (Buffer.isBuffer(p.content)) await fh.write(p.content, 0, p.content.length, at);
    }
  } finally {
    await fh.close();
  }
  for (const [i, p] of parts.entries()) {
    if (typeof p.content !== 'string') continue;
    const size = (await stat(p.content)).size;
    if (size > p.sizeMiB * MIB)
      throw new CanvosError('ERR_INTERNAL', `partition image ${p.name} (${size} bytes) exceeds ${p.sizeMiB} MiB`);
    const start = (placed[i]?.firstLba ?? 0) * SECTOR;
    await pipeline(createReadStream(p.content), createWriteStream(out, { flags: 'r+', start }), {
      signal: opts.signal,
    });
  }
  return { totalSectors, placed };
}
