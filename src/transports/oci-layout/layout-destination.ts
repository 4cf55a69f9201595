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

/** An ImageDestination writing `oci:DIR[:tag]` (created when absent, atomically); index.json changes only in commit(). */
export function layoutDestination(
  dir: string,
  opts: LayoutTransportOptions = {},
): ImageDestination & { readonly layout: OciLayout } {
  let layout = new OciLayout(dir);
  /** The sibling directory a new layout is built in, until commit() renames it to `dir`. */
  let staging: string | undefined;
  /** `dir` existed and was empty: a copy that does not commit empties it again. */
  let emptyBefore = false;
  let ready: Promise<void> | undefined;
  const prepare = async (): Promise<void> => {
    const st = await stat(dir).catch((e: unknown) => {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    });
    if (st && !st.isDirectory())
      throw new CanvosError('ERR_LAYOUT', `${dir} exists and is not a directory`, {
        hint: 'give the path of a directory for oci:DIR',
      });
    if (st && (await readdir(dir)).length > 0) {
      await checkExistingLayout(dir);
      await layout.init();
      return;
    }
    if (st) {
      emptyBefore = true;
      await layout.init();
      return;
    }
    await mkdirs(dirname(dir));
    staging = await mkdtemp(join(dirname(dir), `.${basename(dir)}.partial-`));
    layout = new OciLayout(staging);
    await layout.init();
  };
  const init = (): Promise<void> => (ready ??= prepare());
  let pending: { desc: Descriptor; tag: string | undefined } | undefined;
  let committed = false;
  return {
    description: `oci:${dir}${opts.tag !== undefined ? `:${opts.tag}` : ''}`,
    get layout() {
      return layout;
    },
    tag: opts.tag,
    async hasBlob(desc: Descriptor): Promise<boolean> {
      return layout.hasBlob(desc.digest, desc.size);
    },
    async putBlob(desc, open, o = {}): Promise<PutBlobResult> {
      await init();
      if (await layout.hasBlob(desc.digest, desc.size)) return 'exists';
      await layout.writeBlob(desc, await open(), { signal: o.signal, sourceVerified: o.sourceVerified === true });
      return 'uploaded';
    },
    async hasManifest(digest: Digest): Promise<boolean> {
      return layout.hasBlob(digest);
    },
    async putManifest(m: RawManifest, tag: string | undefined): Promise<void> {
      await init();
      await layout.writeSmallBlob(m.bytes, m.digest);
      // Only the last put (the root) is recorded; children are reachable through it.
      pending = { desc: { mediaType: m.mediaType, digest: m.digest, size: m.bytes.length }, tag };
    },
    async commit(): Promise<void> {
      await init();
      if (pending) await layout.setTag(pending.desc, pending.tag);
      pending = undefined;
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
    async close(): Promise<void> {
      // A copy that did not commit leaves no trace of a new layout.
      if (staging && !committed) await rm(staging, { recursive: true, force: true });
      if (emptyBefore && !committed)
        for (const n of await readdir(dir).catch(() => [])) await rm(join(dir, n), { recursive: true, force: true });
      staging = undefined;
      emptyBefore = false;
    },
  };
}
