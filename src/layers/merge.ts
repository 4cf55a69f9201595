/**
 * mergeLayers: the root filesystem of an image (its layers applied in order, with OCI whiteouts and opaque
 * directories, image-spec layer.md) as an FsEntry stream, without unpacking anything to disk.
 * Layers are read top (last) to bottom; an entry is emitted only if no upper layer already provided, deleted
 * or hid its path, so the first entry seen for a path is the winner. Memory: one small record per emitted path.
 */
import type { FsEntry } from '../tar/entry.js';
import { ancestors, baseName, joinPath, parentPath } from './path.js';
import { readLayer } from './read.js';

/**
 * Opens one layer blob (gzip or plain tar) for reading, e.g. from a registry or an OCI layout. An opener of an
 * image's layer may carry the layer's `digest` (for messages) and the config's `diffId`, which {@link mergeLayers}
 * checks when it reads the layer to its end.
 */
export type LayerOpener = (() => Promise<AsyncIterable<Buffer>>) & {
  readonly digest?: string | undefined;
  readonly diffId?: string | undefined;
  /** Called once the layer was read to its end and its uncompressed bytes matched `diffId`. */
  readonly onDiffIdVerified?: (() => void) | undefined;
};

/** Options of {@link mergeLayers}. */
export interface MergeOptions {
  signal?: AbortSignal | undefined;
  /** Called for recoverable oddities (e.g. a hardlink whose target exists nowhere). Default: ignore. */
  onWarning?: ((message: string) => void) | undefined;
}

const WH = '.wh.';
const OPAQUE = '.wh..wh..opq';

/**
 * Iterate the merged filesystem of `openers` (bottom layer first, as in a manifest). Order: entries of the top
 * layer first, each layer in archive order, so a directory may come after its children. Whiteout files are never
 * emitted. Each `content` must be consumed (or ignored) before requesting the next entry.
 *
 * Hardlinks: a hardlink is emitted as a hardlink when its target path was emitted from the same layer (so the
 * merged view has the same inode pairing). When the target was replaced or deleted by an upper layer, the link
 * keeps the content it had when its layer was applied: it is emitted as a regular file with the content of the
 * target found in its own layer, else in the nearest lower layer (whiteouts in between are not considered).
 * A link whose target exists nowhere is skipped with a warning.
 */
export async function* mergeLayers(openers: readonly LayerOpener[], opts: MergeOptions = {}): AsyncGenerator<FsEntry> {
  const emitted = new Map<string, { layer: number; dir: boolean }>();
  const deleted = new Set<string>();
  const opaque = new Set<string>();
  const hidden = (p: string): boolean => {
    if (deleted.has(p)) return true;
    for (const a of ancestors(p)) {
      if (deleted.has(a) || opaque.has(a)) return true;
      const e = emitted.get(a);
      if (e && !e.dir) return true;
    }
    return false;
  };
  for (const i of [...openers.keys()].reverse()) {
    const layerDeleted: string[] = [];
    const layerOpaque: string[] = [];
    const opener = openers[i];
    if (!opener) continue;
    const name = opener.digest ? `layer ${i} (${opener.digest})` : `layer ${i}`;
    const diffId = opener.diffId ? { expected: opener.diffId, index: i } : undefined;
    for await (const e of readLayer(await opener(), { name, signal: opts.signal, diffId })) {
      const base = baseName(e.path);
      if (base.startsWith(WH)) {
        if (base === OPAQUE) layerOpaque.push(parentPath(e.path));
        else if (!base.startsWith(`${WH}${WH}`)) layerDeleted.push(joinPath(parentPath(e.path), base.slice(WH.length)));
        continue; // other .wh..wh.* names are aufs bookkeeping
      }
      if (emitted.has(e.path) || hidden(e.path)) continue;
      if (e.type === 'hardlink') {
        const t = emitted.get(e.linkname ?? '');
        if (t?.layer !== i) {
          const found = yield* materialise(openers, i, e, opts);
          if (found) emitted.set(e.path, { layer: i, dir: false });
          continue;
        }
      }
      emitted.set(e.path, { layer: i, dir: e.type === 'directory' });
      yield e;
    }
    // readLayer returned normally: it compared the uncompressed stream with diffId at its end.
    if (diffId) opener.onDiffIdVerified?.();
    for (const p of layerDeleted) deleted.add(p);
    for (const p of layerOpaque) opaque.add(p);
  }
}

/** Emit hardlink `link` of layer `from` as a regular file with its target's content from layer `from` or below. */
async function* materialise(
  openers: readonly LayerOpener[],
  from: number,
  link: FsEntry,
  opts: MergeOptions,
): AsyncGenerator<FsEntry, boolean> {
  const target = link.linkname ?? '';
  for (const [j, open] of [...openers.slice(0, from + 1).entries()].reverse()) {
    const it = readLayer(await open(), { name: `layer ${j}`, signal: opts.signal });
    try {
      for await (const e of it) {
        if (e.path !== target || e.type !== 'file') continue;
        yield { ...e, path: link.path };
        return true;
      }
    } finally {
      await it.return(undefined);
    }
  }
  opts.onWarning?.(`hardlink ${link.path} points to ${target}, which no layer up to layer ${from} contains; skipped`);
  return false;
}
