/**
 * The `oci:DIR[:tag]` destination, atomic at the directory level:
 * - a new (absent) DIR is built in a sibling `.DIR.partial-*` directory and renamed into place by commit(); a failed
 *   or interrupted copy removes it, so DIR stays as it was. An existing empty DIR (often a mount point, whose parent
 *   may be read-only) is written in place and emptied again when the copy does not commit;
 * - into an existing layout, blobs are added (each by temp file + rename) and index.json changes only in commit(),
 *   by an atomic rename, after every blob is complete;
 * - a directory that is not an OCI layout (no `oci-layout`, a foreign `index.json`) is never turned into one
 *   (ERR_LAYOUT, exit 12).
 */
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { CanvosError } from '../../errors.js';
import type { ImageDestination, PutBlobResult, RawManifest } from '../../image/types.js';
import type { Digest } from '../../image/digest.js';
import { exists, OciLayout, REF_NAME_ANNOTATION, type LayoutTransportOptions } from './oci-layout.js';
import type { Descriptor } from '../../image/schemas.js';
import { mkdirs } from '../../fs-util.js';

/** Check that an existing non-empty `dir` is an OCI image layout we may write into (ERR_LAYOUT otherwise). */
async function checkExistingLayout(dir: string): Promise<void> {
  const refuse = (why: string): CanvosError =>
    new CanvosError('ERR_LAYOUT', `${dir} is not an OCI image layout (${why}); refusing to write into it`, {
      hint: 'give a new or empty directory, or one that holds oci-layout, index.json and blobs/',
    });
  let marker: unknown;
  try {
    marker = JSON.parse(await readFile(join(dir, 'oci-layout'), 'utf8'));
  } catch (e) {
    throw refuse(
      (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no oci-layout file' : 'oci-layout is not valid JSON',
    );
  }
  if (
    typeof marker !== 'object' ||
    marker === null ||
    typeof (marker as { imageLayoutVersion?: unknown }).imageLayoutVersion !== 'string'
  )
    throw refuse('oci-layout has no imageLayoutVersion');
  if (!(await exists(join(dir, 'index.json')))) throw refuse('no index.json');
  await new OciLayout(dir).readIndex();
}

/** Move `staging`'s blobs into the layout `dir` (those it lacks), then remove `staging`. */
async function mergeBlobs(staging: string, dir: string): Promise<void> {
  const from = join(staging, 'blobs');
  for (const alg of await readdir(from)) {
    await mkdir(join(dir, 'blobs', alg), { recursive: true });
    for (const name of await readdir(join(from, alg))) {
      if (!(await exists(join(dir, 'blobs', alg, name))))
        await rename(join(from, alg, name), join(dir, 'blobs', alg, name));
    }
  }
}

/** A layout being written to `dir`, atomic at the directory level (see the file header). */
export interface StagedLayout {
  /** The layout to write into: a sibling `.DIR.partial-*` directory for a new `dir`, else `dir` itself. */
  readonly layout: OciLayout;
  /** `dir` already held a layout: blobs go in directly, index.json must change by one atomic rename. */
  readonly existing: boolean;
  /** Make the staged content `dir`: rename it into place (merged into a layout another writer created meanwhile). */
  commit(): Promise<void>;
  /** Remove what an uncommitted run created: the staging directory, or the content of a formerly empty `dir`. */
  discard(): Promise<void>;
}

/**
 * Prepare writing a layout to `dir`: an absent `dir` is staged beside it, an empty one written in place, an existing
 * layout written into (after checking it is one: ERR_LAYOUT otherwise). Used by `oci:` destinations and mirror save.
 */
export async function stageLayout(dir: string): Promise<StagedLayout> {
  const st = await stat(dir).catch((e: unknown) => {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  });
  if (st && !st.isDirectory())
    throw new CanvosError('ERR_LAYOUT', `${dir} exists and is not a directory`, {
      hint: 'give the path of a directory for oci:DIR',
    });
  const existing = st !== undefined && (await readdir(dir)).length > 0;
  if (existing) await checkExistingLayout(dir);
  let staging: string | undefined;
  if (!st) {
    await mkdirs(dirname(dir));
    staging = await mkdtemp(join(dirname(dir), `.${basename(dir)}.partial-`));
  }
  let layout = new OciLayout(staging ?? dir);
  await layout.init();
  let committed = false;
  return {
    get layout() {
      return layout;
    },
    existing,
    async commit(): Promise<void> {
      if (staging) {
        try {
          // Replaces an empty `dir` too; fails when another writer created a layout there meanwhile.
          await rename(staging, dir);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
          await checkExistingLayout(dir);
          const tags = (await layout.readIndex()).manifests;
          await mergeBlobs(staging, dir);
          const target = new OciLayout(dir);
          for (const d of tags) await target.setTag(d, d.annotations?.[REF_NAME_ANNOTATION]);
          await rm(staging, { recursive: true, force: true });
        }
        staging = undefined;
        layout = new OciLayout(dir);
      }
      committed = true;
    },
    async discard(): Promise<void> {
      if (committed) return;
      // Retries: a copy that failed with EMFILE may still hold descriptors while its staging directory is removed.
      if (staging) await rm(staging, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
      else if (st && !existing)
        for (const n of await readdir(dir).catch(() => [])) await rm(join(dir, n), { recursive: true, force: true });
      staging = undefined;
    },
  };
}

/** An ImageDestination writing `oci:DIR[:tag]` (created when absent, atomically); index.json changes only in commit(). */
export function layoutDestination(
  dir: string,
  opts: LayoutTransportOptions = {},
): ImageDestination & { readonly layout: OciLayout } {
  let staged: StagedLayout | undefined;
  let ready: Promise<StagedLayout> | undefined;
  const init = async (): Promise<OciLayout> => (staged = await (ready ??= stageLayout(dir))).layout;
  let pending: { desc: Descriptor; tag: string | undefined } | undefined;
  return {
    description: `oci:${dir}${opts.tag !== undefined ? `:${opts.tag}` : ''}`,
    get layout() {
      return staged?.layout ?? new OciLayout(dir);
    },
    tag: opts.tag,
    async hasBlob(desc: Descriptor): Promise<boolean> {
      return (staged?.layout ?? new OciLayout(dir)).hasBlob(desc.digest, desc.size);
    },
    async putBlob(desc, open, o = {}): Promise<PutBlobResult> {
      const layout = await init();
      if (await layout.hasBlob(desc.digest, desc.size)) return 'exists';
      await layout.writeBlob(desc, await open(), { signal: o.signal, sourceVerified: o.sourceVerified === true });
      return 'uploaded';
    },
    async hasManifest(digest: Digest): Promise<boolean> {
      return (staged?.layout ?? new OciLayout(dir)).hasBlob(digest);
    },
    async putManifest(m: RawManifest, tag: string | undefined): Promise<void> {
      const layout = await init();
      await layout.writeSmallBlob(m.bytes, m.digest);
      // Only the last put (the root) is recorded; children are reachable through it.
      pending = { desc: { mediaType: m.mediaType, digest: m.digest, size: m.bytes.length }, tag };
    },
    async commit(): Promise<void> {
      const layout = await init();
      if (pending) await layout.setTag(pending.desc, pending.tag);
      pending = undefined;
      await staged?.commit();
    },
    async close(): Promise<void> {
      // A copy that did not commit leaves no trace of a new layout.
      await staged?.discard();
    },
  };
}
