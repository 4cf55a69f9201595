/**
 * The manifest half of a copy: every manifest of the selected graph is written as its exact bytes, children before
 * their index (siblings in parallel), the root last with its tag, and only after every blob was confirmed (the
 * caller runs this after the blob phase). Image manifests the destination already had are not written again.
 */
import type { ManifestNode } from '../image/graph.js';
import type { ImageDestination, OpOptions } from '../image/types.js';
import type { CopyPool } from './pool.js';

/** Where and how {@link writeManifests} writes. */
export interface ManifestWriteContext {
  dst: ImageDestination;
  /** Image manifests (by digest) the destination already holds. */
  present: ReadonlySet<string>;
  /** Shares child manifest writes with concurrent copies into the same `scope`. Default: none. */
  pool?: CopyPool | undefined;
  scope: string;
  o: OpOptions;
}

/** Write one untagged child manifest, once per pool scope (another copy's successful write counts). */
async function putChild(n: ManifestNode, ctx: ManifestWriteContext): Promise<boolean> {
  const { dst, pool, o } = ctx;
  if (!pool) {
    await dst.putManifest(n.raw, undefined, o);
    return true;
  }
  const key = `${ctx.scope}\0${n.raw.digest}`;
  const other = pool.manifests.get(key);
  // Another copy writes (or wrote) it to the same place: wait for that write, or do our own if it failed.
  if (
    other &&
    (await other.then(
      () => true,
      () => false,
    ))
  )
    return false;
  const mine = dst.putManifest(n.raw, undefined, o);
  pool.manifests.set(key, mine);
  mine.catch(() => {
    if (pool.manifests.get(key) === mine) pool.manifests.delete(key);
  });
  await mine;
  return true;
}

/** Write the graph under `root` bottom-up, then `root` with `tag`. Returns the number of manifests written. */
export async function writeManifests(
  root: ManifestNode,
  tag: string | undefined,
  ctx: ManifestWriteContext,
): Promise<number> {
  let written = 0;
  const done = new Map<string, Promise<void>>();
  const put = (n: ManifestNode): Promise<void> => {
    let p = done.get(n.raw.digest);
    if (!p) {
      p = (async () => {
        await Promise.all(n.children.map(put));
        if (n === root) return;
        if (ctx.present.has(n.raw.digest) && n.kind === 'image') return;
        if (await putChild(n, ctx)) written++;
      })();
      done.set(n.raw.digest, p);
    }
    return p;
  };
  await put(root);
  await ctx.dst.putManifest(root.raw, tag, ctx.o);
  return written + 1;
}
