/**
 * Finding what hangs off a mirrored image: OCI 1.1 referrers (signatures, SBOMs, attestations pushed with a
 * `subject`), and the tag conventions registries without the referrers API use: cosign's `sha256-<hex>.sig`,
 * `.att`, `.sbom` and the OCI fallback tag `sha256-<hex>`. Each is found once per digest (no duplicates when both
 * schemes list the same manifest) and copied as its own job.
 */
import type { Digest } from '../image/digest.js';
import { parseManifest } from '../image/schemas.js';
import type { RegistryRepository } from '../registry/client.js';
import type { ImageSource, OpOptions } from '../image/types.js';

/** What to copy for one image: tags (cosign / fallback) and untagged referrer digests. */
export interface ReferrerSet {
  tags: string[];
  digests: Digest[];
}

/** Caches the tag list of each repository for the run (one listing per repository). */
export class TagLists {
  private readonly lists = new Map<string, Promise<string[]>>();
  /** All tags of `repo`; [] when the registry refuses to list (referrers are then found through the API only). */
  get(repo: RegistryRepository, opts: OpOptions = {}): Promise<string[]> {
    const key = `${repo.registry}/${repo.repository}`;
    let p = this.lists.get(key);
    if (!p) {
      p = repo.listTags(opts).catch(() => []);
      this.lists.set(key, p);
    }
    return p;
  }
}

/** The manifests that reference the image rooted at `rootDigest` (and its index children) in `repo`. */
export async function findReferrers(
  repo: RegistryRepository,
  src: ImageSource,
  rootDigest: Digest,
  tags: TagLists,
  opts: OpOptions = {},
): Promise<ReferrerSet> {
  const digests: Digest[] = [rootDigest];
  try {
    const root = await src.getManifest(rootDigest, opts);
    const m = parseManifest(root.bytes, root.mediaType);
    if (m.kind === 'index') digests.push(...m.value.manifests.map((d) => d.digest));
  } catch {
    // The copy just read this manifest; if it cannot be read again, only the root is checked.
  }
  const all = await tags.get(repo, opts);
  const prefixes = new Set(digests.map((d) => d.replace(':', '-')));
  const found = all.filter((t) => {
    const base = t.replace(/\.[a-z]+$/, '');
    return prefixes.has(base) && /^sha256-[a-f0-9]{64}(\.[a-z]+)?$/.test(t);
  });
  const viaApi: Digest[] = [];
  try {
    // The client falls back to the `sha256-<hex>` tag itself on registries without the API; tags cover that case.
    const idx = await repo.referrers(rootDigest, opts);
    for (const d of idx.manifests) viaApi.push(d.digest);
  } catch {
    // A registry that errors on the referrers endpoint simply has none we can see.
  }
  return { tags: found.sort(), digests: [...new Set(viaApi)] };
}
