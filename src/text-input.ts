/**
 * Reading the user's text inputs (.arg, canvos.yaml, mirror.yaml, k8s_version.json, user-data) the same bounded way:
 * a documented size limit checked before the bytes are read (small enough that parsing stays well under a second), UTF-8 required (refused naming the byte offset), and
 * YAML parsed in linear time. The yaml package's own `uniqueKeys` check compares every new key with every earlier
 * one of its mapping (80k keys took minutes); duplicate keys are found here with one Set per mapping instead.
 */
import { open } from 'node:fs/promises';
import { isUtf8 } from 'node:buffer';
import {
  isMap,
  LineCounter,
  parseDocument,
  visit,
  YAMLParseError,
  type Document,
  type DocumentOptions,
  type ParseOptions,
  type SchemaOptions,
} from 'yaml';
import { CanvosError } from './errors.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Size limits of the text inputs (bytes), refused with ERR_CONFIG (exit 3) before they are read. Real files are a few
 * KiB; the limits keep the synchronous YAML parse (during which a signal waits) well under a second.
 */
export const INPUT_LIMITS = {
  /** CanvOS `.arg`. */
  argFile: 64 * KiB,
  /** canvos.yaml. */
  configYaml: 64 * KiB,
  /** mirror.yaml. */
  mirrorYaml: 256 * KiB,
  /** k8s_version.json. */
  k8sVersions: 64 * KiB,
  /** user-data (cloud-config) put into the ISO. */
  userData: MiB,
} as const;

import { echo } from './util/echo.js';

export { ECHO_LIMIT, echo } from './util/echo.js';

/** Offset of the first byte that is not part of valid UTF-8, or -1. Linear. */
export function firstInvalidUtf8(buf: Uint8Array): number {
  if (isUtf8(buf)) return -1;
  for (let i = 0; i < buf.length;) {
    const b = buf[i] ?? 0;
    const n = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    if (n === 0 || i + n > buf.length || !isUtf8(buf.subarray(i, i + n))) return i;
    i += n;
  }
  return -1;
}

/** Options of {@link readTextInput}. */
export interface ReadTextOptions {
  /** What the file is, for messages ("user-data", "canvos.yaml"). */
  what: string;
  /** Largest accepted size in bytes. */
  limit: number;
  /** Hint when the file cannot be read. */
  hint: string;
}

/**
 * Read a text input as bytes: ERR_CONFIG naming the file for I/O errors, a file larger than `limit` (checked before
 * reading), and bytes that are not UTF-8 (naming the offset).
 */
export async function readTextBytes(path: string, o: ReadTextOptions): Promise<Buffer> {
  let buf: Buffer;
  try {
    const fh = await open(path, 'r');
    try {
      const st = await fh.stat();
      if (st.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
      if (st.size > o.limit) throw tooLarge(path, o);
      // Read at most limit+1 bytes: a file that grows (or a pipe) cannot make us read more.
      const chunks: Buffer[] = [];
      let total = 0;
      for (;;) {
        const b = Buffer.allocUnsafe(Math.min(MiB, o.limit + 1 - total));
        const { bytesRead } = await fh.read(b, 0, b.length, null);
        if (bytesRead === 0) break;
        chunks.push(b.subarray(0, bytesRead));
        total += bytesRead;
        if (total > o.limit) throw tooLarge(path, o);
      }
      buf = Buffer.concat(chunks, total);
    } finally {
      await fh.close();
    }
  } catch (e) {
    if (CanvosError.is(e)) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new CanvosError(
      'ERR_CONFIG',
      `cannot read ${o.what} ${path}: ${code === 'ENOENT' ? 'no such file' : (code ?? (e as Error).message)}`,
      { hint: o.hint, cause: e },
    );
  }
  const bad = firstInvalidUtf8(buf);
  if (bad >= 0) {
    throw new CanvosError(
      'ERR_CONFIG',
      `${path}: ${o.what} is not UTF-8 text (invalid byte 0x${(buf[bad] ?? 0).toString(16).padStart(2, '0')} at offset ${bad})`,
      {
        hint: 'save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)',
      },
    );
  }
  return buf;
}

/** {@link readTextBytes} decoded. */
export async function readTextInput(path: string, o: ReadTextOptions): Promise<string> {
  return (await readTextBytes(path, o)).toString('utf8');
}

function tooLarge(path: string, o: ReadTextOptions): CanvosError {
  return new CanvosError('ERR_CONFIG', `${path}: ${o.what} is larger than the limit of ${o.limit} bytes`, {
    hint: `${o.what} files are small text; check that this is the right file`,
  });
}

/** Options of {@link parseYaml}: the yaml package's, except `uniqueKeys` (always refused, checked linearly). */
export type ParseYamlOptions = Omit<ParseOptions & DocumentOptions & SchemaOptions, 'uniqueKeys'>;

/**
 * `parseDocument` in linear time: duplicate keys (compared as their scalar source value; merge keys `<<` excepted)
 * are added to `doc.errors` as DUPLICATE_KEY, as the yaml package's `uniqueKeys` would, with `linePos` set.
 */
export function parseYaml(text: string, opts: ParseYamlOptions = {}): Document.Parsed {
  const lc = opts.lineCounter ?? new LineCounter();
  const doc = parseDocument(text, { ...opts, lineCounter: lc, uniqueKeys: false });
  if (doc.errors.length) return doc;
  // Anchors seen so far, in document order: an alias naming none is an error here (else it silently reads as null).
  const anchors = new Set<string>();
  const anchor = (node: { anchor?: string | undefined }): void => {
    if (node.anchor) anchors.add(node.anchor);
  };
  visit(doc, {
    Scalar(_key, node) {
      anchor(node);
    },
    Seq(_key, node) {
      anchor(node);
    },
    Alias(_key, node) {
      if (anchors.has(node.source)) return undefined;
      const pos: [number, number] = [node.range?.[0] ?? 0, node.range?.[1] ?? 0];
      const err = new YAMLParseError(
        pos,
        'BAD_ALIAS',
        `Unresolved alias ${echo(node.source)} (the anchor must be set before the alias)`,
      );
      err.linePos = [lc.linePos(pos[0])];
      doc.errors.push(err);
      return visit.BREAK;
    },
    Map(_key, map) {
      if (!isMap(map)) return undefined;
      anchor(map);
      const seen = new Set<string>();
      for (const pair of map.items) {
        const k = pair.key as { value?: unknown; range?: [number, number, number] } | null;
        const name = k && typeof k === 'object' && 'value' in k ? String(k.value) : JSON.stringify(k);
        if (name === '<<') continue;
        if (seen.has(name)) {
          const pos: [number, number] = [k?.range?.[0] ?? 0, k?.range?.[1] ?? 0];
          const err = new YAMLParseError(pos, 'DUPLICATE_KEY', `Map keys must be unique (${echo(name)})`);
          err.linePos = [lc.linePos(pos[0])];
          doc.errors.push(err);
          return visit.BREAK;
        }
        seen.add(name);
      }
      return undefined;
    },
  });
  return doc;
}
