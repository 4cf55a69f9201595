/**
 * The CanvOS ISO overlay (Earthfile build-iso): validated user-data, the edge custom config, content bundles
 * split into `<name>.zst_partNN` pieces (GNU `split --bytes=3GB --numeric-suffixes`, keeping every ISO9660 file
 * under 4 GiB) and the cluster config. Everything is checked before the expensive squashfs/ISO work starts.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir, readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CanvosError } from '../errors.js';
import { endStream } from '../fs-util.js';
import { INPUT_LIMITS, parseYaml, readTextBytes } from '../text-input.js';

/** GNU split's `3GB` (decimal gigabytes), CanvOS's content part size. */
export const DEFAULT_CONTENT_SPLIT_BYTES = 3_000_000_000;

/**
 * Reads and validates a user-data file: the first line must be `#cloud-config` and the YAML must parse.
 * Throws ERR_CONFIG naming the file and line.
 */
export async function readUserData(file: string): Promise<Buffer> {
  const buf = await readTextBytes(file, {
    what: 'user-data',
    limit: INPUT_LIMITS.userData,
    hint: 'pass an existing file (CanvOS: the user-data file next to .arg)',
  });
  const text = buf.toString('utf8');
  const first = (text.split('\n', 1)[0] ?? '').replace(/\r$/, '').trimEnd();
  if (first !== '#cloud-config') {
    throw new CanvosError(
      'ERR_CONFIG',
      `${file}:1: user-data must start with a "#cloud-config" line (found ${JSON.stringify(first.slice(0, 40))})`,
      {
        hint: 'make "#cloud-config" the very first line of the file',
      },
    );
  }
  const doc = parseYaml(text, { prettyErrors: true });
  const err = doc.errors[0];
  if (err) {
    const line = err.linePos?.[0]?.line ?? 0;
    throw new CanvosError(
      'ERR_CONFIG',
      `${file}:${line}: invalid YAML in user-data: ${err.message.split('\n')[0] ?? ''}`,
      {
        hint: 'fix the YAML syntax (indent with spaces, quote values containing ": ")',
      },
    );
  }
  let value: unknown;
  try {
    value = doc.toJS();
  } catch (e) {
    // An undefined alias, or aliases expanding past the yaml package's limit (maxAliasCount).
    throw new CanvosError(
      'ERR_CONFIG',
      `${file}: invalid YAML in user-data: ${(e as Error).message.split('\n')[0] ?? ''}`,
      { hint: 'define every *alias with an &anchor before it, and avoid deeply nested aliases' },
    );
  }
  if (value !== null && (typeof value !== 'object' || Array.isArray(value))) {
    throw new CanvosError('ERR_CONFIG', `${file}:2: user-data must be a YAML mapping`, {
      hint: 'write keys such as install: / stylus:',
    });
  }
  return buf;
}

/** Checks that an optional input file exists and is a regular file; returns its path. */
export async function requireFile(file: string, what: string): Promise<string> {
  const st = await stat(file).catch(() => undefined);
  if (!st?.isFile()) {
    throw new CanvosError('ERR_CONFIG', `${what} ${file} does not exist or is not a file`, {
      hint: `check the ${what} path`,
    });
  }
  return file;
}

/**
 * The `*.zst` bundles of the content directories, in a stable order (CanvOS copies `content-*\/*.zst`). Throws
 * ERR_CONFIG for a missing dir; other files and a directory without bundles are reported to `onWarning`.
 */
export async function listContentBundles(
  dirs: readonly string[],
  onWarning?: (code: string, message: string) => void,
): Promise<string[]> {
  const out: string[] = [];
  for (const d of dirs) {
    const names = await readdir(d).catch((err: unknown) => {
      const e = err as NodeJS.ErrnoException;
      throw new CanvosError('ERR_CONFIG', `cannot read content directory ${d}: ${e.code ?? e.message}`, {
        cause: e,
        hint: 'pass a directory holding *.zst content bundles',
      });
    });
    const zst = names.filter((n) => n.endsWith('.zst')).sort();
    const other = names.filter((n) => !n.endsWith('.zst')).sort();
    if (other.length > 0)
      onWarning?.(
        'W_CONTENT_NOT_ZST',
        `${d}: ${other.join(', ')} not copied: only *.zst content bundles go onto the ISO (as CanvOS)`,
      );
    if (zst.length === 0)
      onWarning?.('W_CONTENT_EMPTY', `${d} holds no *.zst content bundle: nothing from it goes onto the ISO`);
    for (const n of zst) out.push(join(d, n));
  }
  const seen = new Set<string>();
  for (const f of out) {
    if (seen.has(basename(f)))
      throw new CanvosError('ERR_CONFIG', `content bundle ${basename(f)} appears in more than one content directory`, {
        hint: 'rename one of them',
      });
    seen.add(basename(f));
  }
  return out;
}

/**
 * Splits `file` into `<destDir>/<name>_part00, _part01, …` of `partBytes` each (an empty file gives no part, as
 * GNU split). Returns the part paths.
 */
export async function splitFile(
  file: string,
  destDir: string,
  partBytes: number,
  signal?: AbortSignal,
): Promise<string[]> {
  if (!Number.isSafeInteger(partBytes) || partBytes < 1)
    throw new CanvosError('ERR_CONFIG', `invalid content split size ${partBytes}`);
  await mkdir(destDir, { recursive: true });
  const parts: string[] = [];
  const name = basename(file);
  let cur: ReturnType<typeof createWriteStream> | undefined;
  let left = 0;
  const open = (): ReturnType<typeof createWriteStream> => {
    const p = join(destDir, `${name}_part${String(parts.length).padStart(2, '0')}`);
    parts.push(p);
    left = partBytes;
    return createWriteStream(p);
  };
  const closeCur = async (): Promise<void> => {
    const s = cur;
    cur = undefined;
    if (s) await endStream(s);
  };
  const write = async (s: ReturnType<typeof createWriteStream>, b: Buffer): Promise<void> => {
    if (!s.write(b))
      await new Promise<void>((res, rej) => {
        s.once('drain', res);
        s.once('error', rej);
      });
  };
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      (async () => {
        let off = 0;
        while (off < chunk.length) {
          if (!cur || left === 0) {
            await closeCur();
            cur = open();
          }
          const n = Math.min(left, chunk.length - off);
          await write(cur, chunk.subarray(off, off + n));
          off += n;
          left -= n;
        }
      })().then(() => {
        cb();
      }, cb);
    },
    final(cb) {
      closeCur().then(() => {
        cb();
      }, cb);
    },
  });
  try {
    await pipeline(createReadStream(file, { highWaterMark: 1024 * 1024 }), sink, { signal });
  } finally {
    await closeCur().catch(() => {});
  }
  return parts;
}

/** Copies `file` to `dest`, creating the parent directory. */
export async function copyInto(file: string, dest: string): Promise<void> {
  await mkdir(join(dest, '..'), { recursive: true });
  await copyFile(file, dest);
}
