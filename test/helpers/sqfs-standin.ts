/**
 * A squashfs writer built on squashfs-tools-ng's tar2sqfs (FsEntry stream → tar on stdin), with the same call
 * shape as writeSquashfs. Used as an independent oracle in ISO tests; not part of the library.
 */
import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FsEntry } from '../../src/layers/entry.js';
import { entriesToTar } from '../../src/layers/tar-builder.js';

/** Writes `entries` as a squashfs (gzip, 1 MiB blocks like AuroraBoot) with tar2sqfs. */
export async function tar2sqfsWriter(entries: AsyncIterable<FsEntry>, outPath: string, opts: { signal?: AbortSignal } = {}): Promise<{ bytes: number }> {
  const child = spawn('tar2sqfs', ['-q', '-f', '-c', 'gzip', '-b', '1048576', outPath], { stdio: ['pipe', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  const done = new Promise<number>((res, rej) => {
    child.on('error', rej);
    child.on('close', (c) => res(c ?? -1));
  });
  await pipeline(Readable.from(entriesToTar(entries, opts.signal)), child.stdin);
  const code = await done;
  if (code !== 0) throw new Error(`tar2sqfs exited ${code}: ${err}`);
  return { bytes: (await stat(outPath)).size };
}
